"""Encoded responses reused until the book changes: many clients reading between two applied slices cost
one view computation."""

from __future__ import annotations

from collections.abc import Callable, Hashable


class VersionedCache:
    """Keeps the responses of one book version; a new version empties it."""

    def __init__(self) -> None:
        self._version: Hashable = None
        self._responses: dict[Hashable, bytes] = {}

    def get(self, version: Hashable, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The cached response for ``key`` at ``version``, computed on first request."""
        if version != self._version:
            self._version, self._responses = version, {}
        response = self._responses.get(key)
        if response is None:
            response = self._responses[key] = compute()
        return response
