package ondisk

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// FS is the file system a storage.FileStore and this package work on: every
// file operation they do goes through one, so that a test can run them on a
// double that fails an operation on demand or loses, at a simulated power
// cut, whatever was not yet on stable storage. Production uses [OSFS].
//
// Paths are the operating system's. Errors are returned as the os package
// returns them (a *fs.PathError naming the file, wrapping fs.ErrNotExist for
// a missing one). What a method changes is durable only once synced: a
// file's content by [File.Sync], a directory's entries (a file or directory
// made, renamed or removed in it) by [FS.SyncDir] of that directory.
type FS interface {
	// OpenFile opens the file at path as os.OpenFile does; flag combines
	// one of os.O_RDONLY, os.O_RDWR and os.O_WRONLY with os.O_CREATE and
	// os.O_TRUNC.
	OpenFile(path string, flag int, perm fs.FileMode) (File, error)
	// ReadFile returns the whole content of the file at path.
	ReadFile(path string) ([]byte, error)
	// Stat describes the file or directory at path.
	Stat(path string) (fs.FileInfo, error)
	// ReadDir lists the directory at path, sorted by name.
	ReadDir(path string) ([]fs.DirEntry, error)
	// Mkdir makes the directory path, whose parent must exist; an error
	// wrapping fs.ErrExist if something is there already.
	Mkdir(path string, perm fs.FileMode) error
	// Rename renames the file from to the name to in the same directory,
	// replacing what to named, atomically: until the directory is synced,
	// a crash may leave either name as it was before or after, never a
	// file in between.
	Rename(from, to string) error
	// Remove removes the file at path.
	Remove(path string) error
	// SyncDir flushes the directory at path to stable storage: once it
	// returns nil, the entries made, renamed or removed in it before the
	// call survive a crash.
	SyncDir(path string) error
}

// File is an open file of an [FS]; *os.File is one. Its methods behave as
// those of *os.File.
type File interface {
	io.Writer
	io.ReaderAt
	io.WriterAt
	// Name returns the path the file was opened with.
	Name() string
	// Stat describes the file; its Size is the file's length.
	Stat() (fs.FileInfo, error)
	// Truncate changes the file's length to size.
	Truncate(size int64) error
	// Sync flushes the file's content and length to stable storage
	// (F_FULLFSYNC on macOS): once it returns nil, what was written before
	// the call survives a crash. After an error the kernel may have
	// dropped what it could not write, and a later Sync may not say so.
	Sync() error
	// Close releases the file; it does not sync it.
	Close() error
}

// OSFS is the [FS] of the operating system, through package os. Its zero
// value is ready to use.
type OSFS struct{}

var (
	_ FS   = OSFS{}
	_ File = (*os.File)(nil)
)

// OpenFile opens the file at path with os.OpenFile.
func (OSFS) OpenFile(path string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil File
	}
	return f, nil
}

// ReadFile reads the file at path with os.ReadFile.
func (OSFS) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// Stat describes path with os.Stat.
func (OSFS) Stat(path string) (fs.FileInfo, error) { return os.Stat(path) }

// ReadDir lists the directory path with os.ReadDir.
func (OSFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }

// Mkdir makes the directory path with os.Mkdir.
func (OSFS) Mkdir(path string, perm fs.FileMode) error { return os.Mkdir(path, perm) }

// Rename renames from to to with os.Rename.
func (OSFS) Rename(from, to string) error { return os.Rename(from, to) }

// Remove removes the file at path with os.Remove.
func (OSFS) Remove(path string) error { return os.Remove(path) }

// SyncDir fsyncs the directory at path. Windows cannot, and need not: it
// returns nil there.
func (OSFS) SyncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll makes the directory dir and those of its parents that are
// missing, each durably: the parent of every directory it makes is synced
// after. It returns nil if dir exists already, and an error if dir or a
// parent is not a directory.
func MkdirAll(fsys FS, dir string) error {
	fi, err := fsys.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return fsys.SyncDir(parent)
}
