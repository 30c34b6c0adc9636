package config

import (
	"net/netip"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestCheck_TextDecodingStruct checks a struct that decodes itself from
// text (netip.AddrPort, as a DNS server setting might be): it is written
// as a string, not as a mapping of its fields.
func TestCheck_TextDecodingStruct(t *testing.T) {
	type settings struct {
		Server netip.AddrPort `yaml:"server"`
	}
	for _, tc := range []struct{ doc, want string }{
		{"server: 127.0.0.1:53\n", ""},
		{"server: {a: b}\n", ":1: server: want a string, got a mapping"},
		{"server: nonsense\n", ":1: server: not an ip:port"},
	} {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(tc.doc), &root); err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := newChecker().check(&root, reflect.TypeFor[settings](), ""); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.doc, got, tc.want)
		}
	}
}
