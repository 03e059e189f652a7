"""Notifications: what bihuan owes people outside it (催办, 督办, 吹哨 summons ...), delivered.

The case workflow has one notification interface, and it is the ledger activity it already runs:
each `LedgerEntry` carries the notifications its transition causes, and `Ledger.record` writes them
to the outbox table in the same transaction as the event. So the outbox is the always-on sink: a
notification is stored exactly when its event is, no matter whether anyone listens, and a retried
or replayed activity adds nothing (rows are keyed by the notification's event id).

Delivery happens outside the workflow: `relay.OutboxRelay` fans each outbox row out to one
delivery per configured webhook endpoint and POSTs it, signed (`webhook.WebhookSender`), retrying
with backoff kept in the database so a restart resumes where it stopped. That is at-least-once:
a receiver may see the same notification more than once and must de-duplicate on its event id
(the `X-Bihuan-Event-Id` header).
"""
