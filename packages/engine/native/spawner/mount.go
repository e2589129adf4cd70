// Mounts made by system calls in this process rather than by running mount(8): the engine
// mounts a file system or two for every sandbox it starts (its workspace's ext4 image on a loop
// device, an image's overlay), and mount(8) costs 4-14 ms each (a process, libmount reading every
// mount of the machine, losetup) where the calls themselves take about one.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

type mountRequest struct {
	Source string   `json:"source"`
	Target string   `json:"target"`
	FSType string   `json:"fstype"`
	Flags  []string `json:"flags,omitempty"` // nosuid, nodev, noexec, noatime, ro
	Data   string   `json:"data,omitempty"`
	// Loop: Source is a file, attached to a free loop device that the kernel detaches again once
	// the file system is unmounted (as mount -o loop does).
	Loop bool `json:"loop,omitempty"`
}

var mountFlags = map[string]uintptr{
	"nosuid": syscall.MS_NOSUID, "nodev": syscall.MS_NODEV, "noexec": syscall.MS_NOEXEC,
	"noatime": syscall.MS_NOATIME, "ro": syscall.MS_RDONLY,
}

func mount(req request) reply {
	out := reply{ID: req.ID}
	m := req.Mount
	var flags uintptr
	for _, f := range m.Flags {
		bit, ok := mountFlags[f]
		if !ok {
			out.Error = fmt.Sprintf("mount: unknown flag %q", f)
			return out
		}
		flags |= bit
	}
	source := m.Source
	if m.Loop {
		dev, err := attachLoop(m.Source, flags&syscall.MS_RDONLY != 0)
		if err != nil {
			return failed(out, "attaching "+m.Source+" to a loop device", err)
		}
		defer dev.Close() // the mount holds the device; autoclear frees it at unmount
		source = dev.Name()
	}
	if err := syscall.Mount(source, m.Target, m.FSType, flags, m.Data); err != nil {
		return failed(out, fmt.Sprintf("mounting %s on %s", m.Source, m.Target), err)
	}
	code := 0
	out.Code = &code
	return out
}

func failed(out reply, what string, err error) reply {
	code := 32 // mount(8)'s "mount failure"
	out.Code = &code
	out.Stderr = fmt.Sprintf("%s: %v", what, err)
	var errno syscall.Errno
	if errors.As(err, &errno) && errno == syscall.ENOTTY {
		out.Errno = "ENOTTY" // no LOOP_CONFIGURE (Linux < 5.8): the engine runs mount(8)
	}
	return out
}

const (
	loopCtlGetFree    = 0x4C82
	loopConfigure     = 0x4C0A
	loFlagsReadOnly   = 1
	loFlagsAutoclear  = 4
	loopAttachRetries = 64
)

// The kernel's struct loop_config (linux/loop.h).
type loopInfo64 struct {
	Device, Inode, Rdevice, Offset, SizeLimit  uint64
	Number, EncryptType, EncryptKeySize, Flags uint32
	FileName, CryptName                        [64]byte
	EncryptKey                                 [32]byte
	Init                                       [2]uint64
}

type loopConfig struct {
	FD, BlockSize uint32
	Info          loopInfo64
	Reserved      [8]uint64
}

// attachLoop binds file to a free loop device. Another process (or request) may take the device
// that LOOP_CTL_GET_FREE named first: then it asks again.
func attachLoop(file string, readOnly bool) (*os.File, error) {
	mode := os.O_RDWR
	if readOnly {
		mode = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, mode|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	cfg := loopConfig{FD: uint32(backing.Fd())}
	cfg.Info.Flags = loFlagsAutoclear
	if readOnly {
		cfg.Info.Flags |= loFlagsReadOnly
	}
	copy(cfg.Info.FileName[:], file)
	for range loopAttachRetries {
		n, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ctl.Fd(), loopCtlGetFree, 0)
		if errno != 0 {
			return nil, errno
		}
		dev, err := os.OpenFile(fmt.Sprintf("/dev/loop%d", n), mode|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, dev.Fd(), loopConfigure, uintptr(unsafe.Pointer(&cfg)))
		if errno == 0 {
			return dev, nil
		}
		dev.Close()
		if errno != syscall.EBUSY {
			return nil, errno
		}
	}
	return nil, errors.New("no free loop device after many tries")
}
