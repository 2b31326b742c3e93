"""HA: two operator replicas with kopf peering, each holding only the chart's ServiceAccount token (so the
chart's RBAC for peering is proven too). Only one acts: the standby makes no pass and no write, also of its
safety pass. When the acting replica stops, the standby takes over: after a SIGKILL once the dead replica's
record expires (its lifetime, 10 s by default), after a SIGTERM at once (kopf removes its record as it stops).

Each round kills the acting replica, changes the app's spec at once, and measures the time until the change is
in the cluster, done by the replica that stood by; then a fresh standby joins for the next round. The times are
printed (run with -s to see them); the only bound asserted is a generous one.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro.runtime import leadership
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_install import Installed, helm, installed, service_account_kubeconfig
from tests.e2e.test_operator import msa, svc
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

__all__ = ["helm", "installed"]  # fixtures used here

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = ROOT / "deploy" / "helm" / "maestro" / "crds" / "kopf.dev_peerings.yaml"
PEERING = "maestro"  # the chart's default peering.name, which its Role names
ROUNDS = [signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM]
BOUND = 120.0  # seconds: far above the expected takeover; the measured figures are printed, not asserted


@pytest.fixture(scope="session")
def peering_crds(cluster_kubectl: Kubectl) -> None:
    cluster_kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        cluster_kubectl.wait_established(f"crd/{name}")


class Replicas:
    """Operator replicas of one test, each `maestro run --peering maestro` with the chart's token."""

    def __init__(self, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.all: list[OperatorProcess] = []

    def start(self, name: str) -> OperatorProcess:
        proc = OperatorProcess(
            self.kubeconfig, self.namespace, self.tmp_path / f"{name}.log", extra_args=["--peering", PEERING]
        )
        # Safety passes every 2 s: a standby that did not skip them would show passes and writes at once.
        proc.extra_env["MAESTRO_SAFETY_INTERVAL"] = "2"
        self.all.append(proc)
        proc.start()
        return proc

    def stop_all(self) -> None:
        for proc in self.all:
            proc.stop()


@pytest.fixture
def replicas(
    request: pytest.FixtureRequest,
    cluster_kubectl: Kubectl,
    peering_crds: None,
    installed: Installed,
    tmp_path: Path,
) -> Iterator[Replicas]:
    kubeconfig = service_account_kubeconfig(cluster_kubectl, installed, tmp_path / "maestro.kubeconfig")
    group = Replicas(kubeconfig, installed.namespace, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            for proc in group.all:
                print(f"===== {proc.log_path.name} =====")
                print(proc.log()[-20000:])


def role(proc: OperatorProcess) -> str:
    status, body = proc.get("/readyz")
    return body.strip().removeprefix("ok: ") if status == 200 else f"{status} {body.strip()}"


def wait_role(proc: OperatorProcess, wanted: str) -> None:
    wait_until(
        f"{proc.log_path.stem} to be {wanted}", lambda: role(proc) == wanted, describe=lambda: role(proc)
    )


def identity(proc: OperatorProcess) -> str:
    match = re.search(rf"peering {PEERING} as (\S+),", proc.log())
    assert match, "the operator logs its peering identity at startup"
    return match.group(1)


def records(kubectl: Kubectl) -> dict[str, object]:
    peering = kubectl.get("kopfpeering", PEERING)
    assert peering, "the operator created the peering object"
    return dict(peering.get("status") or {})


def scale(kubectl: Kubectl) -> int | None:
    deployment = kubectl.get("deployment", "shop-web")
    return deployment["spec"]["replicas"] if deployment else None


def writes(proc: OperatorProcess) -> float:
    return proc.metric("maestro_apply_total")


def test_one_replica_acts_and_another_takes_over(
    replicas: Replicas, cluster_kubectl: Kubectl, installed: Installed
) -> None:
    kubectl = cluster_kubectl.in_namespace(installed.namespace)
    active = replicas.start("replica-0")
    wait_role(active, "active")
    # An app that reads a config source is never left settled (runtime/settled.py): every safety pass makes a pass
    # over it, so the active replica's passes show every 2 s and the standby's absence of them means something.
    config = [{"configMap": "web-settings", "optional": True}]
    kubectl.apply(msa("shop", svc("web", replicas=1, configFrom=config)))
    wait_until("the Deployment shop-web", lambda: kubectl.get("deployment", "shop-web"))
    standby = replicas.start("replica-1")
    wait_role(standby, "standby")
    assert set(records(kubectl)) == {identity(active), identity(standby)}

    # Only one acts: while the active replica makes its safety passes, the standby makes none, and no write.
    before = active.metric("maestro_reconcile_total")
    wait_until(
        "three more passes of the active replica",
        lambda: active.metric("maestro_reconcile_total") >= before + 3,
    )
    assert (standby.metric("maestro_reconcile_total"), writes(standby), standby.passes()) == (0, 0, 0)
    assert (
        writes(active) > 0 and active.metric("maestro_leader") == 1 and standby.metric("maestro_leader") == 0
    )

    measured: list[tuple[str, float]] = []
    for round_, signum in enumerate(ROUNDS, start=1):
        stopped = identity(active)
        started = time.monotonic()
        active.send(signum)
        wanted = round_ + 1  # a new replica count each round: the change the next replica must make
        kubectl("patch", "msa", "shop", "--type=json", "-p",
                f'[{{"op": "replace", "path": "/spec/services/0/replicas", "value": {wanted}}}]')  # fmt: skip
        wait_until(
            f"round {round_} ({signum.name}): the standby to scale shop-web to {wanted}",
            lambda wanted=wanted: scale(kubectl) == wanted,
            timeout=BOUND,
        )
        elapsed = time.monotonic() - started
        measured.append((signum.name, elapsed))
        print(f"takeover after {signum.name}: the spec change was applied {elapsed:.1f} s after the signal")
        assert writes(standby) > 0, "the change was made by the replica that stood by"
        wait_role(standby, "active")
        if signum == signal.SIGTERM:  # a graceful stop removes its own record: nothing to wait for
            assert stopped not in records(kubectl)
        active, standby = standby, replicas.start(f"replica-{round_ + 1}")
        wait_role(standby, "standby")
        assert writes(standby) == 0

    summary = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in measured)
    print(f"takeover times (peering lifetime {leadership.DEFAULT_LIFETIME} s): {summary}")
    assert all(seconds < BOUND for _, seconds in measured)
