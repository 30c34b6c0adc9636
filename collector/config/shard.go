package config

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Shard is one replica's part of the targets (--targets.shard): those
// whose name hashes to Index modulo Count. N replicas given the same
// targets and shards 0/N to N-1/N split them with no coordination, each
// target probed by exactly one. The zero Shard keeps every target.
type Shard struct {
	Index, Count uint64
}

// ParseShard reads INDEX/COUNT, such as 2/3 for the third of three
// replicas.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, such as 0/3", s)
	}
	index, err1 := strconv.ParseUint(i, 10, 64)
	count, err2 := strconv.ParseUint(n, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, two whole numbers such as 0/3", s)
	case count == 0:
		return Shard{}, fmt.Errorf("shard %q: the count must be at least 1", s)
	case index >= count:
		return Shard{}, fmt.Errorf("shard %q: the index counts from 0 and must be less than the count %d", s, count)
	}
	return Shard{Index: index, Count: count}, nil
}

// Set parses a flag's value (kingpin.Value).
func (s *Shard) Set(v string) error {
	p, err := ParseShard(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

func (s Shard) String() string {
	if s.Count == 0 {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Split reports whether the shard is less than all the targets.
func (s Shard) Split() bool { return s.Count > 1 }

// Keeps reports whether the target named name is in the shard.
func (s Shard) Keeps(name string) bool {
	return !s.Split() || HashMod(name, s.Count) == s.Index
}

// HashMod is Prometheus's hashmod relabelling of value (model/relabel):
// the last 8 bytes of its MD5 sum, big-endian, modulo modulus. With
// source_labels [target] and modulus COUNT, Prometheus puts a target in
// the shard this exporter's --targets.shard=INDEX/COUNT probes it in.
func HashMod(value string, modulus uint64) uint64 {
	sum := md5.Sum([]byte(value))
	return binary.BigEndian.Uint64(sum[8:]) % modulus
}

// Filter returns cfg with only the shard's targets, and the shard noted
// for /config. The modules, shared by every shard, are cfg's.
func (s Shard) Filter(cfg *Config) *Config {
	out := *cfg
	out.Shard = s
	if !s.Split() {
		return &out
	}
	out.Targets = make([]*Target, 0, uint64(len(cfg.Targets))/s.Count+1)
	for _, t := range cfg.Targets {
		if s.Keeps(t.Name) {
			out.Targets = append(out.Targets, t)
		}
	}
	return &out
}

// MarshalYAML writes the configuration as it is (/config), with a comment
// first that says which shard's targets it lists: the file's form stays
// loadable, the comment being no key.
func (c *Config) MarshalYAML() (any, error) {
	type plain Config
	var n yaml.Node
	if err := n.Encode((*plain)(c)); err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("configuration did not encode as a mapping")
	}
	if c.Shard.Split() {
		n.HeadComment = fmt.Sprintf("Shard %s (--targets.shard): the targets below are those whose name's hashmod %d is %d.", c.Shard, c.Shard.Count, c.Shard.Index)
	}
	return &n, nil
}
