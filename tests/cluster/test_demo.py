"""The README's demo command works: cluster, CRD, operator, an example app Ready on real pods that reach each other;
`--down` leaves nothing. It runs beside a demo the user left running (`make demo`, then `make test`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_brings_the_shop_to_ready_and_down_cleans_up() -> None:
    env = {**os.environ, "MAESTRO_DEMO_NAME": "maestro-demo-test"}
    env.pop("KUBECONFIG", None)  # the demo must not need (or use) an ambient kube context
    demo = [sys.executable, str(ROOT / "hack" / "demo.py")]
    try:
        result = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "shop: Ready 3/3" in result.stdout
        assert "deployment.apps/shop-web" in result.stdout
        if (
            os.geteuid() == 0
        ):  # the local cluster has a real node: the shop's pods run there and call each other
            assert "real-node" in result.stdout
            assert "CATALOG_URL=http://shop-catalog:80: reached shop-catalog-" in result.stdout, (
                result.stdout[-2000:]
            )
            assert "DB_URL=http://shop-db:5432: reached shop-db-" in result.stdout, result.stdout[-2000:]
    finally:
        down = subprocess.run([*demo, "--down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    leftovers = subprocess.run(["pgrep", "-f", "maestro-demo-test"], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"processes left after --down: {leftovers}"
