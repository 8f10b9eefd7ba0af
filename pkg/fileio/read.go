package fileio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1) // a read given up on ends without a reader
	go func() {
		data, err := readRegular(path, max)
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

func readRegular(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, readError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	if st.Size() > max {
		return nil, &TooLargeError{Size: st.Size(), Max: max}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, readError(err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, readError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, readError(err)
	}
	if int64(len(data)) > max {
		return nil, &TooLargeError{Size: -1, Max: max}
	}
	return data, nil
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
