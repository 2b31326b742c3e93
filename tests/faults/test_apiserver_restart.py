"""Case 2: kube-apiserver stops and starts mid-run. The operator (not restarted) recovers, and changes made as
soon as the API server is back, while the operator's watches are still broken, are reconciled: new specs,
children deleted by hand, apps created and deleted."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.cluster import TestCluster
from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures, fleet, invariants, scale
from tests.faults.apiserver import ApiServer
from tests.faults.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]

OUTAGE_S = 15.0  # longer than kopf's and the operator's retry delays, so both must really reconnect


def test_operator_recovers_from_an_api_server_restart(
    client: Client, namespace: str, op: OperatorProcess, test_cluster: TestCluster
) -> None:
    server = ApiServer(test_cluster, client)
    if server.skip_reason:
        assert not test_cluster.local
        pytest.skip(server.skip_reason)
    rng = random.Random(scale.SEED)
    apps = fleet.names("api", scale.APISERVER_APPS)
    fleet.create_fleet(client, namespace, apps)
    pid = op.process.pid if op.process else None
    recoveries: list[float] = []
    outages: list[float] = []
    failures = 0
    try:
        for trial in range(scale.APISERVER_RESTARTS):
            time.sleep(rng.uniform(1.0, 5.0))  # mid-run: trial 0 while the fleet is still being created
            stopped = time.monotonic()
            server.stop()
            time.sleep(OUTAGE_S)
            server.start()
            back = time.monotonic()
            outages.append(back - stopped)
            # Changes the operator cannot have seen yet: its watches are still broken or re-listing.
            changed = rng.sample(apps, max(1, len(apps) // 5))
            fleet.set_version(client, namespace, changed, trial + 2)
            for app in rng.sample(apps, max(1, len(apps) // 10)):
                client.delete("Deployment", namespace, f"{app}-web")
            new = fleet.names(f"new{trial}-", 3)
            fleet.create_fleet(client, namespace, new)
            gone = apps.pop(rng.randrange(len(apps)))
            client.delete("MicroserviceApp", namespace, gone)
            apps += new
            try:
                invariants.wait_converged(
                    client, namespace, timeout=scale.CONVERGE_TIMEOUT, what=f"after restart {trial + 1}"
                )
                recoveries.append(time.monotonic() - back)
                invariants.hold_converged(client, namespace, seconds=10, what=f"after restart {trial + 1}")
            except AssertionError:
                failures += 1
                raise
    finally:
        figures.record(
            "apiserver-restart",
            apps=scale.APISERVER_APPS,
            trials=len(outages),
            failures=failures,
            seed=scale.SEED,
            outage_s=[round(o, 1) for o in outages],
            recovery_after_back_s=[round(r, 1) for r in recoveries],
        )
    assert op.alive() and op.process is not None and op.process.pid == pid, "the operator was restarted"
