package config

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, "0/10": {0, 10}} {
		got, err := ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"", "1", "3/3", "4/3", "0/0", "-1/3", "a/3", "1/b", "1/3/4", " 1/3"} {
		if s, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q) = %v, want an error", in, s)
		}
	}
}

// The values Prometheus's own relabelling tests expect of hashmod with
// modulus 1000 (model/relabel/relabel_test.go): a replica and a
// Prometheus hashmod rule put every name in the same shard.
func TestHashMod_MatchesPrometheus(t *testing.T) {
	for value, want := range map[string]uint64{"baz": 976, "foo\nbar": 734} {
		if got := HashMod(value, 1000); got != want {
			t.Errorf("HashMod(%q, 1000) = %d, want %d", value, got, want)
		}
	}
}

// N replicas split one list: every target in exactly one shard, and no
// shard much above its share.
func TestShard_SplitsEvenly(t *testing.T) {
	const names, count = 100_000, 10
	shards := make([]Shard, count)
	for i := range shards {
		shards[i] = Shard{Index: uint64(i), Count: count}
	}
	sizes := make([]int, count)
	for n := range names {
		name := fmt.Sprintf("mx%d.example.net", n)
		in := 0
		for i, s := range shards {
			if s.Keeps(name) {
				in++
				sizes[i]++
			}
		}
		if in != 1 {
			t.Fatalf("%s is in %d shards, want 1", name, in)
		}
	}
	mean := float64(names) / count
	for i, n := range sizes {
		if float64(n) > 1.05*mean {
			t.Errorf("shard %d/%d has %d targets, more than 5%% above the mean %.0f (%v)", i, count, n, mean, sizes)
		}
	}
}

func TestShard_FilterKeepsAllUnsplit(t *testing.T) {
	cfg := &Config{Targets: []*Target{{Name: "a"}, {Name: "b"}}}
	for _, s := range []Shard{{}, {0, 1}} {
		if got := s.Filter(cfg); len(got.Targets) != 2 {
			t.Errorf("shard %v kept %d of 2 targets", s, len(got.Targets))
		}
	}
}

// /config says which shard its targets are, in a comment: its output
// still loads as a configuration.
func TestShard_ConfigSaysWhichShard(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("modules:\n  mx:\n    smtp: {tls: none}\ntargets:\n")
	for i := range 30 {
		fmt.Fprintf(&sb, "  - {name: t%d, address: 'mx%d.example.net:25', module: mx}\n", i, i)
	}
	cfg, err := Parse([]byte(sb.String()), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	sharded := Shard{Index: 1, Count: 3}.Filter(cfg)
	if n := len(sharded.Targets); n == 0 || n == 30 {
		t.Fatalf("shard 1/3 kept %d of 30 targets", n)
	}
	for _, tg := range sharded.Targets {
		if HashMod(tg.Name, 3) != 1 {
			t.Errorf("shard 1/3 kept %s, whose hashmod 3 is %d", tg.Name, HashMod(tg.Name, 3))
		}
	}
	out, err := yaml.Marshal(sharded)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "# Shard 1/3 (--targets.shard)") {
		t.Errorf("/config of a shard does not start with the shard's comment:\n%.200s", out)
	}
	again, err := Parse(out, "again.yml")
	if err != nil {
		t.Fatalf("/config output does not load: %v", err)
	}
	if len(again.Targets) != len(sharded.Targets) {
		t.Errorf("/config output has %d targets, want %d", len(again.Targets), len(sharded.Targets))
	}
	if plain, _ := yaml.Marshal(cfg); strings.Contains(string(plain), "Shard") {
		t.Errorf("/config of an unsharded exporter mentions a shard:\n%.200s", plain)
	}
}
