"""The local cache: WAL + foreign keys, schema version, migration, corrupt/foreign files."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.cache import CACHE_KIB, CacheTooNew, open_cache
from core.models import SCHEMA_VERSION, Region, Store


def test_new_cache_has_wal_fk_and_version(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    with cache.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA cache_size")).scalar() == -CACHE_KIB
        version = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar()
    assert int(version) == SCHEMA_VERSION
    assert cache.recovered is None and cache.migrated_from is None
    cache.close()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    with pytest.raises(IntegrityError), cache.session() as s:
        s.add(Store(id=1, region_id=999, code="X", name="x", province="p", city="c", lat=0, lon=0))
    cache.close()


def _make_v1(path: Path) -> None:
    """A schema-1 file: v2 added stores.target_star and stores.min_floor_staff."""
    cache = open_cache(path)
    with cache.session() as s:
        s.add(Region(id=1, code="SH", name="上海"))
        s.flush()
        s.add(
            Store(
                id=1,
                region_id=1,
                code="S1",
                name="店",
                province="上海",
                city="上海",
                lat=31.2,
                lon=121.4,
            )
        )
    cache.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE stores DROP COLUMN target_star")
    conn.execute("ALTER TABLE stores DROP COLUMN min_floor_staff")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("defer", [False, True], ids=["checked", "deferred"])
def test_older_schema_is_migrated_keeping_data(tmp_path: Path, defer: bool) -> None:
    path = tmp_path / "old.db"
    _make_v1(path)
    cache = open_cache(path, defer_integrity_check=defer)
    assert cache.migrated_from == 1
    assert cache.integrity_checked  # a file is checked in full before a migration changes it
    with cache.session() as s:
        store = s.get(Store, 1)
        assert store is not None and store.name == "店"
        assert store.target_star == 12.0 and store.min_floor_staff == 2
        assert s.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar() == str(
            SCHEMA_VERSION
        )
    cache.close()


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database", b"SQLite format 3\x00" + b"\x00\xff" * 600],
    ids=["foreign", "corrupt"],
)
def test_unusable_file_is_moved_aside_and_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "storedesk.db"
    path.write_bytes(content)
    cache = open_cache(path)
    assert cache.recovered is not None
    moved = cache.recovered.moved_to
    assert moved.exists() and moved.read_bytes() == content  # nothing overwritten
    assert moved.name.startswith("storedesk.unusable-")
    assert str(moved) in cache.recovered.message()
    with cache.session() as s:  # a fresh, working cache
        s.add(Region(id=1, code="SH", name="上海"))
    cache.close()


def _damaged_file(path: Path) -> None:
    """A StoreDesk cache whose header and schema read fine but whose table pages are junk."""
    cache = open_cache(path)
    with cache.session() as s:
        s.add(Region(id=1, code="SH", name="上海"))
        for i in range(1, 400):
            s.add(
                Store(
                    id=i,
                    region_id=1,
                    code=f"S{i}",
                    name="店" * 40,
                    province="p",
                    city="c",
                    lat=31,
                    lon=121,
                )
            )
    with cache.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    for off in range(page * 3, min(len(raw), page * 8)):  # scribble over b-tree pages
        raw[off] = 0x5A
    path.write_bytes(bytes(raw))


def test_damaged_pages_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _damaged_file(path)
    cache = open_cache(path)
    assert cache.recovered is not None
    assert "damaged" in cache.recovered.reason
    assert cache.integrity_checked
    cache.close()


def test_deferred_check_finds_damaged_pages_and_the_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _damaged_file(path)
    damaged = path.read_bytes()
    cache = open_cache(path, defer_integrity_check=True)
    assert cache.recovered is None and not cache.integrity_checked  # the check is still due
    problem = cache.check_integrity()
    assert problem is not None and "damaged" in problem
    assert not cache.integrity_checked
    recovered = cache.move_aside(problem)
    assert recovered.moved_to.read_bytes()[:100] == damaged[:100]  # kept, not overwritten
    assert not path.exists()
    assert str(recovered.moved_to) in recovered.message()
    fresh = open_cache(path, defer_integrity_check=True)
    assert fresh.recovered is None and fresh.integrity_checked  # a new file needs no check
    with fresh.session() as s:
        s.add(Region(id=1, code="SH", name="上海"))
    fresh.close()


def test_deferred_check_passes_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_cache(path).close()
    cache = open_cache(path, defer_integrity_check=True)
    assert not cache.integrity_checked
    assert cache.check_integrity() is None
    assert cache.integrity_checked
    cache.close()


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database", b"SQLite format 3\x00" + b"\x00\xff" * 600],
    ids=["foreign", "corrupt"],
)
def test_deferred_open_still_refuses_what_the_cheap_checks_see(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "storedesk.db"
    path.write_bytes(content)
    cache = open_cache(path, defer_integrity_check=True)
    assert cache.recovered is not None
    assert cache.recovered.moved_to.read_bytes() == content
    assert cache.integrity_checked
    cache.close()


def test_a_file_from_a_newer_storedesk_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_cache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 5),))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CacheTooNew, match="newer StoreDesk"):
        open_cache(path)
    assert path.read_bytes() == before


def test_datetimes_are_utc_aware(tmp_path: Path) -> None:
    from core.models import Holiday, Shift  # noqa: F401 - imported for the model registry

    cache = open_cache(tmp_path / "c.db")
    with cache.session() as s:
        s.add(Region(id=1, code="SH", name="上海"))
    from core.models import Alert

    local = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with cache.session() as s:
        s.add(Alert(id="a1", kind="k", subject_type="t", subject_id="1", raised_at=local))
    with cache.session() as s:
        a = s.get(Alert, "a1")
        assert a.raised_at == local and a.raised_at.tzinfo == dt.UTC
        assert a.raised_at.hour == 1
    with pytest.raises(Exception, match="naive datetime"), cache.session() as s:
        s.add(
            Alert(
                id="a2",
                kind="k",
                subject_type="t",
                subject_id="2",
                raised_at=dt.datetime(2026, 1, 1),
            )
        )
    cache.close()


@pytest.mark.parametrize("defer", [False, True], ids=["checked", "deferred"])
def test_a_table_added_since_the_file_was_made_is_created_at_open(
    tmp_path: Path, defer: bool
) -> None:
    path = tmp_path / "c.db"
    open_cache(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE alerts")
    cache = open_cache(path, defer_integrity_check=defer)
    with cache.engine.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert "alerts" in names
    cache.close()


def test_a_failed_deferred_check_makes_the_cache_refuse_further_work(tmp_path: Path) -> None:
    """Jobs queued behind the check (a sync's writes, an edit) must not touch the file."""
    from core.cache import CacheDamaged

    path = tmp_path / "c.db"
    _damaged_file(path)
    cache = open_cache(path, defer_integrity_check=True)
    cache.ensure_usable()  # not checked yet: usable (the app's first screen reads it)
    assert cache.check_integrity() is not None
    with pytest.raises(CacheDamaged, match="damaged"):
        cache.ensure_usable()
    cache.close()


def test_a_cache_whose_path_has_uri_characters_opens_and_checks(tmp_path: Path) -> None:
    # A user folder may hold "?", "#" or "%": none of them may be read as URI/URL syntax.
    folder = tmp_path / "店#1 50%?"
    folder.mkdir()
    path = folder / "cache?x=1#y.db"
    cache = open_cache(path)
    try:
        with cache.session() as s:
            s.add(Region(code="SH", name="上海区"))
        assert cache.check_integrity() is None
        with cache.reader() as conn:
            assert conn.execute("SELECT name FROM regions").fetchall() == [("上海区",)]
    finally:
        cache.close()
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".db") == ["cache?x=1#y.db"]
    reopened = open_cache(path)
    try:
        assert reopened.check_integrity() is None
    finally:
        reopened.close()
