"""Historical Level 2 backfill from Databento for the days in the trader's trade log.

`tasks` (trade log -> (symbol, day) tasks), `window` (ET window -> UTC request) and
`convert` (MBP-10 arrays -> snapshot/trade tables) are pure; `tradelog` reads files,
`databento` is the vendor edge, `orchestrator` wires them, `api` is the programmatic API.
"""
