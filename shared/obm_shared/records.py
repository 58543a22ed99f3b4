"""The MBO record as it crosses the wire.

A record is carried in DBN's own fixed 56-byte MBO layout (identical in DBN v1, v2 and v3), so a batch of
records read from a file is sent without re-encoding and decoded on the receiver as a NumPy view, never as one
Python object per record. :class:`MboRecord` is the same record as a typed struct, for code and tests that
work with records one at a time.

Units: prices are fixed-point integers in units of 1e-9 (``UNDEF_PRICE`` = 2**63 - 1 means "no price");
timestamps are nanoseconds since the UNIX epoch; ``ts_in_delta`` is nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import numpy as np
import numpy.typing as npt

MBO_RECORD_SIZE = 56
"""Bytes per MBO record on the wire (DBN layout)."""

MBO_DTYPE = np.dtype(
    [
        ("length", "u1"),  # record length in 4-byte words: always 14
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("order_id", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "S1"),
        ("side", "S1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)
"""NumPy view of DBN's MBO record layout: what ``DBNStore.to_ndarray`` yields for MBO files."""

assert MBO_DTYPE.itemsize == MBO_RECORD_SIZE

MboArray = npt.NDArray[np.void]
"""An array of records with dtype :data:`MBO_DTYPE`."""

_WHOLE_RECORD = np.dtype((np.void, MBO_RECORD_SIZE))
"""A record as opaque bytes: NumPy copies those many times faster than a structured record, field by field."""


def taken(records: MboArray, rows: npt.NDArray[np.intp]) -> MboArray:
    """``records[rows]``, copied as whole records."""
    return np.ascontiguousarray(records).view(_WHOLE_RECORD)[rows].view(MBO_DTYPE)


def joined(pieces: list[MboArray]) -> MboArray:
    """``np.concatenate(pieces)``, copied as whole records."""
    return np.concatenate([np.ascontiguousarray(piece).view(_WHOLE_RECORD) for piece in pieces]).view(
        MBO_DTYPE
    )


class MboRecord(msgspec.Struct, frozen=True, array_like=True):
    """One DBN MBO record, every field, without loss.

    ``price`` is fixed-point (1e-9), timestamps are UNIX nanoseconds, ``action`` and ``side`` are the DBN
    characters (``databento_dbn.Action`` / ``databento_dbn.Side`` values).
    """

    ts_recv: int
    ts_event: int
    rtype: int
    publisher_id: int
    instrument_id: int
    action: str
    side: str
    price: int
    size: int
    channel_id: int
    order_id: int
    flags: int
    ts_in_delta: int
    sequence: int


_RECORD_FIELDS = MboRecord.__struct_fields__
_CHAR_FIELDS = ("action", "side")


def records_to_array(records: Iterable[MboRecord]) -> MboArray:
    """Pack records into the wire layout."""
    rows = list(records)
    array = np.zeros(len(rows), dtype=MBO_DTYPE)
    array["length"] = MBO_RECORD_SIZE // 4
    for name in _RECORD_FIELDS:
        values = [getattr(row, name) for row in rows]
        if name in _CHAR_FIELDS:
            array[name] = [value.encode("ascii") for value in values]
        else:
            array[name] = values
    return array


def array_to_records(array: MboArray) -> list[MboRecord]:
    """Unpack records from the wire layout into structs (for tools and tests, not the hot path)."""
    columns = []
    for name in _RECORD_FIELDS:
        values = array[name].tolist()
        if name in _CHAR_FIELDS:
            values = [value.decode("ascii") for value in values]
        columns.append(values)
    return [MboRecord(*row) for row in zip(*columns)]
