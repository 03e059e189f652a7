"""The 整改台账: a SQL projection of every case and an append-only log of its events.

Written only by activities, idempotently; read by the API. The workflows stay the source of
truth and the ledger can be rebuilt from them.
"""
