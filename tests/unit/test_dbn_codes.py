"""obm_shared.dbn writes DBN's codes as literals, for the receiver's compiled hot path: they must be DBN's."""

from __future__ import annotations

from databento_dbn import (
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_MBP,
    F_SNAPSHOT,
    F_TOB,
    FIXED_PRICE_SCALE,
    UNDEF_PRICE,
    Action,
    RType,
    Side,
)

from obm_shared import dbn


def test_the_action_codes_are_dbn_actions() -> None:
    actions = (Action.ADD, Action.CANCEL, Action.MODIFY, Action.CLEAR, Action.TRADE, Action.FILL, Action.NONE)
    assert tuple(ord(str(a)) for a in actions) == (
        dbn.ADD,
        dbn.CANCEL,
        dbn.MODIFY,
        dbn.CLEAR,
        dbn.TRADE,
        dbn.FILL,
        dbn.NO_ACTION,
    )
    assert (str(Action.CLEAR).encode(), str(Action.TRADE).encode()) == (dbn.CLEAR_CODE, dbn.TRADE_CODE)


def test_the_side_codes_are_dbn_sides() -> None:
    assert (ord(str(Side.BID)), ord(str(Side.ASK)), ord(str(Side.NONE))) == (dbn.BID, dbn.ASK, dbn.NO_SIDE)


def test_the_flags_are_dbn_flags() -> None:
    assert (F_LAST, F_TOB, F_SNAPSHOT, F_MBP, F_BAD_TS_RECV, F_MAYBE_BAD_BOOK) == (
        dbn.F_LAST,
        dbn.F_TOB,
        dbn.F_SNAPSHOT,
        dbn.F_MBP,
        dbn.F_BAD_TS_RECV,
        dbn.F_MAYBE_BAD_BOOK,
    )


def test_the_prices_and_record_type_are_dbn_s() -> None:
    assert (UNDEF_PRICE, FIXED_PRICE_SCALE, int(RType.MBO)) == (
        dbn.UNDEF_PRICE,
        dbn.PRICE_SCALE,
        dbn.MBO_RTYPE,
    )


def test_every_constant_is_checked() -> None:
    """A code added to obm_shared.dbn needs a check above."""
    checked = {
        *("ADD", "CANCEL", "MODIFY", "CLEAR", "TRADE", "FILL", "NO_ACTION", "CLEAR_CODE", "TRADE_CODE"),
        *("BID", "ASK", "NO_SIDE"),
        *("F_LAST", "F_TOB", "F_SNAPSHOT", "F_MBP", "F_BAD_TS_RECV", "F_MAYBE_BAD_BOOK"),
        *("UNDEF_PRICE", "PRICE_SCALE", "MBO_RTYPE"),
    }
    assert {name for name in vars(dbn) if name.isupper()} == checked
