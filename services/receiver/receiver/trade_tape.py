"""The trade tape: the newest trades of a run, for the UI."""

from __future__ import annotations

import msgspec
import numpy as np

from obm_shared.dbn import TRADE_CODE
from obm_shared.records import MBO_DTYPE, MboArray
from receiver.book.views import format_price


class Trade(msgspec.Struct, frozen=True):
    """A trade print for the tape: price as decimal text, side of the aggressor (B, A or N)."""

    ts_event: int
    instrument_id: int
    publisher_id: int
    side: str
    price: str
    size: int


class TradeTape:
    """Keeps the newest ``size`` trade records as they came (a NumPy slice per batch on the ingest path) and
    turns them into :class:`Trade` rows only when they are read."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a trade tape holds at least one trade")
        self.size = size
        self._records: MboArray = np.empty(0, dtype=MBO_DTYPE)

    def record(self, records: MboArray) -> None:
        """Keep the trades among ``records`` (in order), dropping the oldest beyond ``size``."""
        trades = records[records["action"] == TRADE_CODE]
        if len(trades):
            self._records = np.concatenate([self._records, trades[-self.size :]])[-self.size :]

    def latest(self, limit: int) -> list[Trade]:
        """The newest ``limit`` trades, newest last."""
        rows = self._records[-limit:]
        columns = zip(
            rows["ts_event"].tolist(),
            rows["instrument_id"].tolist(),
            rows["publisher_id"].tolist(),
            rows["side"].tolist(),
            rows["price"].tolist(),
            rows["size"].tolist(),
        )
        return [
            Trade(ts_event, instrument_id, publisher_id, side.decode(), format_price(price), size)
            for ts_event, instrument_id, publisher_id, side, price, size in columns
        ]
