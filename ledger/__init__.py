"""The stock ledger and the orders read model: SQL tables and the atomic operations on them."""
