package ondisk

import (
	"bufio"
	"io"
	"os"
)

// TempPath returns the temporary file [WriteFile] writes path's new content
// into. One left by a crash was never renamed: it is never data, and may be
// removed or overwritten.
func TempPath(path string) string { return path + ".tmp" }

// WriteFile replaces the content of the file at path of fsys (creating it if
// need be) with what write writes into the io.Writer it is given, which buffers
// it. The content goes into [TempPath](path), which is fsynced (F_FULLFSYNC
// on macOS), closed, and renamed over path: whatever happens, path holds
// either its old content or the new one, whole, never a mix. If write or any
// step fails, the temporary file is removed and the error returned (write's
// own error as it returned it).
//
// The rename is durable only once the directory is synced: the caller calls
// fsys.SyncDir after a WriteFile that returned nil. Two WriteFile calls on the
// same path must not run at the same time: they share the temporary file.
func WriteFile(fsys FS, path string, write func(w io.Writer) error) error {
	tmp := TempPath(path)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err // nothing created: nothing to remove
	}
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		fsys.Remove(tmp)
		return err
	}
	return nil
}
