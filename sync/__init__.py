"""Offline-first sync for StoreDesk: the wire protocol (:mod:`sync.protocol`), the async
client engine (:mod:`sync.engine`), its database steps (:mod:`sync.local`) and the
headless ``storedesk sync`` command (:mod:`sync.cli`). Plain asyncio + httpx, never Qt."""
