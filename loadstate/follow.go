package loadstate

import (
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// What the probes follow (nginx_upstream_config_probed_source).
const (
	// ProbingDisk: the configuration on disk, which nginx runs (no
	// reload pending), or which is all the exporter knows (it did not see
	// nginx load).
	ProbingDisk = "disk"
	// ProbingLoaded: a reload is pending and the probes follow the
	// configuration nginx loaded, as the exporter saw it then.
	ProbingLoaded = "loaded"
)

// Applier receives target sets: the scheduler.
type Applier interface {
	Update(set *discovery.Set)
}

// Follower sits between the configuration loads and the scheduler so that
// the verdicts keep describing what nginx runs: while a reload of nginx is
// pending, the probes follow the configuration nginx loaded, when the
// exporter saw it load; otherwise the configuration on disk.
type Follower struct {
	Tracker *Tracker
	Next    Applier
}

// Update implements reload.Applier.
func (f *Follower) Update(set *discovery.Set) {
	f.Next.Update(f.Tracker.Choose(set))
}

// Choose returns the target set to probe given the set just loaded from
// disk. When the files nginx read are unchanged on disk, that set is what
// nginx runs, and it is remembered as such; when they changed and the
// exporter saw nginx load, the remembered set is probed instead.
func (t *Tracker) Choose(set *discovery.Set) *discovery.Set {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := t.probing
	defer func() {
		if t.probing != prev && prev != "" {
			if t.probing == ProbingLoaded {
				t.opts.Logger.Info("a reload of nginx is pending: probing the configuration nginx loaded, not the one on disk")
			} else {
				t.opts.Logger.Info("probing the configuration on disk")
			}
		}
	}()
	if !t.seenLoad || t.loaded == nil || !t.diskChanged() {
		if t.seenLoad && t.loaded != nil {
			t.loadedSet = set
		}
		t.probing, t.applied = ProbingDisk, set
		return set
	}
	if t.loadedSet == nil {
		// Nothing applied since nginx's load: the disk it is.
		t.probing, t.applied = ProbingDisk, set
		return set
	}
	t.probing, t.applied = ProbingLoaded, t.loadedSet
	return t.loadedSet
}

// diskChanged reports whether a file nginx read at its load differs now,
// or the tree on disk reads a file nginx did not. t.mu is held.
func (t *Tracker) diskChanged() bool {
	for path, b := range t.baseline {
		now := statFile(path, true)
		if now.exists != b.at.exists || now.size != b.at.size || now.hash != b.at.hash {
			return true
		}
	}
	if t.disk != nil {
		for path := range t.disk.files {
			if _, ok := t.baseline[path]; !ok {
				return true
			}
		}
	}
	return false
}
