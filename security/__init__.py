"""Who may call OpenDOM and how callbacks prove who sent them: API keys (issued once, stored
hashed), roles, and HMAC signatures. `signatures` is pure, so the node simulators (and a real
node system's SDK) can sign without the ledger."""
