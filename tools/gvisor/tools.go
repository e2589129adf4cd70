//go:build tools

// Pins gVisor for `scripts/build-runsc.sh`: runsc built from the Go module proxy at the commit
// go.mod names (gVisor's Go branch; no release tags are published for it).
package tools

import _ "gvisor.dev/gvisor/runsc"
