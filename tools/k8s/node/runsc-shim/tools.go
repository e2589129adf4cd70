//go:build tools

// gVisor's containerd shim (containerd-shim-runsc-v1) at the commit tools/gvisor pins for runsc:
// a module of its own so that gVisor's containerd libraries stay at gVisor's versions, not the
// node's containerd (../go.mod). test/k8s/node.ts checks that the two pins agree.
package tools

import _ "gvisor.dev/gvisor/shim"
