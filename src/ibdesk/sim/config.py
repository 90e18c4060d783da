"""What a sim run depends on (`SimConfig`), shared by the server and the market it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ibdesk.config import Settings
from ibdesk.ib.pacing import IB_PACING_RULES, PacingRules


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a sim run depends on; `events_per_s` is book events per active symbol."""

    host: str = "127.0.0.1"
    port: int = 4002
    seed: int = 7
    clock: str = "now"
    speed: float = 1.0
    depth_cap: int = 3
    symbols: tuple[str, ...] = ()
    pacing: PacingRules = IB_PACING_RULES
    events_per_s: float = 50.0
    max_msgs_per_s: int = 50
    accounts: tuple[str, ...] = ("SIM0001",)
    tick_interval_s: float = 0.01
    bar_update_interval_s: float = 1.0
    scanner_interval_s: float = 5.0
    starting_cash_usd: float = 100_000.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SimConfig:
        """A config whose seed and clock default to IBDESK_SIM_SEED / IBDESK_SIM_CLOCK, for
        every command that starts a sim (`ibdesk sim`, `run --sim`, `record-depth --sim`)."""
        fields: dict[str, Any] = {
            "seed": settings.ibdesk_sim_seed,
            "clock": settings.ibdesk_sim_clock,
        }
        fields.update(overrides)
        return cls(**fields)
