package main

import (
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/delivery"
	"github.com/smtp-exporter/smtp_exporter/probes/domain"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// probers is every prober this build has, by the name a module's prober
// key gives. A new prober is a package under probes/ and one line here
// (see ARCHITECTURE.md, "Adding a prober").
var probers = probes.Registry{
	probes.ProberSMTP:     smtp.Probe,
	probes.ProberLMTP:     smtp.Probe,
	probes.ProberDelivery: delivery.Probe,
	probes.ProberDomain:   domain.Probe,
}
