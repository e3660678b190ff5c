"""HTTP clients for the systems OpenDOM drives: node systems (WMS / 3PL, store) and carriers."""
