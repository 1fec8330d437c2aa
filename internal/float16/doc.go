// Package float16 converts between IEEE 754 binary16 bits and float32.
package float16
