"""ISO-8601 text as UNIX nanoseconds, to the nanosecond (``datetime`` alone stops at microseconds).

The one reading of a written time: the receiver's history points and the live protocol's subscription start
each check their own form first, then convert here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

MAX_DECIMALS: Final = 9
"""Nanoseconds: the finest fraction of a second a time can carry."""
NS_PER_SECOND: Final = 1_000_000_000
_FRACTION = re.compile(r"^(?P<base>[^.]*[T ]\d\d:\d\d:\d\d)\.(?P<fraction>\d{1,9})(?P<zone>.*)$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ns(text: str) -> int:
    """UNIX nanoseconds of an ISO-8601 date, or date and time with up to nine decimals; a time without zone is
    UTC, and one before 1970 is negative. Raises ValueError with ``datetime``'s reason when it is not one."""
    nanos = 0
    # datetime reads six decimals at most: the fraction is read here and the rest by datetime
    if match := _FRACTION.match(text):
        text = match["base"] + match["zone"]
        nanos = int(match["fraction"].ljust(MAX_DECIMALS, "0"))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    since_epoch = moment - _EPOCH
    seconds = since_epoch.days * 86_400 + since_epoch.seconds
    return seconds * NS_PER_SECOND + since_epoch.microseconds * 1_000 + nanos
