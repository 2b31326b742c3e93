#!/usr/bin/env python3
"""Embed the Argo CD health check (deploy/argocd/resource_customizations/.../health.lua) where users install it.

    argocd.py           regenerate deploy/argocd/argocd-cm.yaml and deploy/argocd/argo-cd-values.yaml
    argocd.py --check   exit 1 when either differs from the .lua file (tests/unit/test_argocd_health.py too)

argocd-cm.yaml is a patch of Argo CD's argocd-cm ConfigMap (kustomize Component deploy/argocd, or
`kubectl patch --patch-file`); argo-cd-values.yaml is the same key for the argo-cd Helm chart (configs.cm).
Only the standard library is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGOCD = ROOT / "deploy" / "argocd"
HEALTH_LUA = ARGOCD / "resource_customizations" / "maestro.dev" / "MicroserviceApp" / "health.lua"
# Argo CD's key for a custom health check: resource.customizations.health.<group>_<kind>.
KEY = "resource.customizations.health.maestro.dev_MicroserviceApp"
HEADER = (
    "# Generated from resource_customizations/maestro.dev/MicroserviceApp/health.lua by\n"
    "# `python hack/argocd.py`; do not edit. A unit test fails when it drifts from the .lua file.\n"
)


def _block(text: str, indent: int) -> str:
    """`text` as the body of a YAML literal block scalar (`|`) at `indent` spaces."""
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(keepends=True))


def rendered() -> dict[Path, str]:
    lua = HEALTH_LUA.read_text()
    if (
        not lua.endswith("\n")
        or lua.endswith("\n\n")
        or any(line != line.rstrip() for line in lua.splitlines())
    ):
        raise SystemExit(
            f"{HEALTH_LUA}: one final newline and no trailing spaces, so YAML's `|` keeps it as is"
        )
    configmap = (
        HEADER
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n"
        + "  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\n"
        + f"data:\n  {KEY}: |\n"
        + _block(lua, 4)
    )
    values = (
        HEADER
        + f"# For the argo-cd Helm chart: helm upgrade argocd argo/argo-cd -f argo-cd-values.yaml\nconfigs:\n  cm:\n    {KEY}: |\n"
        + _block(lua, 6)
    )
    return {ARGOCD / "argocd-cm.yaml": configmap, ARGOCD / "argo-cd-values.yaml": values}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is out of date: run `python hack/argocd.py`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
