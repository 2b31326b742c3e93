#!/usr/bin/env python3
"""Write the chart's list of child kinds (deploy/helm/maestro/files/child-kinds.yaml) from the operator's one table
of child kinds (maestro.render.kinds), so that the chart's RBAC grants what the table declares. `make manifests`
runs it before rendering the chart; tests/unit/test_deploy.py fails when the file drifts from the table."""

from __future__ import annotations

import sys
from pathlib import Path

from maestro.render import kinds

ROOT = Path(__file__).resolve().parents[1]
PATH = ROOT / "deploy" / "helm" / "maestro" / "files" / "child-kinds.yaml"
# The verbs in the order a reader expects them in a Role, whatever order the table's sets give.
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


def render() -> str:
    """The file's text: one entry per child kind, with its API group, plural and verbs."""
    lines = [
        "# Generated from operator/maestro/render/kinds.py by `make manifests`; do not edit.",
        "# The chart's RBAC (templates/_helpers.tpl) grants each child kind these verbs.",
        "kinds:",
    ]
    for child in kinds.CHILD_KINDS:
        verbs = sorted(child.verbs, key=lambda verb: (VERB_ORDER.index(verb), verb))
        lines += [
            f"  - kind: {child.kind}",
            f'    group: "{child.group}"',
            f"    plural: {child.plural}",
            f"    verbs: [{', '.join(verbs)}]",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(render())
    print(f"wrote {PATH.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
