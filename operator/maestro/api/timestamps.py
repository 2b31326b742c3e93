"""Timestamps as the Kubernetes API writes them (metav1.Time): for status conditions and Events."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """The current time as metav1.Time wants it (RFC 3339, seconds, Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
