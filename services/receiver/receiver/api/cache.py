"""Encoded responses reused until the book changes: many clients reading between two applied slices cost
one view computation."""

from __future__ import annotations

from collections.abc import Callable, Hashable

DEFAULT_MAX_ENTRIES = 256
"""Responses kept for one version: keys come from client queries, and an idle run keeps its version forever."""


class VersionedCache:
    """Keeps at most ``max_entries`` responses of one book version; a new version empties it."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._version: Hashable = None
        self._responses: dict[Hashable, bytes] = {}

    def __len__(self) -> int:
        """Responses kept."""
        return len(self._responses)

    def get(self, version: Hashable, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The cached response for ``key`` at ``version``, computed on first request."""
        if version != self._version:
            self._version, self._responses = version, {}
        response = self._responses.get(key)
        if response is None:
            if len(self._responses) >= self.max_entries:
                del self._responses[next(iter(self._responses))]  # the oldest: recomputing it costs one view
            response = self._responses[key] = compute()
        return response
