package main

import (
	"fmt"
	"runtime"
)

func main() {
	sum := 0
	for i := 1; i <= 100; i++ {
		sum += i
	}
	fmt.Printf("hello from the sandbox! sum(1..100)=%d, go=%s/%s/%s\n", sum, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
