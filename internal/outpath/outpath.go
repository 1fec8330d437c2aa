package outpath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrExists reports an existing output without --force.
var ErrExists = errors.New("output exists")

// ErrNotReplaceable reports an existing output that --force may not
// replace: not something the command writes, or holding its input.
var ErrNotReplaceable = errors.New("refusing to replace")

// ErrNotOwn reports an existing, non-empty output directory that a
// resuming command did not write.
var ErrNotOwn = errors.New("refusing to write into")

// RecogniseDir reports whether the non-empty directory dir, whose entries
// are names, is one the command wrote; the error says why not.
type RecogniseDir func(dir string, names []string) error

// Dir checks that the directory out may be written: it does not exist, or
// force is set and out is an empty directory or one recognise accepts, and
// none of inputs lies inside it. It returns whether out exists.
func Dir(out string, force bool, inputs []string, recognise RecogniseDir) (exists bool, err error) {
	info, err := os.Lstat(out)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !force {
		return true, fmt.Errorf("%w: %s (choose another output or pass --force to replace it)", ErrExists, out)
	}
	if !info.IsDir() {
		return true, fmt.Errorf("%w %s: it is not a directory (--force replaces only a directory this command wrote, or an empty one)", ErrNotReplaceable, out)
	}
	if err := holdsInput(out, inputs); err != nil {
		return true, err
	}
	if err := recogniseEntries(out, recognise); err != nil {
		return true, wrapRecognise(err, func(err error) error {
			return fmt.Errorf("%w %s: %w; --force replaces only a directory this command wrote, or an empty one: choose another output", ErrNotReplaceable, out, err)
		})
	}
	return true, nil
}

// Own checks that the directory out may be written by a command that
// resumes its own output instead of replacing it (eval, leas, gradangle):
// out does not exist, or is an empty directory, or one recognise accepts
// as that command's. Such a command has no --force: it never replaces a
// file, so it must not write into a directory holding someone else's. It
// returns whether out exists.
func Own(out string, recognise RecogniseDir) (exists bool, err error) {
	info, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.IsDir() {
		return true, fmt.Errorf("%w %s: it is not a directory: choose another output directory", ErrNotOwn, out)
	}
	if err := recogniseEntries(out, recognise); err != nil {
		return true, wrapRecognise(err, func(err error) error {
			return fmt.Errorf("%w %s: %w; the command writes only into a new or empty directory, or resumes one it wrote: choose another output directory", ErrNotOwn, out, err)
		})
	}
	return true, nil
}

// notRecognised marks recognise's refusal, as opposed to an error reading
// the directory.
type notRecognised struct{ err error }

func (e notRecognised) Error() string { return e.err.Error() }

// recogniseEntries lets recognise judge the non-empty directory out by its
// entries; an empty one is accepted.
func recogniseEntries(out string, recognise RecogniseDir) error {
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) == 0 {
		return err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	if err := recognise(out, names); err != nil {
		return notRecognised{err}
	}
	return nil
}

// wrapRecognise words a refusal by recognise with explain; a read error
// passes unchanged.
func wrapRecognise(err error, explain func(error) error) error {
	if nr, ok := err.(notRecognised); ok {
		return explain(nr.err)
	}
	return err
}

// File checks that the file out may be written: it does not exist, or force
// is set and out is a regular file recognise accepts and not one of inputs.
// It returns whether out exists.
func File(out string, force bool, inputs []string, recognise func(path string) error) (exists bool, err error) {
	info, err := os.Lstat(out)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !force {
		return true, fmt.Errorf("%w: %s (choose another output or pass --force to replace it)", ErrExists, out)
	}
	if !info.Mode().IsRegular() {
		return true, fmt.Errorf("%w %s: it is not a regular file (--force replaces only a file this command wrote)", ErrNotReplaceable, out)
	}
	if err := holdsInput(out, inputs); err != nil {
		return true, err
	}
	if err := recognise(out); err != nil {
		return true, fmt.Errorf("%w %s: %w; --force replaces only a file this command wrote: choose another output", ErrNotReplaceable, out, err)
	}
	return true, nil
}

// holdsInput refuses out when an input is out itself or lies inside it.
func holdsInput(out string, inputs []string) error {
	o := resolve(out)
	for _, in := range inputs {
		if in == "" {
			continue
		}
		i := resolve(in)
		if i == o || strings.HasPrefix(i, o+string(filepath.Separator)) {
			return fmt.Errorf("%w %s: it holds %s, this command's input", ErrNotReplaceable, out, in)
		}
	}
	return nil
}

// resolve returns path absolute, with symbolic links resolved as far as
// they exist.
func resolve(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	// The leaf may not exist: resolve its directory.
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}
