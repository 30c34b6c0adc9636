package mixin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRenderedFilesUpToDate is make mixin-check as a test: the committed
// alerts and dashboard are what the mixin renders, byte for byte.
func TestRenderedFilesUpToDate(t *testing.T) {
	files, err := Render(".", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("rendered %d files, want %s and %s", len(files), AlertsFile, DashboardFile)
	}
	for name, want := range files {
		have, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s differs from what mixin/ renders: run make mixin (and edit mixin/, not the rendered file)", name)
		}
	}
	if !bytes.HasPrefix(files[AlertsFile], []byte("# Generated from mixin/")) {
		t.Errorf("%s does not say it is generated", AlertsFile)
	}
}

// TestRenderConfig: the _config selectors and links reach the rendered
// rules and dashboard.
func TestRenderConfig(t *testing.T) {
	files, err := Render(".", `{
		exporterSelector: 'job="smtp"',
		probeSelector: 'job="smtp-probe"',
		exporterScheme: 'https',
		runbookURL: 'https://wiki.example/smtp',
		dashboardJobSelector: 'job="smtp"',
	}`)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(files[AlertsFile], &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
			if u := r.Annotations["runbook_url"]; u != "https://wiki.example/smtp#"+strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook_url %q", r.Alert, u)
			}
			if d := r.Annotations["description"]; strings.Contains(d, "http://{{") || strings.Contains(d, "$(") {
				t.Errorf("%s: description not configured: %s", r.Alert, d)
			}
		}
	}
	if e := exprs["SMTPExporterDown"]; e != `up{job="smtp"} == 0` {
		t.Errorf("SMTPExporterDown: expr %q", e)
	}
	if e := exprs["SMTPProbeScrapeFailing"]; e != `up{job="smtp-probe"} == 0` {
		t.Errorf("SMTPProbeScrapeFailing: expr %q", e)
	}
	if !strings.Contains(string(files[AlertsFile]), "https://{{ $labels.instance }}/history?") {
		t.Error("alerts: no https link to /history")
	}
	dash := string(files[DashboardFile])
	for _, want := range []string{
		`"url": "https://${__data.fields.instance}/history?`,
		`"url": "https://wiki.example/smtp#${__data.fields.reason}"`,
		`"query": "label_values(smtp_exporter_build_info{job=\"smtp\"}, job)"`,
	} {
		if !strings.Contains(dash, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	if strings.Contains(dash, "http://${__") || strings.Contains(dash, "github.com/smtp-exporter/smtp_exporter/blob/main/examples/RUNBOOK.md") {
		t.Error("dashboard keeps a default link")
	}
}
