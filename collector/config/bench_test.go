package config

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse_10kTargets measures a reload of a large file, which the
// node walk must not make much slower than the YAML decoding itself.
func BenchmarkParse_10kTargets(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("modules:\n  mx:\n    smtp: {tls: none}\ntargets:\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - name: t%d\n    address: mx%d.example.net:25\n    module: mx\n    interval: 2m\n", i, i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "big.yml"); err != nil {
			b.Fatal(err)
		}
	}
}
