"""The StoreDesk central API (``storedesk-central``): the reference sync server.

Endpoints (all JSON; every one but health and login needs ``Authorization: Bearer``;
OpenAPI docs at ``/docs``):

* ``GET  /v1/health`` — status and protocol versions (no auth).
* ``POST /v1/auth/login`` {username, password} → {token, expires_at, user}.
* ``GET  /v1/me`` — the signed-in user and their resolved scope.
* ``POST /v1/sync/push`` {client_id, mutations:[{id, name, args, base_version}]} →
  {last_mutation_id, results:[{id, status: applied|rejected|conflict, reason_code,
  message, entity, entity_id, theirs, replayed}]}; 409 {expected} on a gap.
* ``GET  /v1/sync/pull?cursor=&limit=`` → {cursor, next_cursor, has_more, columns,
  changes:[{seq, table, op: upsert|delete, pk, row}]}; 410 when the cursor is too old.
* ``GET  /v1/sync/snapshot/start`` → {token, tables:[{name, columns, pk, count}]};
  ``GET /v1/sync/snapshot?token=&table=&after=&limit=`` → {rows, next_after};
  ``GET /v1/sync/verify`` → per-table counts and checksums at a sequence.
* ``POST /v1/sync/rows`` {table, pks} — current rows by key (repair after a refusal); a
  row outside the caller's scope comes back in ``missing``, like a key nobody has, and a
  key its columns cannot hold is a 422.
* ``GET  /v1/stores/{id}`` — a store and when its promotion proposals were generated;
  ``POST /v1/promotions/generate`` — run the rule engine for the caller's stores.

Reads accept ``store_id=`` (repeatable) to narrow to some of the caller's stores; a store
outside the caller's scope is answered with 403. Old clients get 426. See
:mod:`central.changelog` (commit-ordered sequence), :mod:`central.scope` (who sees what)
and :mod:`sync.protocol` (message shapes and the row encoding).
"""
