"""The deal of a NATS run's partitions among the live receivers: members sorted by id, each a contiguous range."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from receiver.partition_leases import assigned


def test_partitions_go_in_contiguous_ranges_to_the_members_sorted_by_id() -> None:
    members = ["receiver-c", "receiver-a", "receiver-b"]
    assert assigned(4, members, "receiver-a") == [0, 1]
    assert assigned(4, members, "receiver-b") == [2]
    assert assigned(4, members, "receiver-c") == [3]
    assert [assigned(8, ["a", "b"], member) for member in "ab"] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_lone_receiver_gets_every_partition() -> None:
    assert assigned(4, ["only"], "only") == [0, 1, 2, 3]


def test_a_receiver_not_among_the_members_gets_none() -> None:
    assert assigned(4, ["a", "b"], "late") == []


def test_more_receivers_than_partitions_leave_the_last_ones_idle() -> None:
    assert [assigned(2, ["a", "b", "c"], member) for member in "abc"] == [[0], [1], []]


@given(
    partitions=st.integers(min_value=1, max_value=64),
    members=st.sets(st.text("abcdefgh0123456789-", min_size=1, max_size=8), min_size=1, max_size=12),
)
def test_every_partition_has_exactly_one_member_and_shares_differ_by_one_at_most(
    partitions: int, members: set[str]
) -> None:
    listed = list(members)
    shares = {member: assigned(partitions, listed, member) for member in members}
    dealt = sorted(partition for share in shares.values() for partition in share)
    assert dealt == list(range(partitions)), (
        f"partitions dealt {dealt}, expected each of 0..{partitions - 1} once"
    )
    sizes = [len(share) for share in shares.values()]
    assert max(sizes) - min(sizes) <= 1, f"uneven shares {shares}"
    # the deal depends on the members, not on the order they were listed in
    assert shares == {
        member: assigned(partitions, sorted(listed, reverse=True), member) for member in members
    }
