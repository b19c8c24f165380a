"""Fixtures for sync tests: a fresh central server (real uvicorn on loopback) per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.db import init_central_schema, make_central_engine
from tests.sync.harness import LiveServer, build_world


def start_server(tmp_path: Path, **world_kw) -> LiveServer:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    eng = make_central_engine(url)
    init_central_schema(eng)
    world = build_world(eng, **world_kw)
    eng.dispose()
    srv = LiveServer(url).start()
    srv.world = world  # type: ignore[attr-defined]
    return srv


@pytest.fixture
def server(tmp_path: Path):
    srv = start_server(tmp_path)
    yield srv
    srv.stop()
