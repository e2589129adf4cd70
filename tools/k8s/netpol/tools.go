//go:build tools

// Pins SIG Network's NetworkPolicy implementation, kube-network-policies, which the real node's
// NetworkPolicy test (test/k8s/real-node-netpol.test.ts) runs as a host process, built with
// ./kube-network-policies.patch (what and why: see there). clientcmd is pinned (vendored) for
// that patch's --kubeconfig.
package tools

import (
	_ "k8s.io/client-go/tools/clientcmd"
	_ "sigs.k8s.io/kube-network-policies/cmd"
)
