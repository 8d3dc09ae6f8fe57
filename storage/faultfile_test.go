package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// info describes n under name.
func (n *fnode) info(name string) fs.FileInfo {
	return fileInfo{name: name, size: int64(len(n.data)), dir: n.dir}
}

// fileInfo is the fs.FileInfo of a faultFS file or directory.
type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// faultFile is an open file of a faultFS.
type faultFile struct {
	fs       *faultFS
	n        *fnode
	name     string
	writable bool
	pos      int64 // where Write writes
}

func (h *faultFile) Name() string { return h.name }
func (h *faultFile) Close() error { return nil }

func (h *faultFile) Stat() (fs.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.powerOut("stat", h.name); err != nil {
		return nil, err
	}
	return h.n.info(filepath.Base(h.name)), nil
}

func (h *faultFile) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.powerOut("read", h.name); err != nil {
		return 0, err
	}
	if off >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *faultFile) Write(p []byte) (int, error) {
	n, err := h.WriteAt(p, h.pos)
	h.pos += int64(n)
	return n, err
}

// WriteAt writes p at off; if it is to fail, it writes the first half of p
// and returns EIO.
func (h *faultFile) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if !h.writable {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.EBADF}
	}
	err := h.fs.step("write", h.name, fmt.Sprintf(" %d bytes at %d", len(p), off))
	if errors.Is(err, errPowerOut) {
		return 0, err
	}
	if err != nil {
		p = p[:len(p)/2]
	}
	h.n.data = applyChange(h.n.data, fchange{off: off, data: p})
	h.n.pending = append(h.n.pending, fchange{off: off, data: slices.Clone(p)})
	if err != nil {
		return len(p), err
	}
	return len(p), nil
}

func (h *faultFile) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.step("truncate", h.name, fmt.Sprint(" to ", size)); err != nil {
		return err
	}
	h.n.data = applyChange(h.n.data, fchange{off: size, truncate: true})
	h.n.pending = append(h.n.pending, fchange{off: size, truncate: true})
	return nil
}

// Sync makes the file's changes durable; if it is to fail, it drops them
// from what may become durable, and reads still see them.
func (h *faultFile) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	err := h.fs.step("sync", h.name, "")
	if errors.Is(err, errPowerOut) {
		return err
	}
	if err == nil {
		for _, c := range h.n.pending {
			h.n.durable = applyChange(h.n.durable, c)
		}
	}
	h.n.pending = nil
	return err
}

// applyChange returns b with c applied: bytes written (zeros filling any
// gap), or b cut or extended with zeros to c.off bytes.
func applyChange(b []byte, c fchange) []byte {
	end := c.off + int64(len(c.data))
	if c.truncate {
		end = c.off
	}
	if int64(len(b)) < end {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	if c.truncate {
		return b[:end:end]
	}
	copy(b[c.off:], c.data)
	return b
}
