package storage

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"party/storage/internal/ondisk"
)

// faultFS is a file system double (an ondisk.FS) that keeps apart what
// reads see and what stable storage holds, loses the difference at a
// simulated power cut, and fails operations on demand.
//
// The model, as POSIX allows and ext4 does:
//   - A file's content (writes, truncations) becomes durable on the file's
//     Sync. Until then a cut may keep any prefix of the changes since the
//     last Sync, the last of them possibly torn (a prefix of its bytes).
//   - A directory's entries (a file created, a file or directory renamed,
//     removed, made) become durable on SyncDir of that directory; a file's
//     Sync does not make its name durable. Until then a cut may keep any
//     prefix of those operations, in the order they were done (a journal),
//     even one whose file's content is not durable: a rename may survive
//     with the renamed file's content lost.
//   - A failed Sync is Linux's: the changes it could not write are dropped
//     from what may become durable, reads still see them, and the failure
//     is reported once (the next Sync returns nil). A failed SyncDir keeps
//     the directory's changes in doubt. A failed write writes half its
//     bytes.
//
// Paths are absolute, with "/" as the root, which always exists. Every
// operation that changes a file or directory or syncs one is a step; after
// the limit's number of steps the power is out and every operation fails.
type faultFS struct {
	mu      sync.Mutex
	root    *fnode
	journal []dirChange // changes of directory entries not yet durable, in order
	nextOp  int         // numbers the directory operations, for the journal
	steps   int         // steps done
	limit   int         // the power goes out after this many steps; -1: never
	fail    map[string]int
	trace   []string // the steps done, for failure messages
}

// fnode is a file or directory of a faultFS.
type fnode struct {
	dir bool
	// A file: what reads see, what survives a cut, and the changes since
	// the last Sync, in order.
	data, durable []byte
	pending       []fchange
	// A directory: its entries as lookups see them, and as they survive.
	entries, durEntries map[string]*fnode
}

// fchange is one change to a file's content: a write of data at off, or,
// if truncate, a truncation to off bytes.
type fchange struct {
	off      int64
	data     []byte
	truncate bool
}

// dirChange is one change to a directory's entries: name now names node,
// or nothing if node is nil. The changes of one operation share op and
// survive a cut together.
type dirChange struct {
	dir  *fnode
	name string
	node *fnode
	op   int
}

// errPowerOut is what every operation returns once the power is out.
var errPowerOut = fmt.Errorf("%w (simulated power cut)", syscall.EIO)

func newFaultFS() *faultFS {
	root := &fnode{dir: true, entries: map[string]*fnode{}, durEntries: map[string]*fnode{}}
	return &faultFS{root: root, limit: -1, fail: map[string]int{}}
}

var _ ondisk.FS = (*faultFS)(nil)

// failNext makes the next n operations of kind fail with EIO: "write"
// (Write and WriteAt), "sync", "syncdir", "truncate", "rename", "remove",
// "mkdir" or "create".
func (f *faultFS) failNext(kind string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[kind] = n
}

// armed lists the faults asked for and not yet met.
func (f *faultFS) armed() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var left []string
	for kind, n := range f.fail {
		if n > 0 {
			left = append(left, fmt.Sprint(n, " ", kind))
		}
	}
	slices.Sort(left)
	return strings.Join(left, ", ")
}

// step starts an operation of kind on path, described by what: it returns
// the error the operation fails with (power out, or a failure asked for),
// or nil after counting it as a step. Callers hold mu.
func (f *faultFS) step(kind, path, what string) error {
	if f.limit >= 0 && f.steps >= f.limit {
		return &fs.PathError{Op: kind, Path: path, Err: errPowerOut}
	}
	f.steps++
	f.trace = append(f.trace, fmt.Sprintf("%d %s %s%s", f.steps, kind, path, what))
	if f.fail[kind] > 0 {
		f.fail[kind]--
		f.trace[len(f.trace)-1] += " FAILED"
		return &fs.PathError{Op: kind, Path: path, Err: syscall.EIO}
	}
	return nil
}

// powerOut returns the error of an operation that is not a step, if the
// power is out. Callers hold mu.
func (f *faultFS) powerOut(op, path string) error {
	if f.limit >= 0 && f.steps >= f.limit {
		return &fs.PathError{Op: op, Path: path, Err: errPowerOut}
	}
	return nil
}

// lookup returns the directory holding path, the name in it, and what it
// names (nil if nothing). Callers hold mu.
func (f *faultFS) lookup(op, path string) (dir *fnode, name string, n *fnode, err error) {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) || path == "/" {
		return nil, "", nil, &fs.PathError{Op: op, Path: path, Err: syscall.EINVAL}
	}
	dir = f.root
	parts := strings.Split(path[1:], "/")
	for _, p := range parts[:len(parts)-1] {
		next := dir.entries[p]
		if next == nil {
			return nil, "", nil, &fs.PathError{Op: op, Path: path, Err: syscall.ENOENT}
		}
		if !next.dir {
			return nil, "", nil, &fs.PathError{Op: op, Path: path, Err: syscall.ENOTDIR}
		}
		dir = next
	}
	name = parts[len(parts)-1]
	return dir, name, dir.entries[name], nil
}

// setEntry makes name in dir name n (nil: nothing), as part of directory
// operation op. Callers hold mu.
func (f *faultFS) setEntry(dir *fnode, name string, n *fnode, op int) {
	if n == nil {
		delete(dir.entries, name)
	} else {
		dir.entries[name] = n
	}
	f.journal = append(f.journal, dirChange{dir: dir, name: name, node: n, op: op})
}

func (f *faultFS) OpenFile(path string, flag int, perm fs.FileMode) (ondisk.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.powerOut("open", path); err != nil {
		return nil, err
	}
	dir, name, n, err := f.lookup("open", path)
	if err != nil {
		return nil, err
	}
	if n == nil && flag&os.O_CREATE == 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	if n != nil && n.dir {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	}
	if n == nil {
		if err := f.step("create", path, ""); err != nil {
			return nil, err
		}
		n = &fnode{}
		f.nextOp++
		f.setEntry(dir, name, n, f.nextOp)
	} else if flag&os.O_TRUNC != 0 {
		if err := f.step("truncate", path, " to 0"); err != nil {
			return nil, err
		}
		n.data = nil
		n.pending = append(n.pending, fchange{truncate: true})
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	return &faultFile{fs: f, n: n, name: filepath.Clean(path), writable: writable}, nil
}

func (f *faultFS) ReadFile(path string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.existing("read", path)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	return slices.Clone(n.data), nil
}

// existing returns the file or directory at path, or an error (power out,
// none there). Callers hold mu.
func (f *faultFS) existing(op, path string) (*fnode, error) {
	if err := f.powerOut(op, path); err != nil {
		return nil, err
	}
	if filepath.Clean(path) == "/" {
		return f.root, nil
	}
	_, _, n, err := f.lookup(op, path)
	if err == nil && n == nil {
		err = &fs.PathError{Op: op, Path: path, Err: syscall.ENOENT}
	}
	return n, err
}

func (f *faultFS) Stat(path string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.existing("stat", path)
	if err != nil {
		return nil, err
	}
	return n.info(filepath.Base(path)), nil
}

func (f *faultFS) ReadDir(path string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.existing("readdir", path)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: path, Err: syscall.ENOTDIR}
	}
	var out []fs.DirEntry
	for _, name := range slices.Sorted(maps.Keys(n.entries)) {
		out = append(out, fs.FileInfoToDirEntry(n.entries[name].info(name)))
	}
	return out, nil
}

func (f *faultFS) Mkdir(path string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.powerOut("mkdir", path); err != nil {
		return err
	}
	dir, name, n, err := f.lookup("mkdir", path)
	if err != nil {
		return err
	}
	if n != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: syscall.EEXIST}
	}
	if err := f.step("mkdir", path, ""); err != nil {
		return err
	}
	f.nextOp++
	f.setEntry(dir, name, &fnode{dir: true, entries: map[string]*fnode{}, durEntries: map[string]*fnode{}}, f.nextOp)
	return nil
}

func (f *faultFS) Rename(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.powerOut("rename", from); err != nil {
		return err
	}
	fromDir, fromName, n, err := f.lookup("rename", from)
	if err == nil && n == nil {
		err = &fs.PathError{Op: "rename", Path: from, Err: syscall.ENOENT}
	}
	if err != nil {
		return err
	}
	toDir, toName, _, err := f.lookup("rename", to)
	if err != nil {
		return err
	}
	if err := f.step("rename", from, " to "+to); err != nil {
		return err
	}
	f.nextOp++
	f.setEntry(toDir, toName, n, f.nextOp)
	f.setEntry(fromDir, fromName, nil, f.nextOp)
	return nil
}

func (f *faultFS) Remove(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.powerOut("remove", path); err != nil {
		return err
	}
	dir, name, n, err := f.lookup("remove", path)
	if err == nil && n == nil {
		err = &fs.PathError{Op: "remove", Path: path, Err: syscall.ENOENT}
	}
	if err != nil {
		return err
	}
	if n.dir && len(n.entries) > 0 {
		return &fs.PathError{Op: "remove", Path: path, Err: syscall.ENOTEMPTY}
	}
	if err := f.step("remove", path, ""); err != nil {
		return err
	}
	f.nextOp++
	f.setEntry(dir, name, nil, f.nextOp)
	return nil
}

// SyncDir makes the changes to path's entries durable: those left in the
// journal are dropped from it.
func (f *faultFS) SyncDir(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.existing("syncdir", path)
	if err != nil {
		return err
	}
	if !n.dir {
		return &fs.PathError{Op: "syncdir", Path: path, Err: syscall.ENOTDIR}
	}
	if err := f.step("syncdir", path, ""); err != nil {
		return err // the changes stay in doubt
	}
	n.durEntries = maps.Clone(n.entries)
	f.journal = slices.DeleteFunc(f.journal, func(c dirChange) bool { return c.dir == n })
	return nil
}
