package probes

import (
	"maps"
	"slices"
	"sync"
)

// AddSecret is Add for a credential registered again and again, a
// module's at every probe: its forms are worked out once per secret and
// copied, which costs a fraction of working them out. It is Add when r
// already holds a secret.
func (r *Redactor) AddSecret(secret string) {
	if secret == "" || !r.Empty() {
		r.Add(secret)
		return
	}
	base := secretRedactors.get(secret)
	r.grams = maps.Clone(base.grams)
	r.words = slices.Clone(base.words)
}

// secretRedactors holds a Redactor per secret in use. Rotation leaves old
// secrets behind: the set is cleared when it grows past a module count no
// configuration has.
var secretRedactors redactorCache

const maxSecretRedactors = 256

type redactorCache struct {
	mu sync.Mutex
	m  map[string]*Redactor
}

func (c *redactorCache) get(secret string) *Redactor {
	c.mu.Lock()
	r := c.m[secret]
	c.mu.Unlock()
	if r != nil {
		return r
	}
	r = &Redactor{}
	r.Add(secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSecretRedactors {
		c.m = make(map[string]*Redactor)
	}
	c.m[secret] = r
	return r
}
