package main

import (
	"fmt"

	"example.com/multifile/greet"
)

func main() {
	for _, name := range []string{"Alice", "Bob", "Carol"} {
		fmt.Println(greet.Hello(name))
	}
}
