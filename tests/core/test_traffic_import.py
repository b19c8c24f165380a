"""CSV import: every kind of bad row is refused with nothing imported; good files are idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core import i18n
from core.cache import open_cache
from core.models import HourlyTraffic, Outbox
from core.mutations import Rejected, ScopeDenied, apply_local, pending_count
from core.traffic.importer import import_csv, validate_csv
from tests.core.traffic_fixtures import TODAY, at, manager, seed_stores

NOW = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)

GOOD = (
    "store_code,date,hour,visitors,transactions,sales_yuan,units\r\n"
    "SH001,2026-11-26,10,40,8,1234.56,20\r\n"
    "SH001,2026-11-26,11,55,11,2000,\r\n"
    "SH001,2026/11/26,12:00,0,0,0,0\r\n"
    "SH002,2026-11-26,10,30,6,600.5,12\r\n"
    "\r\n"
)


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "t.db")
    with c.session() as s:
        seed_stores(s)
    yield c
    c.close()


def counts(cache) -> tuple[int, int]:
    with cache.session() as s:
        return (
            s.scalar(select(func.count()).select_from(HourlyTraffic)),
            s.scalar(select(func.count()).select_from(Outbox)),
        )


def run(cache, data: bytes, actor=None):
    with cache.session() as s:
        return import_csv(s, data, actor or manager(1, 2), TODAY, NOW)


def test_good_file_imports_through_the_outbox_and_is_idempotent(cache) -> None:
    data = ("\ufeff" + GOOD).encode("utf-8")  # Excel's "CSV UTF-8" writes a BOM
    res = run(cache, data)
    assert res.ok and res.errors == []
    assert (res.rows_in_file, res.inserted, res.updated, res.unchanged) == (4, 4, 0, 0)
    assert res.mutations == 2 and res.stores == ["SH001", "SH002"] and res.encoding == "utf-8"
    assert res.changes.touches("hourly_traffic", "outbox")
    assert counts(cache) == (4, 2)
    with cache.session() as s:
        row = s.get(HourlyTraffic, (1, at(dt.date(2026, 11, 26), 10)))
        assert row is not None
        assert (row.visitors, row.transactions, row.sales_fen, row.units, row.source) == (
            40,
            8,
            123456,
            20,
            "import",
        )
        assert row.hour_start == dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)  # 10:00 +08:00
        assert s.get(HourlyTraffic, (1, at(dt.date(2026, 11, 26), 11))).units is None
        assert s.get(HourlyTraffic, (2, at(dt.date(2026, 11, 26), 10))).sales_fen == 60050
        ob = s.scalars(select(Outbox).order_by(Outbox.mutation_id)).all()
        assert [o.name for o in ob] == ["traffic.import/1"] * 2
        assert ob[0].args["store_id"] == 1 and len(ob[0].args["rows"]) == 3
        assert pending_count(s) == 2

    again = run(cache, data)
    assert again.ok and (again.inserted, again.updated, again.unchanged, again.mutations) == (
        0,
        0,
        4,
        0,
    )
    assert counts(cache) == (4, 2)  # nothing changed, nothing queued

    changed = run(cache, GOOD.replace("55,11,2000", "56,11,2000").encode())
    assert (changed.inserted, changed.updated, changed.unchanged, changed.mutations) == (0, 1, 3, 1)
    assert counts(cache) == (4, 3)


def test_gbk_file_with_chinese_headers(cache) -> None:
    text = "门店编码,日期,小时,客流,交易笔数,销售额(元)\r\nSH001,2026-11-25,18,120,30,3600.00\r\n"
    res = run(cache, text.encode("gbk"))
    assert res.ok and res.inserted == 1 and res.encoding == "gbk"


def test_replaying_the_mutation_changes_nothing(cache) -> None:
    args = {
        "store_id": 1,
        "rows": [
            {
                "hour_start": at(TODAY, 10).isoformat(),
                "visitors": 5,
                "transactions": 1,
                "sales_fen": 100,
                "units": None,
            }
        ],
    }
    with cache.session() as s:
        first = apply_local(s, manager(1), "traffic.import/1", args, now=NOW)
        assert first.touches("hourly_traffic")
    with cache.session() as s:
        second = apply_local(s, manager(1), "traffic.import/1", args, now=NOW)
        assert not second.touches("hourly_traffic")
    assert counts(cache)[0] == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"store_id": 2, "rows": []}, ScopeDenied),
        ({"store_id": "1", "rows": []}, Rejected),
        ({"store_id": 1, "rows": "x"}, Rejected),
        (
            {
                "store_id": 1,
                "rows": [
                    {
                        "hour_start": "2026-11-26T10:00:00",
                        "visitors": 1,
                        "transactions": 0,
                        "sales_fen": 0,
                    }
                ],
            },
            Rejected,
        ),  # naive
        (
            {
                "store_id": 1,
                "rows": [
                    {
                        "hour_start": "2026-11-26T10:30:00+08:00",
                        "visitors": 1,
                        "transactions": 0,
                        "sales_fen": 0,
                    }
                ],
            },
            Rejected,
        ),  # not a whole hour
        (
            {
                "store_id": 1,
                "rows": [
                    {
                        "hour_start": "2026-11-26T10:00:00+08:00",
                        "visitors": -1,
                        "transactions": 0,
                        "sales_fen": 0,
                    }
                ],
            },
            Rejected,
        ),
        (
            {
                "store_id": 1,
                "rows": [
                    {
                        "hour_start": "2026-11-26T10:00:00+08:00",
                        "visitors": 1,
                        "transactions": True,
                        "sales_fen": 0,
                    }
                ],
            },
            Rejected,
        ),
        (
            {
                "store_id": 1,
                "rows": [
                    {
                        "hour_start": "2026-12-26T10:00:00+08:00",
                        "visitors": 1,
                        "transactions": 0,
                        "sales_fen": 0,
                    }
                ],
            },
            Rejected,
        ),  # future
    ],
)
def test_handler_refuses_bad_args(cache, args, error) -> None:
    with pytest.raises(error), cache.session() as s:
        apply_local(s, manager(1), "traffic.import/1", args, now=NOW)
    assert counts(cache) == (0, 0)


BAD = (
    "store_code,date,hour,visitors,transactions,sales_yuan,units\n"
    "SH001,2026-11-26,10,40,8,100,20\n"  # 2 good
    "XX999,2026-11-26,10,40,8,100,20\n"  # 3 unknown store
    "JS001,2026-11-26,10,40,8,100,20\n"  # 4 not my store
    "SH001,2026-13-01,10,40,8,100,20\n"  # 5 bad date
    "SH001,2026-12-01,10,40,8,100,20\n"  # 6 future date
    "SH001,2026-11-26,24,40,8,100,20\n"  # 7 bad hour
    "SH001,2026-11-26,11,-3,8,100,20\n"  # 8 negative visitors
    "SH001,2026-11-26,12,40,8.5,100,20\n"  # 9 fractional transactions
    "SH001,2026-11-26,13,40,8,12.345,20\n"  # 10 three decimals
    "SH001,2026-11-26,14,40,0,100,\n"  # 11 sales without transactions
    "SH001,2026-11-26,15,40,8,100,3\n"  # 12 fewer units than transactions
    "SH001,2026-11-26,16,40,8,100\n"  # 13 missing a field
    "SH001,2026-11-26,10,41,8,100,20\n"  # 14 duplicate of row 2
    "SH001,,17,40,8,100,20\n"  # 15 empty date
    "SH001,2026-11-26,18,abc,8,100,20\n"  # 16 not a number
)


def test_every_kind_of_bad_row_is_reported_and_nothing_is_imported(cache) -> None:
    res = run(cache, BAD.encode("utf-8"))
    assert not res.ok
    got = [(e.row, e.column, e.code) for e in res.errors]
    assert got == [
        (3, "store_code", "unknown_store"),
        (4, "store_code", "store_out_of_scope"),
        (5, "date", "bad_date"),
        (6, "date", "future_date"),
        (7, "hour", "bad_hour"),
        (8, "visitors", "bad_int"),
        (9, "transactions", "bad_int"),
        (10, "sales_yuan", "bad_money"),
        (11, "sales_yuan", "sales_without_transactions"),
        (12, "units", "units_below_transactions"),
        (13, "", "field_count"),
        (14, "", "duplicate_row"),
        (15, "date", "required"),
        (16, "visitors", "bad_int"),
    ]
    assert res.errors[0].message == "Unknown store code “XX999”."
    assert res.errors[11].message == "Same store, date and hour as row 2."
    assert counts(cache) == (0, 0)  # the good row 2 was not imported either


def test_errors_in_the_users_language(cache) -> None:
    try:
        i18n.set_language("zh_CN")
        res = run(cache, BAD.encode("utf-8"))
    finally:
        i18n.set_language("en")
    assert res.errors[0].message == "门店编码“XX999”不存在。"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(1, "", "empty_file")]),
        (b"\r\n\r\n", [(1, "", "empty_file")]),
        (b"store_code,date,hour,visitors,transactions,sales_yuan\n", [(1, "", "empty_file")]),
        (b"\xff\xfe\xff\x00\x81", [(1, "", "encoding")]),
        (
            b"store_code,date,hour,visitors,sales_yuan,colour\n",
            [(1, "", "unknown_column"), (1, "transactions", "missing_column")],
        ),
        (
            b"store_code,date,hour,visitors,transactions,sales_yuan,visitors\n",
            [(1, "visitors", "duplicate_column")],
        ),
    ],
)
def test_file_level_errors(cache, data, expected) -> None:
    res = run(cache, data)
    assert [(e.row, e.column, e.code) for e in res.errors] == expected
    assert counts(cache) == (0, 0)


def test_hours_of_today_not_started_yet_are_refused(cache) -> None:
    # NOW is 14:00 UTC = 22:00 in Shanghai: 22:00 has started, 23:00 has not.
    text = "store_code,date,hour,visitors,transactions,sales_yuan\nSH001,2026-11-27,22,1,0,0\nSH001,2026-11-27,23,1,0,0\n"
    res = run(cache, text.encode())
    assert [(e.row, e.column, e.code) for e in res.errors] == [(3, "hour", "future_hour")]
    assert res.errors[0].message == "Hour 2026-11-27 23:00 has not started yet."
    assert counts(cache) == (0, 0)


def test_tab_separated_and_thousand_separators(cache) -> None:
    text = 'store_code\tdate\thour\tvisitors\ttransactions\tsales_yuan\nSH001\t20261126\t09\t1,200\t300\t"12,345.60"\n'
    with cache.session() as s:
        v = validate_csv(s, text.encode(), manager(1), TODAY)
    assert v.ok, v.errors
    (r,) = v.rows
    assert (r.day, r.hour, r.visitors, r.sales_fen) == (dt.date(2026, 11, 26), 9, 1200, 1234560)
