package main

import (
	"crypto/tls"
	"net"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// newCertificates makes a throwaway CA and a leaf it signed for hostname and
// ip, so that the exporter verifies the chain through ca_file as it would a
// private CA. P-256 keeps each handshake as cheap as a real MX's usually is.
// The certificates are probestest's, as the benchmarks' server uses.
func newCertificates(hostname string, ip net.IP) (leaf tls.Certificate, caPEM []byte, err error) {
	ca, err := probestest.GenerateCA()
	if err != nil {
		return leaf, nil, err
	}
	hosts := []string{hostname}
	if ip != nil {
		hosts = append(hosts, ip.String())
	}
	leaf, err = ca.Generate(probestest.CertOptions{Hosts: hosts})
	return leaf, ca.CertPEM, err
}
