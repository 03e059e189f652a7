"""The thin HTTP API: validate, start/update/query workflows, read the ledger."""
