package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

// SafeConfig holds the running configuration and swaps it atomically on
// reload; a bad file leaves the running configuration in place.
type SafeConfig struct {
	file string

	mu  sync.RWMutex
	cfg *config.Config

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

// NewSafeConfig returns a SafeConfig for file; call Reload to load it.
func NewSafeConfig(file string) *SafeConfig {
	return &SafeConfig{
		file: file,
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration reload.",
		}),
	}
}

// Collectors returns the reload metrics.
func (sc *SafeConfig) Collectors() []prometheus.Collector {
	return []prometheus.Collector{sc.reloadOK, sc.reloadTime}
}

// Reload reads the file again and, if it is valid, makes it the running
// configuration.
func (sc *SafeConfig) Reload() (*config.Config, error) {
	cfg, err := config.LoadFile(sc.file)
	if err != nil {
		sc.reloadOK.Set(0)
		return nil, err
	}
	sc.mu.Lock()
	sc.cfg = cfg
	sc.mu.Unlock()
	sc.reloadOK.Set(1)
	sc.reloadTime.Set(float64(time.Now().UnixNano()) / 1e9)
	return cfg, nil
}

// Get returns the running configuration.
func (sc *SafeConfig) Get() *config.Config {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.cfg
}
