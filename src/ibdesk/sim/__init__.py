"""A simulated IB Gateway that speaks the real TWS API socket protocol (server version 178).

Real clients (ib_async, the official `ibapi`) connect to it over TCP exactly as they connect
to IB Gateway. `ibdesk.sim.server.SimServer` (asyncio) and `SimThread` (a blocking wrapper
for tests) are the programmatic entry points; `ibdesk sim` is the command. The market they
serve is a `source.MarketSource` (by default the seeded `synthetic.SyntheticMarket`).
"""
