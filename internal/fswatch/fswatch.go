// Package fswatch keeps inotify watches (through fsnotify) on a set of
// directories that changes as the configuration does.
//
// fsnotify is not recursive, and a watch on a file is lost when an
// editor or logrotate replaces the file by renaming, so the exporter
// watches the directories that hold the files it follows. Both the
// configuration reloader and the error-log reader need the set kept
// exactly: a watch added for each new directory, removed for each one
// no longer wanted, and tried again later where adding failed.
package fswatch

import "github.com/fsnotify/fsnotify"

// Dirs is the set of directories a watcher watches. It is not safe for
// concurrent use: one goroutine owns the watcher.
type Dirs struct {
	w       *fsnotify.Watcher
	watched map[string]bool
}

// New returns an empty set of watched directories of w.
func New(w *fsnotify.Watcher) *Dirs {
	return &Dirs{w: w, watched: map[string]bool{}}
}

// Set makes the watched directories exactly want: it adds a watch on
// each directory not watched yet and removes the others. A directory
// that cannot be watched (absent, unreadable, out of inotify watches) is
// passed to failed and tried again at the next Set.
func (d *Dirs) Set(want map[string]bool, failed func(dir string, err error)) {
	for dir := range want {
		if d.watched[dir] {
			continue
		}
		if err := d.w.Add(dir); err != nil {
			failed(dir, err)
			continue
		}
		d.watched[dir] = true
	}
	for dir := range d.watched {
		if !want[dir] {
			_ = d.w.Remove(dir) // gone already when the directory was removed
			delete(d.watched, dir)
		}
	}
}

// Forget records that dir went away and its watch with it (the kernel
// drops the watch of a removed directory), so that the next Set watches
// it again once it is back.
func (d *Dirs) Forget(dir string) { delete(d.watched, dir) }
