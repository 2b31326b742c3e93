"""One operator: what it keeps (the app cache, the child index, the statuses held back: the `Stores` a pass is
handed), the work queue of passes, the child watches, the safety pass and this replica's role, all from one
`Settings`. `maestro run` builds one and hands it to the kopf handlers as their `memo` (handlers.py); a test
builds its own.

What starts a pass, beside kopf's handlers (ConfigMaps and Secrets):
- events of the apps (childwatch.py's threads, `on_app`): the first listing, after the children's, is the
  resume after a start (a pass over every app but those settled as their mark says: settledmark.py); then an
  app whose spec was not acted on yet. Not kopf's watch: its per-event machinery was a third of a start at
  5000 apps (docs/benchmarks.md, stop 29);
- events of owned children (childwatch.py's threads, `on_child`), mapped to their app through the instance
  label: a child changed or deleted by hand is put back at once;
- a slow periodic safety pass (`safety_pass`, a background task): the safety net for anything a watch
  missed. It runs a pass over every app but those left settled by their last pass with the same app and
  children since (settled.py), the apps as the app cache holds them; it lists the apps instead after a gap of
  their watch, and every `safety_full_every` passes. After any child watch gap (childwatch.py), and every
  `safety_full_every` passes, it lists the children too, and gives a live pass to every app whose children the
  index holds otherwise: a child deleted during a watch gap is put back within one safety interval. A plain
  asyncio task, not a kopf timer: kopf puts a finalizer on every object that has a timer or daemon, and the app
  must stay deletable while the operator is down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from maestro import metrics, render
from maestro.api import models as api
from maestro.controller import reconcile, settledmark, status
from maestro.controller.execute import Outcome
from maestro.controller.statushold import HeldStatuses
from maestro.controller.stores import Stores
from maestro.kube import client as kube
from maestro.render import confighash, kinds
from maestro.runtime import relevance
from maestro.runtime.appcache import AppCache
from maestro.runtime.children import ChildIndex
from maestro.runtime.childwatch import KindWatches
from maestro.runtime.codedigest import code_digest
from maestro.runtime.leadership import Leadership
from maestro.runtime.settings import Settings
from maestro.runtime.settled import Seen, SettledApps
from maestro.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Operator:
    """One operator's state, and the work it does that is not a kopf handler."""

    settings: Settings = field(default_factory=Settings)
    leadership: Leadership = field(default_factory=Leadership)  # standalone unless given a peering
    apps: AppCache = field(init=False, default_factory=AppCache)
    children: ChildIndex = field(init=False, default_factory=ChildIndex)
    held: HeldStatuses = field(init=False)
    settled: SettledApps = field(init=False, default_factory=SettledApps)
    stores: Stores = field(init=False)  # what every pass is handed: the three above
    # Every trigger only queues a pass (returns at once); the queue's workers run them, one app at a time each.
    passes: WorkQueue[dict[str, Any]] = field(init=False)
    _child_watches: KindWatches | None = field(init=False, default=None)
    _app_watches: KindWatches | None = field(init=False, default=None)  # set as the apps' listing starts
    # A start's listings (`begin`), of the children then of the apps, until `start` awaits them.
    _listings: tuple[Future[None], Future[None]] | None = field(init=False, default=None)
    # The apps of a first listing that came while the children's listing was not complete (`begin` lists both
    # side by side): decided once it is. None while no children's listing is under way.
    _listed_early: list[ListedApp] | None = field(init=False, default=None)
    _early_guard: threading.Lock = field(init=False, default_factory=threading.Lock)
    _safety_task: asyncio.Task[None] | None = field(init=False, default=None)
    # The child watches' gap count at the last listing of every child kind, and the safety passes that listed
    # the kinds whose turn it was (`_kinds_to_list`).
    _gaps_listed: int | None = field(init=False, default=None)
    _turns: int = field(init=False, default=0)
    # The app watch's gap count at the last listing of the apps, and the safety passes so far (`_apps_to_pass`).
    _app_gaps_listed: int | None = field(init=False, default=None)
    _safety_passes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.held = HeldStatuses(hold=self.settings.status_hold)
        self.stores = Stores(
            apps=self.apps, children=self.children, held=self.held, code_digest=code_digest()
        )
        self.passes = WorkQueue(
            self.run_pass,
            workers=self.settings.workers,
            describe=reconcile.describe_failure,
            merge=_keep_live,
        )
        self.leadership.on_acting = self._resume_on_takeover

    def __copy__(self) -> Operator:
        # kopf gives every object it keeps in memory a copy of the memo: they all share this one operator.
        return self

    def run_pass(self, app: Mapping[str, Any]) -> None:
        """One pass (the work queue's work); a status held back (statushold.py) brings the app back when due."""
        meta = app["metadata"]
        try:
            outcome = reconcile.reconcile(app, self.stores)
        except Exception:
            # Its retry reads the app from the API server: the failure may be the app's absence (a 404 on its
            # status).
            self.apps.forget(meta["namespace"], meta["name"])
            if meta.get("uid"):
                self.settled.unsettle(str(meta["uid"]))
            raise
        if outcome.recheck_after is not None:
            key = (meta["namespace"], meta["name"])
            self.passes.add_after(key, {**app, "live": False}, outcome.recheck_after)
        self._note_settled(meta, outcome)

    def _note_settled(self, meta: Mapping[str, Any], outcome: Outcome) -> None:
        """Remember what a pass that left its app settled saw (settled.py), else that it did not. Looser than
        the durable mark (execute.settled_mark), on purpose: a pass that wrote may settle here, as an event of its
        writes arriving after this fingerprint makes the safety pass look again; the mark hashes the children the
        pass read, so it must come from a pass that wrote none."""
        fresh = self.apps.get(meta["namespace"], meta["name"])
        uid = meta.get("uid") or (fresh or {}).get("metadata", {}).get("uid")
        if not uid:
            return
        settled = (
            fresh is not None
            and fresh["metadata"].get("uid") == uid
            and outcome.phase == "Ready"
            and outcome.recheck_after is None
            and not confighash.app_sources(fresh)
        )
        if settled and fresh is not None:
            self.settled.settle(uid, Seen(kube.resource_version(fresh), self.children.fingerprint(uid)))
        else:
            self.settled.unsettle(uid)

    def settled_at_start(self, app: Mapping[str, Any]) -> bool:
        """At the start (the apps' first listing, after the child index was filled): whether the app's
        settled mark matches the app and its children as listed (settledmark.py). Such an app would get a pass
        that does nothing: it is remembered as settled instead (the safety pass skips it while it stays so)."""
        return self._settled_by_mark(ListedApp.of(app, self._app_state(app)))

    def _settled_by_mark(self, listed: ListedApp) -> bool:
        """`settled_at_start`, of what a decision needs of the app (its part of its mark computed already)."""
        code = self.stores.code_digest
        if listed.state is None or not listed.uid or code is None:  # no mark, or no code digest
            return False
        if settledmark.digest_of_parts(code, listed.state, self.children.states(listed.uid)) != listed.mark:
            return False
        self.settled.settle(listed.uid, Seen(listed.version, self.children.fingerprint(listed.uid)))
        metrics.record_phase(listed.namespace, listed.name, listed.phase)
        log.debug("%s/%s: settled as its mark says: no pass at the start", listed.namespace, listed.name)
        return True

    def on_app(self, event_type: str | None, app: Mapping[str, Any]) -> None:
        """An event of the apps (from childwatch.py's threads): the app cache takes it; a pass when it can call
        for one (relevance.py: every app of a first listing, and an app whose spec was not acted on yet), but not
        for an app of a first listing whose settled mark says the pass would do nothing. A standby keeps its
        cache current and starts no pass: it resumes every app when it takes over (`resume`)."""
        self.apps.observe(event_type, app)
        meta = app["metadata"]
        if event_type == "DELETED":  # it leaves maestro_apps at once, and holds no status back
            metrics.record_phase(meta["namespace"], meta["name"], None)
            self.held.settled((meta["namespace"], meta["name"]))
        if not self.leadership.known_acting() or not relevance.app_event_needs_pass(event_type, app):
            return
        if event_type is None:
            if self._listed_early is not None:  # its settled mark can be checked only against every child
                early = ListedApp.of(app, self._app_state(app))
                with self._early_guard:
                    if self._listed_early is not None:
                        self._listed_early.append(early)
                        return
            self._resume_app(app)
        else:
            self.request(app, urgent=relevance.spec_unobserved(app))

    def _app_state(self, app: Mapping[str, Any]) -> bytes | None:
        """The app's part of its settled mark (settledmark.app_state), if it has a mark: most of checking one,
        done as the apps are listed, while the children's listing goes on (docs/benchmarks.md, stop 32)."""
        current = app.get("status") or {}
        code = self.stores.code_digest
        if not current.get(settledmark.FIELD) or code is None:
            return None
        return settledmark.app_state(code, app, status.own(current))

    def _resume_app(self, app: Mapping[str, Any]) -> None:
        """An app of a first listing: `_resume_listed`."""
        self._resume_listed(ListedApp.of(app, self._app_state(app)))

    def _resume_listed(self, listed: ListedApp) -> None:
        """An app of a first listing: a pass, unless its settled mark says that pass would do nothing. A new
        spec goes before the status refreshes of other apps. The pass reads the caches, not live: the child
        index was filled by a listing of every child, and the apps' listing gave the app cache this very
        version; a live read would return the same, at a LIST per child kind per app (docs/benchmarks.md,
        stop 25)."""
        if not self._settled_by_mark(listed):
            meta = {"name": listed.name, "namespace": listed.namespace, "uid": listed.uid or None}
            self.request({"metadata": meta}, urgent=listed.urgent)

    def _resume_listed_early(self) -> None:
        """The child index is complete: decide the apps of a first listing that came before it was. One the
        app cache still holds at the version listed is decided on what was taken of it then, without decoding
        it again (a tenth of a millisecond an app: docs/benchmarks.md, stop 33)."""
        with self._early_guard:
            early, self._listed_early = self._listed_early or [], None
        for listed in early:
            if not self.leadership.known_acting():
                return
            kept = self.apps.version(listed.namespace, listed.name)
            if listed.version is not None and kept == listed.version:
                self._resume_listed(listed)
                continue
            # A newer version (its part of the mark is stale), one whose version is not a number, or None:
            # deleted since.
            app = self.apps.get(listed.namespace, listed.name)
            if app is not None:
                self._resume_app(app)

    def resume(self) -> None:
        """List every app and take each as a first listing (`on_app`): what a replica that has just taken over
        from another does, as it would at a start (its child index is current: a standby keeps it so)."""
        for scope in self.settings.scopes():
            for app in kube.list_pages(api.KIND, scope):
                self.on_app(None, app)

    def _resume_on_takeover(self) -> None:
        """Leadership's hook (in the event loop) when this replica starts acting: `resume` in a thread, unless
        the apps' first listing is still to come (it acts on every app itself)."""
        if self._app_watches is None:
            return
        log.info("acting now: resuming every app")
        asyncio.get_running_loop().run_in_executor(None, self._resume_logged)

    def _resume_logged(self) -> None:
        try:
            self.resume()
        except (kube.ApiError, OSError) as error:  # the safety pass covers every app not settled
            log.warning("could not list the apps to resume them: %s", error)
        except Exception:  # a bug: its traceback here, as the executor's future is not awaited by anyone
            log.exception("resuming the apps failed")

    def request(self, app: Mapping[str, Any], *, live: bool = False, urgent: bool = False) -> None:
        """Queue a pass over the app (name, namespace and uid are all it needs). `live`: the pass reads the app's
        children from the API server, not from the child index (the safety pass, for an app whose children disagree:
        children.py).
        `urgent`: a spec not yet acted on, run before status refreshes (workqueue.py)."""
        meta = app["metadata"]
        self.passes.add((meta["namespace"], meta["name"]), {**ref(app), "live": live}, urgent=urgent)

    def on_child(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """An event of the child kinds (from childwatch.py's threads) updates the child index (of other objects,
        only their names: children.py). A Maestro child's event starts a pass over its app (found by the
        instance label) only when it can change what that pass does: a status-only update by a controller, or
        the echo of Maestro's own apply, does not. A standby replica keeps its index current, and starts no
        pass."""
        if not self.children.observe(event_type, obj) or not self.leadership.known_acting():
            return
        meta = obj.get("metadata") or {}
        name = (meta.get("labels") or {}).get(render.LABEL_INSTANCE)
        namespace = meta.get("namespace")
        if name and namespace:
            if event_type == "DELETED":
                # Deleted by hand, or by the garbage collector because the app is gone: the pass reads the app
                # from the API server, not from a cached copy that a watch gap may have left behind
                # (appcache.py).
                self.apps.forget(namespace, name)
            self.request(
                {"metadata": {"name": name, "namespace": namespace, "uid": kube.controller_uid(obj)}}
            )

    def report_deleted_meanwhile(self, kind: str, namespace: str | None, listed: set[str]) -> None:
        """A child watch listed again after a gap: what the index knew of that kind and is no longer listed was
        deleted during the gap (a child deleted while the API server restarted, say): put it back now."""
        for obj in self.children.absent(kind, namespace, listed):
            self.on_child("DELETED", obj)

    def retry_failed_passes(self) -> None:
        """A child watch is open again after failing: the API server is back, so the passes that failed while
        it was away run now rather than after their back-off."""
        retried = self.passes.retry_now()
        if retried:
            log.info("the API server is reachable again: retrying %d failed passes now", retried)

    def safety_pass(self) -> None:
        """Reconcile every app in the watched namespaces once, but those settled with the same app and
        children since (settled.py); a failing app does not stop the others."""
        if not self.leadership.acting():  # kopf pauses a standby's watches, not this task: it must skip here
            return
        self._safety_passes += 1
        listed = self._apps_to_pass()
        apps = [app for app, _ in listed]
        gaps = None if self._child_watches is None else self._child_watches.gaps  # read before the listing
        due = self._kinds_to_list(gaps)
        stale = self._children_disagreeing(apps, due) if due else set()
        # Only once listed: a listing that failed is due again at the next pass.
        if len(due) == len(kinds.WATCHED):
            self._gaps_listed = gaps
        else:
            self._turns += 1
        passes = 0
        for app, version in listed:
            uid = str(app["metadata"].get("uid"))
            if uid not in stale and self.settled.unchanged(
                uid, Seen(version, self.children.fingerprint(uid))
            ):
                continue  # a pass would find what the last one left: nothing to do
            self.request(app, live=uid in stale)
            passes += 1
        log.debug("safety pass: %d apps, %d passes, %d of them live", len(apps), passes, len(stale))

    def _apps_to_pass(self) -> list[tuple[dict[str, Any], int | None]]:
        """The apps a safety pass goes over (`ref`, resourceVersion): those the app cache holds, kept current by
        their watch, unless that watch had a gap since the apps were last listed (an app deleted meanwhile sent
        no event), or every `safety_full_every` passes: then they are listed, and the apps no longer there are
        forgotten. The listing every minute was most of an idle operator's CPU at 5000 apps (docs/benchmarks.md,
        stop 33). An app the cache forgot after a failed pass has its retry queued already."""
        gaps = None if self._app_watches is None else self._app_watches.gaps  # read before the listing
        every = max(1, self.settings.safety_full_every)
        if gaps is not None and gaps == self._app_gaps_listed and self._safety_passes % every:
            return [
                ({"metadata": {"namespace": key[0], "name": key[1], "uid": uid}}, version)
                for key, uid, version in self.apps.refs()
            ]
        self._app_gaps_listed = None  # a listing that fails is due again at the next pass
        # A page at a time, of metadata only (nothing of a spec or status is needed here), keeping each app's
        # name, uid and version: a whole listing of thousands of apps would leave its parsing's high-water mark in
        # the process.
        listed = [
            (ref(app), kube.resource_version(app))
            for scope in self.settings.scopes()
            for app in kube.list_pages(api.KIND, scope, metadata_only=True)
        ]
        present = [(app["metadata"]["namespace"], app["metadata"]["name"]) for app, _ in listed]
        metrics.forget_missing(present)
        self.apps.retain(present)
        self.settled.retain(str(app["metadata"].get("uid")) for app, _ in listed)
        self._app_gaps_listed = gaps
        return listed

    def _kinds_to_list(self, gaps: int | None) -> list[str]:
        """The child kinds a safety pass lists: every one after a child watch gap since the last such listing
        (`gaps`: the watches' count now; None: no child watches); else those whose turn it is, each kind every
        `safety_full_every` passes. With no gap the index missed nothing a watch delivers; spread over the passes,
        that listing weighs on no pass alone (the whole of it was a third of a 5-minute idle window at 5000
        apps: docs/benchmarks.md, stop 32)."""
        if gaps is None or gaps != self._gaps_listed:
            return list(kinds.WATCHED)
        every = max(1, self.settings.safety_full_every)
        return [kind for i, kind in enumerate(kinds.WATCHED) if i % every == self._turns % every]

    def _children_disagreeing(self, apps: list[dict[str, Any]], kinds_listed: list[str]) -> set[str]:
        """One listing of each namespace's children of these kinds, compared with the child index: only an app
        whose children disagree (a deletion a watch gap lost, say) gets a live pass, which lists its children (a
        LIST per child kind, each scanning the namespace)."""
        stale: set[str] = set()
        for namespace in sorted({app["metadata"]["namespace"] for app in apps}):
            listings = (  # metadata only: the versions tell (a third of the idle CPU was this JSON, stop 32)
                kube.list_pages(
                    kind, namespace, {render.LABEL_MANAGED_BY: render.MANAGED_BY}, metadata_only=True
                )
                for kind in kinds_listed
            )
            stale |= self.children.disagreeing(namespace, listings)
        return stale

    def begin(self) -> None:
        """Begin the start's listings, in threads: every object of the child kinds and every app, side by side.
        The apps' listing is the resume (`on_app`); an app whose mark is checked, or whose pass runs, before the
        children's listing is complete could take a name held by an object not known yet (children.py), or
        find a child missing, so they wait for it, and for `start`: nothing is decided, and no pass runs, before
        kopf has started. `maestro run` begins before it imports and starts kopf, whose seconds then overlap the
        listings."""
        scopes = self.settings.scopes()
        self._child_watches = KindWatches(
            kinds.WATCHED, scopes, self.on_child, self.retry_failed_passes, self.report_deleted_meanwhile
        )
        # An app deleted during a gap of its stream sends no event: the safety pass keeps only the apps it lists.
        self._app_watches = KindWatches([api.KIND], scopes, self.on_app, self.retry_failed_passes)
        self._listed_early = []
        self._listings = (
            _in_thread("list-children", self._child_watches.list),
            _in_thread("list-apps", self._app_watches.list),
        )

    async def start(self) -> None:
        """The start's listings (`begin`, unless begun); once the children are listed, the apps listed so far
        are decided, and the others as they are listed. Then the watches of the kinds listed (childwatch.py),
        and the safety pass's loop. A failed listing fails the start; kopf runs it again, listing again."""
        if self._listings is None:
            self.begin()
        assert (
            self._listings is not None and self._child_watches is not None and self._app_watches is not None
        )
        (children_listed, apps_listed), self._listings = self._listings, None
        try:
            await asyncio.wrap_future(children_listed)
            await asyncio.get_running_loop().run_in_executor(None, self._resume_listed_early)
        finally:  # a failed children's listing fails the start once the apps' listing is over too
            await asyncio.wait([asyncio.wrap_future(apps_listed)])
        apps_listed.result()  # a failed apps' listing fails the start
        # That listing, made before any stream could break (gap 0), is as fresh as a safety pass's: the safety
        # passes list every child kind again only after a gap since, the kinds whose turn it is otherwise.
        self._gaps_listed = self._app_gaps_listed = 0
        self._child_watches.follow()
        self._app_watches.follow()
        self._safety_task = asyncio.create_task(self._safety_loop())

    def stop(self) -> None:
        """Stop the watches and the safety pass's loop."""
        for watches in (self._child_watches, self._app_watches):
            if watches is not None:
                watches.stop()
        if self._safety_task is not None:
            self._safety_task.cancel()

    async def _safety_loop(self) -> None:
        interval = self.settings.safety_interval
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            due = loop.time()
            while not safety_pass_due(self.passes.depth(), loop.time() - due, interval):
                await asyncio.sleep(min(1.0, interval))
            try:
                await loop.run_in_executor(None, self.safety_pass)
            except (kube.ApiError, OSError) as error:
                log.warning("safety pass failed: %s", error)


def safety_pass_due(queued: int, waited: float, interval: float) -> bool:
    """Whether the safety pass runs now, `waited` seconds after it was due. It is a net for what a watch
    missed, not urgent: while passes are queued (a burst of new apps, say), its listings and its pass over
    every app would compete with them for the API server, so it waits for the queue to empty, for at most
    one more `interval`."""
    return queued == 0 or waited >= interval


class ListedApp(NamedTuple):
    """What deciding an app of a first listing needs of it (`Operator._resume_listed`), taken as it was
    listed; kept until then for an app listed before the children's listing was complete."""

    namespace: str
    name: str
    uid: str
    version: int | None
    mark: str | None  # status.settledMark, as stored
    phase: str | None  # status.phase, as stored
    urgent: bool  # its spec not acted on yet (relevance.spec_unobserved)
    state: bytes | None  # its part of its settled mark (None: it has no mark, or there is no code digest)

    @classmethod
    def of(cls, app: Mapping[str, Any], state: bytes | None) -> ListedApp:
        meta, current = app["metadata"], app.get("status") or {}
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=str(meta.get("uid") or ""),
            version=kube.resource_version(app),
            mark=current.get(settledmark.FIELD),
            phase=current.get("phase"),
            urgent=relevance.spec_unobserved(app),
            state=state,
        )


def _in_thread(name: str, work: Callable[[], None]) -> Future[None]:
    """Run `work` in a daemon thread (a process that exits before its start is done is not held up)."""
    done: Future[None] = Future()

    def run() -> None:
        try:
            work()
        except BaseException as error:  # handed to whoever awaits the start
            done.set_exception(error)
        else:
            done.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return done


def ref(body: Mapping[str, Any]) -> dict[str, Any]:
    """All a queued pass needs of an app: its name, namespace and uid."""
    meta = body["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")}}


def _keep_live(queued: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A live read asked for stays asked for when an event queues the same app before its pass has run."""
    return {**new, "live": bool(queued.get("live") or new.get("live"))}
