package fswatch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// event waits for an event on a file of dir, and says whether one came.
func event(t *testing.T, w *fsnotify.Watcher, dir string, wait time.Duration) bool {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-w.Events:
			if filepath.Dir(ev.Name) == dir {
				return true
			}
		case err := <-w.Errors:
			t.Fatal(err)
		case <-timeout:
			return false
		}
	}
}

func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSetAddsRemovesAndRetries(t *testing.T) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	root := t.TempDir()
	a, b, later := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "later")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d := New(w)
	var failed []string
	onErr := func(dir string, err error) { failed = append(failed, dir) }

	d.Set(map[string]bool{a: true, b: true, later: true}, onErr)
	if len(failed) != 1 || failed[0] != later {
		t.Fatalf("failed = %v, want only the absent %s", failed, later)
	}
	if got := len(w.WatchList()); got != 2 {
		t.Fatalf("watching %v, want a and b", w.WatchList())
	}
	touch(t, a, "one")
	if !event(t, w, a, 5*time.Second) {
		t.Fatal("no event from a watched directory")
	}

	// b is no longer wanted; the absent directory now exists.
	if err := os.Mkdir(later, 0o700); err != nil {
		t.Fatal(err)
	}
	failed = nil
	d.Set(map[string]bool{a: true, later: true}, onErr)
	if len(failed) != 0 {
		t.Fatalf("failed again: %v", failed)
	}
	list := w.WatchList()
	if len(list) != 2 || !slices.Contains(list, a) || !slices.Contains(list, later) {
		t.Fatalf("watching %v, want a and later", list)
	}
	touch(t, later, "two")
	if !event(t, w, later, 5*time.Second) {
		t.Fatal("no event from the directory watched on the retry")
	}
	touch(t, b, "three")
	if event(t, w, b, 300*time.Millisecond) {
		t.Fatal("event from a directory no longer watched")
	}
}

func TestForgetWatchesAgain(t *testing.T) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := New(w)
	want := map[string]bool{dir: true}
	fail := func(dir string, err error) { t.Errorf("watching %s: %v", dir, err) }
	d.Set(want, fail)

	// The directory is removed and made again: its watch is gone with
	// it, and Set alone would think it still watched.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.Forget(dir)
	d.Set(want, fail)
	for len(w.Events) > 0 {
		<-w.Events
	}
	touch(t, dir, "error.log")
	if !event(t, w, dir, 5*time.Second) {
		t.Fatal("no event from the re-created directory after Forget")
	}
}
