"""What the operator knows of every child it manages, kept from the watch events kopf already receives (an
informer's cache, in client-go's terms), so that a pass reads its app's children from memory instead of
listing them: each of a pass's label-selected LISTs (one per child kind) would scan every object of its kind in the namespace,
a cost that grows with the square of the apps in one namespace (docs/benchmarks.md).

Only what a pass reads is kept (controller/projection.py: metadata, spec, a Deployment's status fields), as compact
JSON, packed (packing.py). The same bytes tell whether an event can change a pass: a version whose projection
equals the stored one cannot.

How it stays right (each rule covers a way an informer's cache goes wrong):
- versions never go back: an event older than what a pass's own apply returned does not replace it (the
  resourceVersions of one object are compared as numbers, as etcd revisions are);
- a deletion removes only the very object deleted (by uid), never a newer one created under the same name;
- it also knows the name of every other object of the child kinds (the watches deliver them all): a pass
  creates a child under a name nobody holds without asking the API server first, and asks (a GET) when the
  name is held, so that a foreign object is never taken over (reconcile.py's name-conflict check);
- the child kinds are listed at startup, before kopf's watches start (childwatch.py, operator.py), so that no
  pass runs before every name taken is known (a name freed since is looked up: harmless);
- the safety pass lists the metadata of every managed child of each namespace (a page at a time) and compares
  the listing with what is kept (`disagreeing`): an app whose children disagree (a deletion lost while a watch stream was
  down) gets a live pass, which reads its children from the API server and replaces what is kept for it
  (`replace`). So a watch gap is corrected within a safety interval. The resume pass after a start reads the
  index: it was just filled from a listing of every child.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from maestro import render
from maestro.controller.projection import projection_digest, projection_json
from maestro.kube import client as kube
from maestro.runtime import packing

Key = tuple[str, str]  # (kind, name)
Name = tuple[str, str, str]  # (namespace, kind, name)


class KindListing(Protocol):
    """A listing of one kind (kube.Listing): its objects, then, once iterated, the version listed at."""

    kind: str
    resource_version: str

    def __iter__(self) -> Iterator[Mapping[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    key: Key
    namespace: str
    owner: str | None  # the uid of the object's controller (its app)
    version: int | None  # metadata.resourceVersion, when numeric
    body: bytes  # json of projection(obj), packed (packing.py)
    digest: bytes  # of that json (projection_digest): what a settled mark hashes of the child


class ChildIndex:
    """Managed children by uid, and the uids of each app's children (thread-safe: kopf's event loop writes,
    the passes' threads read and write)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._by_owner: dict[str, set[str]] = {}
        # Every object of the child kinds, Maestro's or not, by name -> uid: a name nobody holds needs no GET
        # before a child is created under it (the name-conflict check, reconcile.py).
        self._names: dict[Name, str] = {}
        self._packer = packing.Packer()
        self._guard = threading.Lock()

    def _entry(self, obj: Mapping[str, Any]) -> _Entry:
        meta = obj.get("metadata") or {}
        kind = sys.intern(str(obj.get("kind")))  # interned: thousands of entries share a few strings
        projected = projection_json(obj)
        return _Entry(
            key=(kind, str(meta.get("name"))),
            namespace=sys.intern(str(meta.get("namespace"))),
            owner=kube.controller_uid(obj),
            version=kube.resource_version(obj),
            body=self._packer.pack(kind, projected),
            digest=projection_digest(projected),
        )

    def _decode(self, uid: str, entry: _Entry) -> dict[str, Any]:
        """The stored child as a pass reads it: the projection with its identity back in its metadata."""
        kind, name = entry.key
        obj: dict[str, Any] = json.loads(self._packer.unpack(kind, entry.body))
        obj["apiVersion"] = kube.api_version(kind)
        obj["metadata"] |= {"name": name, "namespace": entry.namespace, "uid": uid}
        if entry.version is not None:
            obj["metadata"]["resourceVersion"] = str(entry.version)
        return obj

    def observe(self, event_type: str | None, obj: Mapping[str, Any]) -> bool:
        """Take in a watch event; True when it can change what a pass over the child's app does. The initial
        listing (event type None) starts none: the apps' own listing starts their passes."""
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return event_type is not None
        if (meta.get("labels") or {}).get(render.LABEL_MANAGED_BY) != render.MANAGED_BY:
            self._note_foreign(event_type, obj)  # not Maestro's: only its name matters
            return False
        if event_type == "DELETED":  # deleted by hand or by a prune: a pass puts back what is still wanted
            self.discard(obj)
            return True
        changed = self._store(str(uid), self._entry(obj))
        return changed and event_type is not None

    def taken(self, namespace: str, kind: str, name: str) -> bool:
        """Whether an object of this kind and name is known to exist (Maestro's or anyone's)."""
        with self._guard:
            return (namespace, kind, name) in self._names

    def record(self, obj: Mapping[str, Any]) -> None:
        """Take in a child as an apply or a read by a pass returned it."""
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._store(str(uid), self._entry(obj))

    def discard(self, obj: Mapping[str, Any]) -> None:
        """Forget this very object (by uid): deleted, or pruned by a pass."""
        uid = str((obj.get("metadata") or {}).get("uid"))
        with self._guard:
            entry = self._entries.pop(uid, None)
            if entry is not None:
                self._unlink(uid, entry.owner)
                self._unname((entry.namespace, *entry.key), uid)

    def children(self, owner: str) -> dict[Key, dict[str, Any]]:
        """The children controlled by the app with this uid, by (kind, name)."""
        with self._guard:
            entries = [(uid, self._entries[uid]) for uid in self._by_owner.get(owner, ())]
        return {entry.key: self._decode(uid, entry) for uid, entry in entries}

    def states(self, owner: str) -> list[tuple[str, str, str, bytes]]:
        """The app's children as a settled mark hashes them (settledmark.ChildState): kind, name, uid and the
        projection's digest, kept (nothing unpacked)."""
        with self._guard:
            entries = [(uid, self._entries[uid]) for uid in self._by_owner.get(owner, ())]
        return [(entry.key[0], entry.key[1], uid, entry.digest) for uid, entry in entries]

    def replace(self, owner: str, observed: Iterable[Mapping[str, Any]]) -> None:
        """What the API server just listed as the app's children is all of them: forget the others. Safe
        without comparing versions: only the app's own pass creates its children, and it is not running."""
        seen: set[str] = set()
        for obj in observed:
            self.record(obj)
            seen.add(str(obj["metadata"].get("uid")))
        with self._guard:
            for uid in self._by_owner.get(owner, set()) - seen:
                entry = self._entries.pop(uid)
                self._unlink(uid, entry.owner)
                self._unname((entry.namespace, *entry.key), uid)

    def disagreeing(self, namespace: str, listings: Iterable[KindListing]) -> set[str]:
        """The uids of the apps whose children, as the API server just listed them (every managed child of
        some kinds in the namespace, one listing per kind, consumed one object at a time; their metadata is all
        it reads), differ from what is kept of those kinds: an object missing on either side, or listed at a
        newer version than kept that the watch has not delivered by the end of the listing (an event missed). A
        child created after its kind's listing is no disagreement (its version is newer than the listing's):
        while apps converge there are many, and each would cost a live pass (a LIST per child kind)."""
        listed_by_owner: dict[str, set[str]] = {}
        listed_at: dict[str, int | None] = {}
        newer: dict[str, tuple[str, int | None]] = {}  # uid -> (owner, version listed)
        stale: set[str] = set()
        for listing in listings:
            for obj in listing:
                owner, uid = kube.controller_uid(obj), str((obj.get("metadata") or {}).get("uid"))
                if owner is None:
                    continue
                listed_by_owner.setdefault(owner, set()).add(uid)
                with self._guard:
                    kept = self._entries.get(uid)
                version = kube.resource_version(obj)
                if kept is None:
                    stale.add(owner)
                elif _behind(kept, version):
                    newer[uid] = (owner, version)
            listed_at[listing.kind] = kube.version_number(listing.resource_version)
        with self._guard:
            for uid, (owner, version) in newer.items():
                if _behind(self._entries.get(uid), version):
                    stale.add(owner)  # still older than listed, or gone: its event was missed
            for owner, uids in self._by_owner.items():
                expected = {
                    uid
                    for uid in uids
                    if self._entries[uid].namespace == namespace
                    and self._entries[uid].key[0] in listed_at  # a kind listed
                    and not kube.older(listed_at[self._entries[uid].key[0]], self._entries[uid].version)
                }
                if expected - listed_by_owner.get(owner, set()):
                    stale.add(owner)
        return stale

    def fingerprint(self, owner: str) -> int:
        """A hash of the app's children as a pass reads them (uids and projections, not resourceVersions: a
        controller's status write a pass ignores leaves it alone). Equal fingerprints: the same children."""
        with self._guard:
            return hash(frozenset((uid, self._entries[uid].body) for uid in self._by_owner.get(owner, ())))

    def absent(self, kind: str, namespace: str | None, listed: set[str]) -> list[dict[str, Any]]:
        """The objects of this kind in the namespace (None: all) known here but not among the `listed` uids: deleted
        while no watch stream was open (childwatch.py reports them as DELETED after listing again). A child
        comes back as a pass reads it (with its labels, so its app is found); another object as its name."""
        with self._guard:
            gone = [
                (name, uid)
                for name, uid in self._names.items()
                if name[1] == kind and namespace in (None, name[0]) and uid not in listed
            ]
            entries = {uid: self._entries.get(uid) for _, uid in gone}
        result = []
        for (ns, _, name), uid in gone:
            entry = entries[uid]
            if entry is not None:
                result.append(self._decode(uid, entry))
            else:
                result.append({"kind": kind, "metadata": {"name": name, "namespace": ns, "uid": uid}})
        return result

    def __len__(self) -> int:
        return len(self._entries)

    def _store(self, uid: str, entry: _Entry) -> bool:
        """Keep this version unless a newer one is kept already; True when what a pass reads changed."""
        with self._guard:
            old = self._entries.get(uid)
            if old is not None and kube.older(entry.version, old.version):
                return False  # an old event arriving after a pass's apply stored a newer version
            self._entries[uid] = entry
            self._names[(entry.namespace, *entry.key)] = uid
            if old is not None and old.owner != entry.owner:
                self._unlink(uid, old.owner)
            if entry.owner is not None:
                self._by_owner.setdefault(entry.owner, set()).add(uid)
            return old is None or old.body != entry.body

    def _note_foreign(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name: Name = (
            sys.intern(str(meta.get("namespace"))),
            sys.intern(str(obj.get("kind"))),
            str(meta.get("name")),
        )
        uid = str(meta.get("uid"))
        with self._guard:
            if event_type == "DELETED":
                self._unname(name, uid)
            else:
                self._names[name] = uid

    def _unname(self, name: Name, uid: str) -> None:
        if self._names.get(name) == uid:  # not a newer object created under the same name
            del self._names[name]

    def _unlink(self, uid: str, owner: str | None) -> None:
        if owner is None:
            return
        uids = self._by_owner.get(owner)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self._by_owner[owner]


def _behind(kept: _Entry | None, listed: int | None) -> bool:
    """Whether what is kept of a child is older than its version listed (or either is unknown, or none kept)."""
    return kept is None or listed is None or kept.version is None or kube.older(kept.version, listed)
