// Files in the sandbox, every path through the Confiner, as packages/runtime/src/files.ts does.
// Uploads go to a temporary file renamed into place, so a failed or oversized upload leaves
// nothing behind.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

type FileService struct {
	confiner       *Confiner
	maxUploadBytes int64
}

func (s *FileService) tooLarge() *AgentError {
	return newError("PayloadTooLarge", "upload exceeds the limit of "+strconv.FormatInt(s.maxUploadBytes, 10)+
		" bytes (ASB_MAX_UPLOAD_BYTES)")
}

func tmpName(target string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+"."+hex.EncodeToString(b[:])+".part")
}

type WriteFileResponse struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// WriteBuffer writes a whole buffer (multipart uploads).
func (s *FileService) WriteBuffer(userPath string, data []byte) (*WriteFileResponse, error) {
	if int64(len(data)) > s.maxUploadBytes {
		return nil, s.tooLarge()
	}
	target, err := s.confiner.Resolve(userPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o777); err != nil {
		return nil, err
	}
	tmp := tmpName(target)
	if err := os.WriteFile(tmp, data, 0o666); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return &WriteFileResponse{target, int64(len(data))}, nil
}

// WriteStream streams a body to disk, refusing it as soon as it passes the limit.
func (s *FileService) WriteStream(userPath string, body io.Reader) (*WriteFileResponse, error) {
	target, err := s.confiner.Resolve(userPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o777); err != nil {
		return nil, err
	}
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		return nil, newError("Conflict", `"`+userPath+`" is a directory`)
	}
	tmp := tmpName(target)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*WriteFileResponse, error) {
		out.Close()
		os.Remove(tmp)
		return nil, err
	}
	var size int64
	buf := make([]byte, 256*1024)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			size += int64(n)
			if size > s.maxUploadBytes {
				return fail(s.tooLarge())
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return fail(err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return &WriteFileResponse{target, size}, nil
}

// OpenRead opens a regular file for a download: the descriptor and its size, stat'ed on that
// descriptor. O_NONBLOCK: opening a FIFO must not block.
func (s *FileService) OpenRead(userPath string) (*os.File, int64, error) {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return nil, 0, err
	}
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, 0, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, 0, newError("NotFound", "File not found")
	}
	return os.NewFile(uintptr(fd), p), st.Size, nil
}

type FileEntry struct {
	Name    string  `json:"name"`
	Size    int64   `json:"size"`
	Type    string  `json:"type"`
	ModTime float64 `json:"mod_time"`
}

func mtimeMs(st *syscall.Stat_t) float64 {
	return float64(st.Mtim.Sec)*1000 + float64(st.Mtim.Nsec)/1e6
}

func (s *FileService) List(userPath string) ([]FileEntry, error) {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		return nil, newError("NotFound", "Path is not a directory")
	}
	d, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]FileEntry, 0, len(names))
	for _, name := range names {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(p, name), &st) != nil {
			continue
		}
		typ := "file"
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			typ = "directory"
		}
		out = append(out, FileEntry{name, st.Size, typ, mtimeMs(&st) / 1000})
	}
	return out, nil
}

func (s *FileService) Exists(userPath string) (bool, error) {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	return err == nil, nil
}

type FileStat struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Type    string  `json:"type"`
	Size    int64   `json:"size"`
	Mode    uint32  `json:"mode"`
	MtimeMs float64 `json:"mtimeMs"`
}

func (s *FileService) Stat(userPath string) (*FileStat, error) {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if syscall.Lstat(p, &st) != nil {
		return nil, newError("NotFound", `"`+userPath+`" does not exist`)
	}
	typ := "other"
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		typ = "file"
	case syscall.S_IFDIR:
		typ = "directory"
	case syscall.S_IFLNK:
		typ = "symlink"
	}
	return &FileStat{filepath.Base(p), p, typ, st.Size, st.Mode & 0o7777, mtimeMs(&st)}, nil
}

func (s *FileService) Mkdir(userPath string) error {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o777); err != nil {
		// mkdir -p over a file (or through one) is a conflict with what is there.
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTDIR) {
			return newError("Conflict", `"`+userPath+`" (or a parent of it) exists and is not a directory`)
		}
		return err
	}
	return nil
}

func (s *FileService) Remove(userPath string, recursive bool) error {
	p, err := s.confiner.Resolve(userPath)
	if err != nil {
		return err
	}
	if p == s.confiner.Base {
		return newError("Invalid", "refusing to remove the workspace itself")
	}
	st, err := os.Lstat(p)
	if err != nil {
		return newError("NotFound", `"`+userPath+`" does not exist`)
	}
	if st.IsDir() && !recursive {
		if err := syscall.Rmdir(p); err != nil {
			return &os.PathError{Op: "rmdir", Path: p, Err: err}
		}
		return nil
	}
	return os.RemoveAll(p)
}
