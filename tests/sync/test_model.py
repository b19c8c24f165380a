"""Property-based model of the sync protocol (Hypothesis state machine).

Several desktops (a supervisor and two managers of the same store) edit offline, sync
through a network that loses replies, answers 5xx after committing and sends garbage,
resend old batches (duplicated and reordered requests) and get killed between
transactions. At the end, once the network behaves: every created note exists exactly
once on the server, no edit is still pending, and every desktop's data equals the
server's for its scope (per-table counts and checksums from ``/v1/sync/verify``).
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from core.cache import open_cache
from core.models import Outbox, Shift, VisitNote
from core.mutations import apply_local
from sync import local
from sync.engine import SyncError
from sync.protocol import PROTOCOL_HEADER, VerifyResponse
from tests.sync.conftest import start_server
from tests.sync.harness import PASSWORD, engine_for

USERS = ("sup1", "mgr1", "mgr1b")
FAULTS = (
    None,
    ("/v1/sync/push", "drop_reply"),
    ("/v1/sync/push", "error_after"),
    ("/v1/sync/push", "error_before"),
    ("/v1/sync/pull", "drop_reply"),
    ("/v1/sync/pull", "garbage"),
    ("/v1/sync/snapshot", "garbage"),
)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("model"))
    yield srv
    srv.stop()


def test_sync_model(model_server, tmp_path_factory):
    srv = model_server

    class SyncModel(RuleBasedStateMachine):
        @initialize()
        def setup(self):
            self.dir = tmp_path_factory.mktemp("clients")
            self.tag = uuid.uuid4().hex[:6]
            self.caches = {u: open_cache(self.dir / f"{u}.db") for u in USERS}
            self.notes: set[str] = set()
            srv.faults.rules.clear()

        def _sync(self, user: str):
            async def go():
                eng = engine_for(self.caches[user], srv, user)
                try:
                    await eng.sync_once()
                except SyncError:
                    pass
                finally:
                    await eng.aclose()

            asyncio.run(go())

        def _actor(self, user: str):
            async def go():
                eng = engine_for(self.caches[user], srv, user)
                await eng._sign_in()
                await eng.aclose()
                return eng._actor()

            return asyncio.run(go())

        @rule(user=st.sampled_from(USERS), fault=st.sampled_from(FAULTS))
        def sync(self, user, fault):
            if fault is not None:
                srv.faults.add(*fault)
            self._sync(user)
            srv.faults.rules.clear()

        @rule(user=st.sampled_from(USERS))
        def add_note(self, user):
            cache = self.caches[user]
            if local.read_state(cache).cursor is None:
                return  # nothing downloaded yet: the screen has no visit to annotate
            nid = f"{self.tag}{uuid.uuid4().hex[:20]}"
            with cache.session() as s:
                apply_local(s, self._actor(user), "visit_note.add/1",
                            {"id": nid, "visit_id": "visitS1", "text": f"note {nid}"})  # fmt: skip
            self.notes.add(nid)

        @rule(
            user=st.sampled_from(USERS),
            k=st.sampled_from(("shS10", "shS11")),
            text=st.text(max_size=5),
        )
        def edit_shift(self, user, k, text):
            cache = self.caches[user]
            with cache.session() as s:
                sh = s.get(Shift, k)
                if sh is None:
                    return
                try:
                    apply_local(s, self._actor(user), "shift.update/1",
                                {"id": k, "note": text}, base_version=sh.version)  # fmt: skip
                except Exception:
                    s.rollback()

        @rule(user=st.sampled_from(USERS), data=st.data())
        def resend_old_batch(self, user, data):
            """A duplicated / reordered request: an old slice of this client's outbox."""
            cache = self.caches[user]
            with cache.session() as s:
                rows = s.scalars(select(Outbox).order_by(Outbox.mutation_id)).all()
                cid = local.ensure_client_id(cache)
                muts = [
                    {
                        "id": o.mutation_id,
                        "name": o.name,
                        "args": o.args,
                        "base_version": o.base_version,
                    }
                    for o in rows
                ]
            if not muts:
                return
            i = data.draw(st.integers(0, len(muts) - 1))
            j = data.draw(st.integers(i + 1, len(muts)))
            tok = httpx.post(
                srv.url + "/v1/auth/login", json={"username": user, "password": PASSWORD}
            ).json()["token"]
            r = httpx.post(srv.url + "/v1/sync/push", json={"client_id": cid, "mutations": muts[i:j]},
                           headers={"Authorization": f"Bearer {tok}", PROTOCOL_HEADER: "1"})  # fmt: skip
            assert r.status_code in (200, 409), r.text

        @rule(user=st.sampled_from(USERS))
        def kill(self, user):
            """The process dies between transactions: reopen the same file."""
            self.caches[user].close()
            self.caches[user] = open_cache(self.dir / f"{user}.db")

        @invariant()
        def never_duplicated(self):
            if not getattr(self, "notes", None):
                return
            with srv.session() as s:
                n = s.scalar(
                    select(func.count()).select_from(VisitNote).where(VisitNote.id.in_(self.notes))
                )
                distinct = s.scalar(
                    select(func.count(func.distinct(VisitNote.id))).where(
                        VisitNote.id.in_(self.notes)
                    )
                )
            assert n == distinct <= len(self.notes)

        def teardown(self):
            if not hasattr(self, "caches"):
                return
            srv.faults.rules.clear()
            try:
                for _round in range(2):
                    for u in USERS:
                        self._sync(u)
                with srv.session() as s:
                    on_server = s.scalar(
                        select(func.count())
                        .select_from(VisitNote)
                        .where(VisitNote.id.in_(self.notes))
                    )
                assert on_server == len(self.notes)  # every note exactly once
                for u in USERS:
                    cache = self.caches[u]
                    st_ = local.read_state(cache)
                    assert st_.pending == 0
                    tok = httpx.post(
                        srv.url + "/v1/auth/login", json={"username": u, "password": PASSWORD}
                    ).json()["token"]
                    ver = VerifyResponse.model_validate_json(
                        httpx.get(
                            srv.url + "/v1/sync/verify", headers={"Authorization": f"Bearer {tok}"}
                        ).content
                    )
                    assert st_.cursor == ver.seq
                    mine = local.local_checksums(cache, st_.snapshot_tables)
                    assert mine == {n: t.checksum for n, t in ver.tables.items()}, u
            finally:
                for c in self.caches.values():
                    c.close()

    SyncModel.TestCase.settings = settings(
        max_examples=6,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    SyncModel.TestCase().runTest()
