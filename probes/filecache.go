package probes

import (
	"os"
	"sync"
	"time"
)

// fileCache keeps what was built from files (a CA pool, a client key pair,
// a password) until one of the files changes. Probes run thousands of
// times a minute and the files change a few times a year, but a rotated
// file must still be picked up by the next probe without a reload: so each
// use stats the files (one cheap syscall each) and rebuilds when any of
// them is another file (inode), has another size or another modification
// time. A file that changed within the last fileSettle is read again at
// every use until it is older: timestamps are coarse (a clock tick on
// Linux, a second or two elsewhere), and a same-sized rewrite within the
// tick of the read would otherwise look unchanged. Safe for concurrent use.
type fileCache[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]*fileEntry[V]
	loads   int // builds, for tests
}

type fileEntry[V any] struct {
	stamps []fileStamp
	v      V
}

// fileSettle is how old a file's modification time must be before what was
// read from it is reused.
const fileSettle = 2 * time.Second

// maxFileCacheEntries bounds a cache whose keys outlive their module after
// reloads; cleared when full, it simply rebuilds.
const maxFileCacheEntries = 1024

// fileStamp identifies one version of a file; a path not set has the zero
// stamp.
type fileStamp struct {
	fi   os.FileInfo
	size int64
	mod  int64
}

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return a.size == b.size && a.mod == b.mod && os.SameFile(a.fi, b.fi)
}

// stampFiles stats every path set; ok is false when one cannot be stat'ed
// or changed too recently to be trusted, and then nothing is reused.
func stampFiles(paths []string) (stamps []fileStamp, ok bool) {
	stamps = make([]fileStamp, len(paths))
	now := time.Now()
	for i, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || now.Sub(fi.ModTime()) < fileSettle {
			return nil, false
		}
		stamps[i] = fileStamp{fi: fi, size: fi.Size(), mod: fi.ModTime().UnixNano()}
	}
	return stamps, true
}

// get returns the value for key, built by load from the files at paths
// (empty ones ignored), building it again when any file changed since. A
// failed load is returned and not kept: the next use tries again.
func (c *fileCache[K, V]) get(key K, paths []string, load func() (V, error)) (V, error) {
	stamps, ok := stampFiles(paths)
	if ok {
		c.mu.Lock()
		e := c.entries[key]
		c.mu.Unlock()
		if e != nil && sameStamps(e.stamps, stamps) {
			return e.v, nil
		}
	}
	v, err := load()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loads++
	if err != nil || !ok {
		delete(c.entries, key)
		return v, err
	}
	// Stamped before the read: a file replaced in between is read again
	// at the next use, never mistaken for the old one.
	if c.entries == nil || len(c.entries) >= maxFileCacheEntries {
		c.entries = make(map[K]*fileEntry[V])
	}
	c.entries[key] = &fileEntry[V]{stamps: stamps, v: v}
	return v, nil
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].same(b[i]) {
			return false
		}
	}
	return true
}

// loadCount is how many times a value was built, for tests.
func (c *fileCache[K, V]) loadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}
