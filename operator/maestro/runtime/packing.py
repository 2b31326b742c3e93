"""Compact bytes for what the operator keeps in memory of every object (children.py, appcache.py).

The kept objects are JSON, and objects of one kind differ in little but their names, uids and hashes: zlib
with a preset dictionary (the first object of that kind packed) stores each in a fraction of its JSON's size
(docs/benchmarks.md, Memory).

The dictionary of a kind never changes once set, and zlib is deterministic for the same input, settings and
dictionary: equal JSON always packs to equal bytes, so the callers compare packed bytes to tell whether an
object changed, without unpacking.
"""

from __future__ import annotations

import threading
import zlib

# Level 1: most of the gain comes from the dictionary, and it packs much faster than the default level.
_LEVEL = 1
# A raw deflate stream (negative: no header or checksum to store) with an 8 KiB window, which holds the
# dictionary of any kind kept here (a child's projection is 1-3 KiB, an app a few). With zlib's defaults (a
# 32 KiB window, memLevel 8) most of each packing went into setting up the compressor's state: 108 µs an object
# against 9 µs, for the same bytes out (docs/benchmarks.md, stop 29).
_WBITS = -13
_MEM_LEVEL = 2


class Packer:
    """Packs and unpacks bytes with one zlib dictionary per kind (thread-safe)."""

    def __init__(self) -> None:
        self._dictionaries: dict[str, bytes] = {}
        self._guard = threading.Lock()

    def dictionary(self, kind: str, data: bytes) -> bytes:
        """The kind's dictionary: the first object packed of its kind (`data`, if it is that one)."""
        dictionary = self._dictionaries.get(kind)
        if dictionary is None:
            with self._guard:  # the first object of its kind becomes the dictionary, once and for good
                dictionary = self._dictionaries.setdefault(kind, data)
        return dictionary

    def pack(self, kind: str, data: bytes) -> bytes:
        packer = zlib.compressobj(
            _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zdict=self.dictionary(kind, data)
        )
        return packer.compress(data) + packer.flush()

    def unpack(self, kind: str, packed: bytes) -> bytes:
        unpacker = zlib.decompressobj(_WBITS, zdict=self._dictionaries[kind])
        return unpacker.decompress(packed) + unpacker.flush()
