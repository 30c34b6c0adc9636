package collector

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

func storeEntry(name, module string, m *probes.Module, res *probes.Result) StoreEntry {
	res.Target, res.Module = name, module
	return StoreEntry{Target: &Target{Name: name, Address: name + ":25", Module: module, Interval: time.Minute}, Module: m, Result: res}
}

func TestStore_SetGetDelete(t *testing.T) {
	s := NewStore()
	if _, ok := s.Get("mx1"); ok {
		t.Fatal("empty store has mx1")
	}
	first := storeEntry("mx1", "mx", mxModule(), dmarcResult())
	s.Set(first)
	e, ok := s.Get("mx1")
	if !ok || e.Result != first.Result {
		t.Fatalf("Get(mx1) = %+v, %v; want the entry set", e, ok)
	}
	// The latest result replaces the previous one.
	second := storeEntry("mx1", "mx", mxModule(), refusedResult())
	s.Set(second)
	if e, _ := s.Get("mx1"); e.Result != second.Result {
		t.Fatal("Set did not replace the previous result")
	}
	if n := len(s.Snapshot()); n != 1 {
		t.Fatalf("Snapshot has %d entries for one target", n)
	}
	s.Delete("mx1")
	if _, ok := s.Get("mx1"); ok {
		t.Fatal("Get(mx1) after Delete")
	}
	s.Delete("never-there") // no-op
}

func TestStore_SnapshotSortedByName(t *testing.T) {
	s := NewStore()
	names := []string{"mx3", "a-submission", "mx10", "mx1", "lmtp"}
	for _, n := range names {
		s.Set(storeEntry(n, "mx", mxModule(), okResult()))
	}
	var got []string
	for _, e := range s.Snapshot() {
		got = append(got, e.Target.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("Snapshot order = %v, want %v", got, want)
	}
}

// TestCollector_SeriesFollowStore: a deleted target's gauges go with it,
// and each target is labelled with its own module.
func TestCollector_SeriesFollowStore(t *testing.T) {
	s := NewStore()
	s.Set(storeEntry("submission-ok", "submission", submissionModule(), successResult()))
	s.Set(storeEntry("mx-dmarc", "mx", mxModule(), dmarcResult()))
	c := NewCollector(s)
	both := testutil.CollectAndCount(c)
	mfs := gatherAll(t, registryOf(c))
	if v, _ := find(mfs, "probe_success", map[string]string{"target": "submission-ok", "module": "submission"}); v != 1 {
		t.Errorf("probe_success{target=submission-ok} = %v, want 1", v)
	}
	if v, _ := find(mfs, "probe_success", map[string]string{"target": "mx-dmarc", "module": "mx"}); v != 0 {
		t.Errorf("probe_success{target=mx-dmarc} = %v, want 0", v)
	}
	s.Delete("submission-ok")
	one := testutil.CollectAndCount(c)
	if one >= both || one == 0 {
		t.Fatalf("series: %d with two targets, %d after deleting one", both, one)
	}
	if fams := familiesWith(gatherAll(t, registryOf(c)), map[string]string{"target": "submission-ok"}); len(fams) > 0 {
		t.Errorf("deleted target still in %v", fams)
	}
	s.Delete("mx-dmarc")
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("empty store yields %d series", n)
	}
}

func registryOf(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	return reg
}

// TestStore_ConcurrentSetAndCollect runs writers against scrapes; -race
// checks the locking.
func TestStore_ConcurrentSetAndCollect(t *testing.T) {
	s := NewStore()
	c := NewCollector(s)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("t%d-%d", w, i%10)
				s.Set(storeEntry(name, "mx", mxModule(), dmarcResult()))
				if i%7 == 0 {
					s.Delete(name)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			testutil.CollectAndCount(c)
		}
	})
	wg.Wait()
	if n := len(s.Snapshot()); n > 40 {
		t.Errorf("%d entries for 40 names", n)
	}
}
