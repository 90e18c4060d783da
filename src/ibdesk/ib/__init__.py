"""IB connectivity: connection, reconnect and resubscribe, pacing, contracts, requests, gateway."""
