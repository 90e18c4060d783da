"""The sim's built-in universe: real US tickers with plausible reference data.

Pure data. Reference prices are the level the market model starts around (the previous
close); ADV is average daily volume in shares; `gap_pct` is a pre-market gap (small caps
that gap up with elevated volume feed the gap scanner). Numbers are plausible, not quotes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ticker:
    """One instrument of the universe."""

    symbol: str
    con_id: int
    long_name: str
    primary_exchange: str
    ref_price_usd: float
    adv_shares: int
    gap_pct: float = 0.0
    volume_boost: float = 1.0
    sec_type: str = "STK"

    @property
    def is_small_cap(self) -> bool:
        return 1.0 <= self.ref_price_usd <= 30.0


def _t(
    symbol: str,
    con_id: int,
    name: str,
    exchange: str,
    price: float,
    adv: int,
    gap_pct: float = 0.0,
    boost: float = 1.0,
) -> Ticker:
    return Ticker(symbol, con_id, name, exchange, price, adv, gap_pct, boost)


UNIVERSE: tuple[Ticker, ...] = (
    _t("TSLA", 76792991, "TESLA INC", "NASDAQ", 318.20, 105_000_000),
    _t("AAPL", 265598, "APPLE INC", "NASDAQ", 211.30, 52_000_000),
    _t("MSFT", 272093, "MICROSOFT CORP", "NASDAQ", 512.50, 19_000_000),
    _t("NVDA", 4815747, "NVIDIA CORP", "NASDAQ", 176.70, 190_000_000),
    _t("AMZN", 3691937, "AMAZON.COM INC", "NASDAQ", 231.00, 38_000_000),
    _t("GOOGL", 208813719, "ALPHABET INC-CL A", "NASDAQ", 196.50, 33_000_000),
    _t("META", 107113386, "META PLATFORMS INC-CLASS A", "NASDAQ", 700.20, 12_000_000),
    _t("AMD", 4391, "ADVANCED MICRO DEVICES", "NASDAQ", 173.60, 55_000_000),
    _t("NFLX", 15124833, "NETFLIX INC", "NASDAQ", 1180.00, 4_000_000),
    _t("INTC", 270639, "INTEL CORP", "NASDAQ", 20.70, 85_000_000),
    _t("SPY", 756733, "SPDR S&P 500 ETF TRUST", "ARCA", 634.50, 65_000_000),
    _t("QQQ", 320227571, "INVESCO QQQ TRUST SERIES 1", "NASDAQ", 566.30, 40_000_000),
    _t("IWM", 9579970, "ISHARES RUSSELL 2000 ETF", "ARCA", 222.10, 30_000_000),
    _t("DIA", 73128548, "SPDR DOW JONES INDUSTRIAL AVERAGE", "ARCA", 446.80, 3_500_000),
    _t("JPM", 1520593, "JPMORGAN CHASE & CO", "NYSE", 295.40, 9_000_000),
    _t("BAC", 10098, "BANK OF AMERICA CORP", "NYSE", 47.80, 38_000_000),
    _t("WMT", 13824, "WALMART INC", "NYSE", 97.90, 17_000_000),
    _t("XOM", 13977, "EXXON MOBIL CORP", "NYSE", 110.60, 15_000_000),
    _t("KO", 8894, "COCA-COLA CO/THE", "NYSE", 69.10, 14_000_000),
    _t("DIS", 6459, "WALT DISNEY CO/THE", "NYSE", 121.70, 9_000_000),
    _t("BA", 4762, "BOEING CO/THE", "NYSE", 231.90, 9_500_000),
    _t("UBER", 365207014, "UBER TECHNOLOGIES INC", "NYSE", 92.40, 20_000_000),
    _t("PLTR", 444857009, "PALANTIR TECHNOLOGIES INC-A", "NASDAQ", 158.80, 85_000_000),
    _t("COIN", 481691285, "COINBASE GLOBAL INC -CLASS A", "NASDAQ", 378.60, 11_000_000),
    _t("SOFI", 484231734, "SOFI TECHNOLOGIES INC", "NASDAQ", 21.30, 65_000_000),
    _t("F", 9599491, "FORD MOTOR CO", "NYSE", 11.20, 60_000_000),
    _t("T", 37018770, "AT&T INC", "NYSE", 27.50, 35_000_000),
    _t("PFE", 11361, "PFIZER INC", "NYSE", 24.30, 40_000_000),
    _t("NIO", 332794741, "NIO INC - ADR", "NYSE", 4.85, 55_000_000),
    _t("RIVN", 500106045, "RIVIAN AUTOMOTIVE INC-A", "NASDAQ", 13.10, 35_000_000),
    _t("LCID", 475524745, "LUCID GROUP INC", "NASDAQ", 2.55, 90_000_000),
    _t("MARA", 395440548, "MARA HOLDINGS INC", "NASDAQ", 16.90, 45_000_000),
    _t("RIOT", 372924911, "RIOT PLATFORMS INC", "NASDAQ", 13.40, 30_000_000),
    _t("HOOD", 498232040, "ROBINHOOD MARKETS INC - A", "NASDAQ", 104.20, 45_000_000),
    _t("SNAP", 268084062, "SNAP INC - A", "NYSE", 9.60, 30_000_000),
    _t("AAL", 139673266, "AMERICAN AIRLINES GROUP INC", "NASDAQ", 12.30, 40_000_000),
    _t("CCL", 5437, "CARNIVAL CORP", "NYSE", 29.10, 28_000_000),
    _t("PLUG", 19002, "PLUG POWER INC", "NASDAQ", 1.72, 80_000_000, 18.0, 6.0),
    _t("SOUN", 594810011, "SOUNDHOUND AI INC-A", "NASDAQ", 12.40, 60_000_000, 9.5, 4.0),
    _t("BBAI", 518779112, "BIGBEAR.AI HOLDINGS INC", "NYSE", 6.80, 55_000_000, 14.0, 5.0),
    _t("OPEN", 452302547, "OPENDOOR TECHNOLOGIES INC", "NASDAQ", 2.45, 120_000_000, 22.0, 8.0),
    _t("GME", 36285627, "GAMESTOP CORP-CLASS A", "NYSE", 23.10, 8_000_000, 7.5, 3.0),
    _t("AMC", 140070600, "AMC ENTERTAINMENT HLDS-CL A", "NYSE", 3.05, 15_000_000, 11.0, 4.5),
    _t("RGTI", 527520396, "RIGETTI COMPUTING INC", "NASDAQ", 15.20, 45_000_000, 12.5, 5.0),
    _t("QUBT", 475066411, "QUANTUM COMPUTING INC", "NASDAQ", 18.60, 25_000_000, 16.0, 6.0),
    _t("IONQ", 514931578, "IONQ INC", "NYSE", 27.40, 20_000_000, 6.0, 2.5),
    _t("ACHR", 525599361, "ARCHER AVIATION INC-A", "NYSE", 11.80, 30_000_000, 8.0, 3.0),
    _t("RKLB", 479624278, "ROCKET LAB CORP", "NASDAQ", 29.60, 22_000_000, 5.0, 2.0),
    _t("SIRI", 756729034, "SIRIUSXM HOLDINGS INC", "NASDAQ", 22.10, 6_000_000),
    _t("VALE", 13016, "VALE SA-SP ADR", "NYSE", 9.90, 30_000_000),
    _t("GRAB", 517196095, "GRAB HOLDINGS LTD - CL A", "NASDAQ", 4.95, 28_000_000),
    _t("CLSK", 480452458, "CLEANSPARK INC", "NASDAQ", 10.80, 25_000_000, 10.0, 4.0),
    _t("HIMS", 453735478, "HIMS & HERS HEALTH INC", "NYSE", 29.20, 20_000_000, 4.0, 2.0),
    _t("BITF", 485813962, "BITFARMS LTD", "NASDAQ", 1.28, 30_000_000, 25.0, 9.0),
    _t("TLRY", 334213366, "TILRAY BRANDS INC", "NASDAQ", 1.05, 40_000_000, 13.0, 5.0),
)

_BY_SYMBOL: dict[str, Ticker] = {t.symbol: t for t in UNIVERSE}
_BY_CON_ID: dict[int, Ticker] = {t.con_id: t for t in UNIVERSE}
DEFAULT_SYMBOL = "TSLA"


def lookup(symbol: str) -> Ticker | None:
    """The ticker for a symbol (case-insensitive), or None when the sim does not know it."""
    return _BY_SYMBOL.get(symbol.strip().upper())


def by_con_id(con_id: int) -> Ticker | None:
    return _BY_CON_ID.get(con_id)


def select(symbols: list[str] | None) -> tuple[Ticker, ...]:
    """The universe restricted to `symbols` (unknown names raise ValueError naming them)."""
    if not symbols:
        return UNIVERSE
    unknown = [s for s in symbols if lookup(s) is None]
    if unknown:
        raise ValueError(f"unknown symbols for the sim: {', '.join(unknown)}")
    chosen = [lookup(s) for s in symbols]
    return tuple(t for t in chosen if t is not None)
