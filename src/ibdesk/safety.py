"""Safety rules that every command applies the same way: paper by default, live confirmed.

Live trading (`--live`, or `IB_PAPER_TRADING=0`) needs a confirmation asked before
connecting to anything: an interactive "yes" on a terminal, or `IBDESK_CONFIRM_LIVE=yes`
for unattended runs. Without one, the command refuses (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable

from ibdesk.config import Settings
from ibdesk.errors import UserInputError

CONFIRM_WORD = "yes"


def wants_live(settings: Settings, live_flag: bool) -> bool:
    return live_flag or not settings.ib_paper_trading


def confirm_live(
    settings: Settings,
    *,
    live_flag: bool,
    is_terminal: bool,
    ask: Callable[[str], str],
) -> bool:
    """Return True for live (confirmed), False for paper; raise when live is not confirmed."""
    if not wants_live(settings, live_flag):
        return False
    if settings.ibdesk_confirm_live.strip().lower() == CONFIRM_WORD:
        return True
    if is_terminal:
        answer = ask("LIVE trading with real money was requested. Type 'yes' to continue: ")
        if answer.strip().lower() == CONFIRM_WORD:
            return True
        raise UserInputError("live trading not confirmed; nothing was done")
    raise UserInputError(
        "live trading needs confirmation: run on a terminal and answer 'yes', "
        "or set IBDESK_CONFIRM_LIVE=yes for unattended runs"
    )
