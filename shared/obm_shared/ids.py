"""Identifiers of runs."""

from __future__ import annotations

import uuid


def new_run_id() -> str:
    """A short random id for a run: 12 hex digits."""
    return uuid.uuid4().hex[:12]
