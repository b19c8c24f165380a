"""The central server's SQLite file is opened at exactly the path given, whatever its name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from central import cli
from central.db import init_central_schema, make_central_engine, normalise_url


@pytest.mark.parametrize("folder", ["data?v=1", "a#b", "100% sure", "门店 数据"])
def test_a_file_path_with_url_characters_opens_that_file(tmp_path: Path, folder: str):
    path = tmp_path / folder / "central.db"
    path.parent.mkdir()
    engine = make_central_engine(path)
    try:
        init_central_schema(engine)
        assert "shifts" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert path.is_file()
    # nothing was created beside it under a truncated or unescaped name
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]


def test_the_default_database_is_a_path_in_the_data_folder(tmp_path: Path, monkeypatch):
    weird = tmp_path / "Store?Desk#1"
    monkeypatch.setattr(cli.platformdirs, "user_data_dir", lambda *a, **k: str(weird))
    path = cli.default_db_path()
    assert path == weird / "central.db"
    engine = make_central_engine(path)
    try:
        init_central_schema(engine)
    finally:
        engine.dispose()
    assert path.is_file()


def test_urls_are_taken_as_urls():
    assert normalise_url("sqlite://").get_backend_name() == "sqlite"
    assert normalise_url("sqlite://").database is None
    pg = normalise_url("postgresql://u@h/db")
    assert pg.drivername == "postgresql+psycopg" and pg.database == "db"
    assert normalise_url("sqlite:///x.db?mode=ro").query == {"mode": "ro"}
