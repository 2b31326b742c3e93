#!/usr/bin/env python3
"""The demo: Maestro running an example app on a local cluster, from nothing.

    make demo          build/start the local control plane `maestro-demo`, install the CRD, start the operator,
                       apply examples/shop.yaml and watch it become Ready
    make demo-down     stop the operator and the demo cluster

It never touches your current kube context: it uses the demo cluster's own kubeconfig, or the one you name
explicitly with `--kubeconfig PATH`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
import crdwait  # noqa: E402  (hack/crdwait.py: the wait for a CRD, shared with hack/cluster and the tests)

DEMO_NAME = os.environ.get("MAESTRO_DEMO_NAME", "maestro-demo")  # tests run the demo under another name
CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster" / "cluster.py"), f"--name={DEMO_NAME}"]
NAMESPACE = DEMO_NAME
EXAMPLE = ROOT / "examples" / "shop.yaml"
CRD = ROOT / "crds" / "maestro.dev_microserviceapps.yaml"
NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def cluster_output(*args: str) -> str:
    return subprocess.run([*CLUSTER, *args], capture_output=True, text=True, check=True).stdout.strip()


def wait_established(kubectl_bin: str, kubeconfig: Path, crd: str) -> None:
    """`kubectl wait` for a CRD to be Established (hack/crdwait.py), its answer shown."""
    waited = crdwait.wait_established([kubectl_bin, f"--kubeconfig={kubeconfig}"], crd)
    if waited.returncode != 0:
        raise SystemExit(f"{crd} was not Established: {waited.stderr.strip()}")
    print(waited.stdout, end="", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="deploy to this cluster instead of the local demo cluster")
    parser.add_argument("--down", action="store_true", help="stop the operator and the demo cluster")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for the app to be Ready")
    args = parser.parse_args()

    state = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro")) / DEMO_NAME
    state.mkdir(parents=True, exist_ok=True)
    if args.down:
        stop_operator(state)
        if not args.kubeconfig:
            subprocess.run([*CLUSTER, "down"], check=True)
        return 0

    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig).resolve()
        kubectl_bin = "kubectl"
    else:
        step("Starting the local control plane (the first run builds it from Go modules: many minutes)")
        subprocess.run([*CLUSTER, "up"], check=True)
        kubeconfig = Path(cluster_output("env").split("\n")[0].removeprefix("export KUBECONFIG="))
        kubectl_bin = str(Path(cluster_output("bin-dir")) / "kubectl")

    def kubectl(*argv: str) -> None:
        subprocess.run([kubectl_bin, f"--kubeconfig={kubeconfig}", *argv], check=True)

    step("Installing the MicroserviceApp CRD")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    wait_established(kubectl_bin, kubeconfig, "crd/microserviceapps.maestro.dev")

    step(f"Creating namespace {NAMESPACE} (enforcing the restricted Pod Security Standard)")
    subprocess.run(
        [kubectl_bin, f"--kubeconfig={kubeconfig}", "create", "namespace", NAMESPACE],
        capture_output=True,
    )
    kubectl("label", "--overwrite", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
    if not args.kubeconfig:
        # The local cluster sends pods to its simulated nodes unless their namespace asks for the real one.
        kubectl("annotate", "--overwrite", "namespace", NAMESPACE, f"{NODE_SELECTOR_ANNOTATION}=type=real")

    metrics_port = free_port()  # never a fixed port: a second demo or the test suite may run beside this one
    step(
        f"Starting the operator (maestro run, metrics on 127.0.0.1:{metrics_port}), log in {state / 'operator.log'}"
    )
    stop_operator(state)
    log = (state / "operator.log").open("ab")
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maestro",
            "run",
            f"--namespace={NAMESPACE}",
            f"--metrics-port={metrics_port}",
            "--metrics-bind-address=127.0.0.1",
        ],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (state / "operator.pid").write_text(str(operator.pid))

    step(f"Applying {EXAMPLE.relative_to(ROOT)}: db -> catalog -> web, rolled out in dependency order")
    kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLE))
    deadline = time.monotonic() + args.timeout
    while True:
        result = subprocess.run(
            [kubectl_bin, f"--kubeconfig={kubeconfig}", "-n", NAMESPACE, "get", "msa", "shop", "-o",
             "jsonpath={.status.phase} {.status.readyServices}"],
            capture_output=True, text=True,
        )  # fmt: skip
        print(f"    shop: {result.stdout.strip() or 'waiting for the operator'}", flush=True)
        if result.stdout.startswith("Ready"):
            break
        if operator.poll() is not None:
            print((state / "operator.log").read_text()[-3000:])
            raise SystemExit("the operator exited; its log is above")
        if time.monotonic() > deadline:
            raise SystemExit(f"shop was not Ready within {args.timeout}s; see {state / 'operator.log'}")
        time.sleep(3)

    step("The app and what Maestro made of it")
    kubectl("-n", NAMESPACE, "get", "msa,deployments,services,hpa,pdb,pods", "-o", "wide")
    step("web calls catalog, which calls db, through the Services and URLs Maestro injected (real pods)")
    call = subprocess.run(
        [kubectl_bin, f"--kubeconfig={kubeconfig}", "get", "--raw",
         f"/api/v1/namespaces/{NAMESPACE}/services/http:shop-web:http/proxy/call?depth=2"],
        capture_output=True, text=True,
    )  # fmt: skip
    print(
        describe_calls(call.stdout) if call.returncode == 0 else f"    the call failed: {call.stderr.strip()}"
    )
    print(
        f"\nTry it yourself:\n  export KUBECONFIG={kubeconfig}\n  kubectl -n {NAMESPACE} get msa shop -o yaml\n"
        f"The operator keeps running in the background (pid {operator.pid}). Stop everything: make demo-down"
    )
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def describe_calls(body: str, indent: str = "    ") -> str:
    """The sample service's /call answer as a tree: who reached whom through which injected URL."""
    try:
        report = json.loads(body)
    except json.JSONDecodeError:
        return f"{indent}{body.strip()[:500]}"
    return "\n".join(call_lines(report, indent))


def call_lines(report: dict[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}{report.get('name', '?')} {report.get('version', '')}".rstrip()]
    for variable, call in sorted(report.get("calls", {}).items()):
        reached = (
            f"reached {call.get('name')} {call.get('version', '')}" if call.get("ok") else call.get("error")
        )
        lines.append(f"{indent}  {variable}={call.get('url')}: {reached or call.get('status')}")
        if call.get("calls"):
            lines += call_lines({"calls": call["calls"]}, indent + "    ")[1:]
    return lines


def stop_operator(state: Path) -> None:
    """SIGTERM the operator's process group, give kopf a moment to finish in-flight work, then SIGKILL."""
    pid_file = state / "operator.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    pid_file.unlink()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.killpg(pid, 0)  # raises ProcessLookupError once the group is gone
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
