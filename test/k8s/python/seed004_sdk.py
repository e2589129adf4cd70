"""Seed 004's SDK tests (test_sdk_warmpool.py) with upstream's Python client from PyPI.

As the seed: `kubectl port-forward svc/sandbox-router-svc <free port>:8080` in the sandbox's
namespace, the client pointed at that port, then Test 1 (a python command), Test 2 (a file
written and read), Test 3 (was the pod pre-warmed: its creation before the claim's), Test 4 (the
sandbox's kernel against the host's). The seed's client (agentic_sandbox) predates PyPI's
k8s-agent-sandbox: the same steps with its API. 0.4.x claims on the template (v1alpha1); 0.5 and
later on the warm pool (v1beta1), and send the router token ($ROUTER_TOKEN) when there is one.

Run by test/k8s/real-node-flows.test.ts with KUBECONFIG, NAMESPACE, TEMPLATE, WARMPOOL and
optionally ROUTER_TOKEN; prints the seed's lines, then one JSON line of what it saw.
"""
import json
import os
import platform
import socket
import subprocess
import threading
import time
from importlib.metadata import version

from k8s_agent_sandbox import SandboxClient
from k8s_agent_sandbox.models import SandboxDirectConnectionConfig

VERSION = version("k8s-agent-sandbox")
MAJOR_MINOR = tuple(int(x) for x in VERSION.split(".")[:2])
NS = os.environ["NAMESPACE"]


def find_free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        s.listen(1)
        return s.getsockname()[1]


def setup_portforward():
    port = find_free_port()
    print(f"Setting up port-forward: localhost:{port} -> svc/sandbox-router-svc:8080")
    proc = subprocess.Popen(
        ["kubectl", "port-forward", "-n", NS, "svc/sandbox-router-svc", f"{port}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()

    def read_output():
        for line in proc.stdout:
            if "Forwarding from" in line:
                ready.set()
                break

    threading.Thread(target=read_output, daemon=True).start()
    if not ready.wait(timeout=30):
        proc.kill()
        raise RuntimeError(f"port-forward not ready: {proc.stderr.read() if proc.poll() is not None else ''}")
    print("Port-forward ready\n")
    return proc, port


def kubectl(*args):
    return subprocess.check_output(["kubectl", "-n", NS, *args], text=True).strip()


def main():
    print("=== Testing SDK with WarmPool ===\n")
    proc, port = setup_portforward()
    seen = {"version": VERSION}
    try:
        config = {"api_url": f"http://localhost:{port}"}
        if os.environ.get("ROUTER_TOKEN"):
            config["extra_headers"] = {"Authorization": f"Bearer {os.environ['ROUTER_TOKEN']}"}
        client = SandboxClient(connection_config=SandboxDirectConnectionConfig(**config))
        start_time = time.time()
        if MAJOR_MINOR < (0, 5):
            sandbox = client.create_sandbox(os.environ["TEMPLATE"], namespace=NS, sandbox_ready_timeout=180)
        else:
            sandbox = client.create_sandbox(os.environ["WARMPOOL"], namespace=NS, sandbox_ready_timeout=180)
        allocation_time = time.time() - start_time
        pod_name = sandbox.get_pod_name()
        seen.update(claim=sandbox.claim_name, sandbox=sandbox.sandbox_id, pod=pod_name, allocation_s=allocation_time)
        try:
            print(f"Sandbox created: {sandbox.claim_name}")
            print(f"Pod allocated: {pod_name}")
            print(f"Allocation time: {allocation_time:.2f}s\n")

            print("Test 1: Running Python command")
            t0 = time.time()
            result = sandbox.commands.run("python3 -c 'print(\"Hello from SDK!\")'")
            seen["first_command_s"] = time.time() - t0
            print(f"  stdout: {result.stdout.strip()}")
            print(f"  exit_code: {result.exit_code}\n")
            seen["test1"] = {"stdout": result.stdout, "exit_code": result.exit_code}

            print("Test 2: File operations")
            sandbox.files.write("test.txt", "SDK test content")
            content = sandbox.files.read("test.txt")
            print("  File written and read successfully")
            print(f"  Content: {content.decode('utf-8').strip()}\n")
            seen["test2"] = content.decode("utf-8")

            print("Test 3: WarmPool performance check")
            claim_time = kubectl("get", "sandboxclaim", sandbox.claim_name, "-o", "jsonpath={.metadata.creationTimestamp}")
            pod_time = kubectl("get", "pod", pod_name, "-o", "jsonpath={.metadata.creationTimestamp}")
            print(f"  SandboxClaim created: {claim_time}")
            print(f"  Pod created:          {pod_time}")
            prewarmed = pod_time < claim_time
            print("Pod was PRE-WARMED from WarmPool!\n" if prewarmed else "Pod created on-demand (not from warmpool)\n")
            seen["test3"] = {"claim_created": claim_time, "pod_created": pod_time, "prewarmed": prewarmed}
            seen["pod_spec"] = json.loads(kubectl("get", "pod", pod_name, "-o", "json"))["spec"]

            print("Test 4: Runtime isolation check")
            sandbox_kernel = sandbox.commands.run("uname -r").stdout.strip()
            # The node is this machine: its kernel is ours (the seed asks minikube or kind's node).
            host_kernel = platform.release()
            dmesg = sandbox.commands.run("dmesg").stdout
            print(f"  Sandbox kernel: {sandbox_kernel}")
            print(f"  Host kernel:    {host_kernel}")
            # (The seed reads "differs" as Kata's VM; gVisor's Sentry reports a kernel of its own too.)
            gvisor = sandbox_kernel != host_kernel and "Starting gVisor" in dmesg
            print("Running with userspace isolation (gVisor)!" if gvisor else "Not isolated from the host kernel")
            seen["test4"] = {"sandbox_kernel": sandbox_kernel, "host_kernel": host_kernel, "gvisor": gvisor}
        finally:
            sandbox.terminate()
        print("\nSandbox cleaned up (terminate)")
        print("Core tests (1-3) passed!")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
