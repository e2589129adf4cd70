//go:build tools

// Pins the real node's parts (test/k8s/node.ts): containerd with its runc shim and ctr, crictl
// (the harness stops a node's pods through CRI), runc, and the CNI plugins that give pods
// addresses. The kubelet is built from tools/k8s/kube (the API server's module) and gVisor's
// containerd shim from ./runsc-shim (gVisor's own containerd pin).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
	_ "github.com/opencontainers/runc"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
