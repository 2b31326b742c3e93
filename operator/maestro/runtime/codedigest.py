"""A digest of the operator's own code, part of every settled mark (controller/settledmark.py): an upgraded
operator, whose passes may render or report differently, trusts no mark an older one left, and runs every
app's pass at its first start, as without marks."""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

import maestro

# Its rendering of a spec goes through pydantic's models: a new pydantic may render defaults differently.
_LIBRARIES = ("pydantic",)


@functools.cache
def code_digest() -> str | None:
    """The digest of every source file of the package and the libraries' versions; None when the sources are
    not there to read (then no mark is written, and none trusted)."""
    root = Path(maestro.__file__).parent
    sources = sorted(root.rglob("*.py"))
    if not sources:
        return None
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for library in _LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\0".encode())
    return digest.hexdigest()[:16]
