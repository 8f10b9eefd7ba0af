package fileio

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// MaxInputFile is the cap on one file read from a namespace's input that
// has no cap of its own: a credential's PEM (a CA bundle of 1 MiB holds
// hundreds of certificates).
const MaxInputFile = 1 << 20

// InputReadTimeout is how long ReadInput waits for one file: a regular
// file on a file system that stopped answering (a hung network mount) is
// given up on, not waited for.
var InputReadTimeout = 10 * time.Second

// NotRegularError is a path that is not a regular file (through symbolic
// links): What says what it is ("a named pipe", "a device", ...).
type NotRegularError struct{ What string }

func (e *NotRegularError) Error() string { return "not a regular file (" + e.What + ")" }

// TooLargeError is a file over the cap; Size is -1 when it grew past the
// cap while it was read.
type TooLargeError struct{ Size, Max int64 }

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("too large: more than the %d bytes allowed", e.Max)
	}
	return fmt.Sprintf("too large: %d bytes, more than the %d allowed", e.Size, e.Max)
}

// ReadInput reads a file the user gives the controller (a resource file,
// a credential, an issuer), guarded against what could stall or bloat the
// reader: only a regular file (symbolic links followed) of at most max
// bytes is read; it is opened non-blocking, so that a named pipe swapped in
// after the check does not wait for a writer, and checked again once
// open; and the read is given up on after InputReadTimeout. A file that is
// not there is an error wrapping fs.ErrNotExist; one that is not a regular
// file a *NotRegularError; one over max a *TooLargeError.
func ReadInput(path string, max int64) ([]byte, error) {
	return ReadInputStat(path, max, nil)
}

// ReadInputStat is ReadInput of a file the caller has just stat'ed
// (symbolic links followed): st, when not nil, stands for the check
// before the open; the one after it is made as always.
func ReadInputStat(path string, max int64, st *unix.Stat_t) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1) // a read given up on ends without a reader
	go func() {
		data, err := readRegular(path, max, st)
		done <- result{data, err}
	}()
	timer := time.NewTimer(InputReadTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.data, r.err
	case <-timer.C:
		return nil, fmt.Errorf("cannot read: no answer within %v (a hung file system?)", InputReadTimeout)
	}
}

func readRegular(path string, max int64, known *unix.Stat_t) ([]byte, error) {
	var st unix.Stat_t
	if known != nil {
		st = *known
	} else if err := ignoringEINTR(func() error { return unix.Stat(path, &st) }); err != nil {
		return nil, readError(&fs.PathError{Op: "stat", Path: path, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notRegular(modeOf(st.Mode))
	}
	if st.Size > max {
		return nil, &TooLargeError{Size: st.Size, Max: max}
	}
	// the system calls themselves: an *os.File would also try to add the
	// descriptor to the poller and set a finalizer, for every file of a
	// namespace of thousands
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		return err
	})
	if err != nil {
		return nil, readError(&fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, readError(&fs.PathError{Op: "stat", Path: path, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notRegular(modeOf(st.Mode))
	}
	// one byte more than the file holds: a read that does not fill the
	// buffer has met the end, and a file that grew since is read on
	data := make([]byte, 0, min(st.Size, max)+1)
	for {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Read(fd, data[len(data):cap(data)])
			return err
		})
		if err != nil {
			return nil, readError(&fs.PathError{Op: "read", Path: path, Err: err})
		}
		data = data[:len(data)+n]
		if int64(len(data)) > max {
			return nil, &TooLargeError{Size: -1, Max: max}
		}
		if n == 0 || len(data) < cap(data) {
			return data, nil
		}
		data = slices.Grow(data, int(min(int64(len(data)), max+1-int64(len(data)))))
	}
}

// ignoringEINTR calls f again while it is interrupted by a signal.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// modeOf is the type bits of a stat's mode as an fs.FileMode.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	}
	return 0
}

// readError words a failed stat, open or read; a missing file stays
// fs.ErrNotExist.
func readError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, unix.ELOOP) {
		return errors.New("cannot read: a loop of symbolic links")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read: %w", err)
}

func notRegular(m fs.FileMode) error {
	what := "a special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m.IsDir():
		what = "a directory"
	}
	return &NotRegularError{What: what}
}
