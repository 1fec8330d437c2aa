// Package flaglist reads the comma-separated values of the commands' list
// flags (--graphs decode,train, --seqs 256,512): a value per field, spaces
// around a field dropped, empty fields skipped.
package flaglist
