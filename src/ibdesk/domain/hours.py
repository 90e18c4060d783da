"""The exchange's time zone and the US equity session clock (XNYS), as plain constants.

Pure and dependency-free (standard library only). Times of day are seconds after ET
midnight; which days are sessions and when a session closes early is
`ibdesk.calendar`'s business (it loads the exchange calendar), not this module's.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

ET_NAME = "America/New_York"
ET = ZoneInfo(ET_NAME)

SECONDS_PER_DAY = 86_400
PREMARKET_START_S = 4 * 3600  # 04:00 ET: extended hours open
RTH_START_S = 9 * 3600 + 30 * 60  # 09:30 ET: regular trading hours open
RTH_END_S = 16 * 3600  # 16:00 ET: regular close on a full day
RTH_SESSION_S = RTH_END_S - RTH_START_S  # 23_400 s = 6.5 h
POST_MARKET_S = 4 * 3600  # extended hours run until four hours after the close (20:00)


def time_of_day(s_of_day: int) -> time:
    """`s_of_day` seconds after midnight as a wall-clock time (`RTH_END_S` -> 16:00)."""
    hours, rest = divmod(s_of_day, 3600)
    return time(hours, rest // 60, rest % 60)
