// Package greet builds the greeting of the multi-file sample.
package greet

import "fmt"

// Hello greets one person.
func Hello(name string) string {
	return fmt.Sprintf("hello, %s — from the multi-file sandbox sample", name)
}
