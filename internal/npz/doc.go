// Package npz reads NumPy .npz archives: a zip of .npy arrays.
//
// Invariants: an Array holds its data as raw little-endian bytes in C order
// with the .npy header's dtype and shape; only the dtypes f8, f4, f2, i8,
// i4 and b1 are accepted, and big-endian or Fortran-ordered arrays are
// refused with an error naming the array, never silently reordered. Stored
// and deflated zip members are both read; member names lose their ".npy".
package npz
