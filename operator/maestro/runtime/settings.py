"""The settings of one operator, each with the reason for its default. `maestro run` builds them once, from its
flags and the environment (`from_env`); the tests build their own."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from maestro.controller import statushold


@dataclass(frozen=True)
class Settings:
    # The namespaces watched (`--namespace`); empty: every namespace.
    namespaces: tuple[str, ...] = ()
    # Seconds between safety passes over every app (MAESTRO_SAFETY_INTERVAL; the e2e tests shorten it): a net
    # for what a watch missed, not a trigger, so rare enough to cost little with thousands of apps.
    safety_interval: float = 60.0
    # A safety pass lists every child (to compare with the child index) after a child watch broke since its last
    # listing, else each kind every this many passes; the apps likewise (else it takes them from the app cache):
    # with no gap the caches missed nothing a watch delivers, and at thousands of apps those listings were most
    # of an idle operator's CPU (docs/benchmarks.md, stops 25 and 33).
    safety_full_every: int = 10
    # Threads that run passes, and kopf's handler threads (the sync handlers: config sources): a pass is a
    # handful of blocking API calls; more threads than this only queue at the API server.
    workers: int = 8
    # Seconds a rollout's intermediate status is held back before it is written (MAESTRO_STATUS_HOLD;
    # controller/statushold.py): a rollout that ends within it costs one status write.
    status_hold: float = statushold.HOLD_SECONDS

    @classmethod
    def from_env(cls, namespaces: Sequence[str] = (), environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings of `maestro run`: the defaults, but for what the environment sets."""
        return cls(
            namespaces=tuple(namespaces),
            safety_interval=float(environ.get("MAESTRO_SAFETY_INTERVAL", cls.safety_interval)),
            status_hold=float(environ.get("MAESTRO_STATUS_HOLD", cls.status_hold)),
        )

    def scopes(self) -> list[str | None]:
        """Where to list and watch: each watched namespace, or None (the whole cluster)."""
        return [*self.namespaces] or [None]
