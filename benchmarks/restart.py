"""Restart with the apps of a namespace in sync (issue 19's resume row): the operator is started on them,
`--rounds` times, and timed until every app had its resume pass or was skipped by its settled mark, beside
this client's time to list the apps and every child kind of the namespace a page at a time, measured right
before each start. `--before REV`: that commit's operator too, in turn with this tree's (the order alternates
by round), so that the two are compared on the same apps in the same minutes.

    .venv/bin/python benchmarks/restart.py --existing idle --rounds 3 --before REV --keep-cluster \\
        --cluster-name perf-bench
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from latency import listing_seconds, restart, restart_line

from maestro.api import models as api
from maestro.kube import client as kube


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--existing", metavar="NS", required=True, help="the namespace of the apps in sync")
    parser.add_argument("--rounds", type=int, default=3, help="starts (default 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    ratios: list[float] = []
    with common.cluster(args):
        n = len(kube.list_objects(api.KIND, args.existing))
        print(f"restart with {n} apps in sync in {args.existing}, {args.rounds} rounds", flush=True)
        for round_ in range(args.rounds):
            listed = listing_seconds(args.existing)
            r = restart(args.existing, n, "now", common.ROOT / "operator", workdir / f"operator-{round_}.log")
            ratios.append(r["resumed"] / listed)
            print(f"round {round_ + 1}: this client's listing {listed:.1f} s", flush=True)
            print(restart_line("now", r, listed), flush=True)
    print(f"x the listing: {', '.join(f'{v:.2f}' for v in ratios)}; median {common.median(ratios):.2f}")
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
