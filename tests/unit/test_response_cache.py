"""The receiver's response cache: one computation per key and book version, and a bounded number of keys
even while the version stands still (an idle run's books never change)."""

from __future__ import annotations

from collections.abc import Callable

from receiver.api.cache import VersionedCache


def response_of(key: int) -> Callable[[], bytes]:
    """The computation of ``key``'s response: its digits."""
    return lambda: b"%d" % key


def test_a_key_is_computed_once_per_version() -> None:
    cache = VersionedCache()
    computed: list[str] = []

    def compute(text: str) -> bytes:
        computed.append(text)
        return text.encode()

    assert cache.get(1, "depth 10", lambda: compute("v1")) == b"v1"
    assert cache.get(1, "depth 10", lambda: compute("again")) == b"v1"
    assert cache.get(2, "depth 10", lambda: compute("v2")) == b"v2", (
        "a new version must not see the old answer"
    )
    assert computed == ["v1", "v2"]


def test_ten_thousand_distinct_keys_at_one_version_keep_the_cache_at_its_bound() -> None:
    cache = VersionedCache(max_entries=256)
    for key in range(10_000):
        assert cache.get("idle run", key, response_of(key)) == b"%d" % key
    assert len(cache) == 256, f"{len(cache)} responses kept for a bound of 256"
    assert cache.get("idle run", 9_999, lambda: b"recomputed") == b"9999", "the newest keys stay"
