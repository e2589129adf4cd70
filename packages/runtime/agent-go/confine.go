// Confinement of file paths to the base directory, as packages/runtime/src/confine.ts does it:
// `..`, absolute paths elsewhere, NUL bytes and symlinks that lead out (dangling ones too) are
// refused with one error, 400 PathOutsideSandbox. Not a security boundary (gVisor is): it keeps
// upstream's contract that file routes stay in the workspace.
package main

import (
	"os"
	"path/filepath"
	"strings"
)

// maxLinkHops: symlinks followed by hand (dangling ones) before giving up, as the kernel's ELOOP.
const maxLinkHops = 40

type Confiner struct {
	// Base is the base directory's real path (symlinks resolved).
	Base string
	// configured is the base as given: an absolute client path under it (e.g. /tmp/x when /tmp
	// is a symlink) is the same place as under Base.
	configured string
}

func NewConfiner(base string) (*Confiner, error) {
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	return &Confiner{Base: real, configured: abs}, nil
}

func inside(p, root string) bool {
	if p == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, root+"/")
}

// Resolve gives the absolute path for a client's path (relative to the base, or absolute inside
// it), with every existing symlink resolved; an *AgentError PathOutsideSandbox when it leaves.
func (c *Confiner) Resolve(userPath string) (string, error) {
	if strings.ContainsRune(userPath, 0) {
		return "", c.outside(userPath)
	}
	var path string
	if filepath.IsAbs(userPath) {
		path = filepath.Clean(userPath)
	} else {
		path = filepath.Join(c.Base, userPath)
	}
	if !inside(path, c.Base) && inside(path, c.configured) {
		path = filepath.Join(c.Base, path[len(c.configured):])
	}
	if !inside(path, c.Base) {
		return "", c.outside(userPath)
	}
	for hops := 0; ; hops++ {
		real, rest, next, err := realPrefix(path)
		if err != nil {
			return "", err
		}
		if next == "" {
			if !inside(real, c.Base) {
				return "", c.outside(userPath)
			}
			if len(rest) == 0 {
				return real, nil
			}
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		// A dangling symlink: realpath cannot follow it, but a write through it would. Follow it
		// by hand and check where it leads like any other path.
		if hops >= maxLinkHops {
			return "", c.outside(userPath)
		}
		path = next
	}
}

// realPrefix: the real path of the longest existing prefix of path and the names after it; or,
// when that walk meets a dangling symlink, the path it leads to (next).
func realPrefix(path string) (real string, rest []string, next string, err error) {
	var names []string // reversed
	existing := path
	for {
		if r, e := filepath.EvalSymlinks(existing); e == nil {
			for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
				names[i], names[j] = names[j], names[i]
			}
			return r, names, "", nil
		}
		if st, e := os.Lstat(existing); e == nil && st.Mode()&os.ModeSymlink != 0 {
			parentReal, parentRest, _, perr := realPrefix(filepath.Dir(existing))
			parentPath := filepath.Dir(existing)
			if perr == nil && parentReal != "" {
				parentPath = filepath.Join(append([]string{parentReal}, parentRest...)...)
			}
			target, e := os.Readlink(existing)
			if e != nil {
				return "", nil, "", e
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(parentPath, target)
			}
			for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
				names[i], names[j] = names[j], names[i]
			}
			return "", nil, filepath.Join(append([]string{filepath.Clean(target)}, names...)...), nil
		}
		up := filepath.Dir(existing)
		if up == existing {
			return "", nil, "", newError("Internal", `cannot resolve "`+path+`": not even / exists`)
		}
		names = append(names, filepath.Base(existing))
		existing = up
	}
}

func (c *Confiner) outside(p string) *AgentError {
	return newError("PathOutsideSandbox", `path "`+strings.ReplaceAll(p, "\x00", `\0`)+`" is outside the sandbox's workspace `+
		c.Base+"; use a path relative to it")
}
