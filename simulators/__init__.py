"""Stand-ins for the outside world (node WMS / store systems, a carrier) as real HTTP services,
so the whole system runs on one laptop and connectors are tested over real HTTP."""
