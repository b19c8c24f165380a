"""Shared machinery of the demo generator: seeded randomness, ids, names, bulk inserts.

Every part of the generator draws from its *own* stream (``gen.rnd("traffic")``), derived
from the seed and the part's name, so adding a step (promotions, alerts) never shifts the
numbers of the others. Instants are handled as integer UTC epoch seconds (cheap for numpy
and for millions of GPS fixes) and converted once, at insert time, to what the database
expects: on SQLite the exact text SQLAlchemy's ``DateTime`` writes
(``YYYY-MM-DD HH:MM:SS.ffffff``), so ORM reads and range queries behave as for ORM-written
rows; on other databases, aware ``datetime`` values through a Core insert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Date, Table, Time

from core.demo import _data
from core.models import Base, UTCDateTime
from core.tasks import TaskState

#: Asia/Shanghai has had no daylight saving since 1991: local = UTC + 8 h for all demo dates.
LOCAL_OFFSET_S = 8 * 3600
DAY_S = 86400
_EPOCH = dt.date(1970, 1, 1)


def day_epoch(day: dt.date) -> int:
    """UTC epoch seconds of the *local* midnight starting ``day``."""
    return (day - _EPOCH).days * DAY_S - LOCAL_OFFSET_S


def local_epoch(day: dt.date, hour: float) -> int:
    """UTC epoch seconds of local wall time ``hour`` (e.g. 9.5) on ``day``."""
    return day_epoch(day) + round(hour * 3600)


def to_datetime(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class _TsFormatter:
    """Epoch seconds -> SQLAlchemy's SQLite DateTime text, for whole columns at once."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._clock: list[str] | None = None

    def column(self, values: Sequence[int]) -> list[str]:
        if self._clock is None:  # the 86,400 wall-clock texts of a day, built once
            self._clock = [
                f"{h:02d}:{m:02d}:{s:02d}.000000"
                for h in range(24)
                for m in range(60)
                for s in range(60)
            ]
        clock, days = self._clock, self._days
        arr = np.asarray(values, dtype=np.int64)
        d_idx, rem = np.divmod(arr, DAY_S)
        for d in np.unique(d_idx).tolist():
            if d not in days:
                days[d] = (_EPOCH + dt.timedelta(days=d)).isoformat() + " "
        return [days[d] + clock[r] for d, r in zip(d_idx.tolist(), rem.tolist(), strict=True)]


def _date_column(values: Sequence[dt.date]) -> list[str]:
    cache: dict[dt.date, str] = {}
    out = []
    for v in values:
        text = cache.get(v)
        if text is None:
            text = cache[v] = v.isoformat()
        out.append(text)
    return out


@dataclass
class Gen:
    """State shared by the steps of one generation run."""

    conn: Connection
    seed: int
    scale: int
    today: dt.date
    progress: TaskState | None
    counts: dict[str, int] = field(default_factory=dict)
    #: ground truth the tests (and the trajectory owners) can check against
    truth: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sqlite = self.conn.dialect.name == "sqlite"
        self.history_start = self.today - dt.timedelta(days=90)
        #: "now" of the dataset: 23:00 local on ``today``, after every store has closed.
        self.as_of = local_epoch(self.today, 23)
        self._ts = _TsFormatter()
        self._ids = random.Random(f"{self.seed}/ids")

    # ------------------------------------------------------------------ randomness

    def rnd(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}/{part}")

    def np_rng(self, part: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}/{part}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def new_id(self) -> str:
        """A uuid4-looking hex id, deterministic for the seed (client-id columns)."""
        return f"{self._ids.getrandbits(128):032x}"

    # ------------------------------------------------------------------ progress

    def step(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress.progress(fraction, message)

    # ------------------------------------------------------------------ inserts

    def insert(
        self, table_name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Bulk-insert ``rows`` (tuples in ``columns`` order; instants as epoch seconds)."""
        if not rows:
            self.counts.setdefault(table_name, 0)
            return
        table: Table = Base.metadata.tables[table_name]
        convs = [self._converter(table.c[name].type) for name in columns]
        if any(c is not None for c in convs):
            cols = [list(c) for c in zip(*rows, strict=True)]
            for i, conv in enumerate(convs):
                if conv is None:
                    continue
                present = [v for v in cols[i] if v is not None]
                if len(present) == len(cols[i]):
                    cols[i] = conv(cols[i])
                else:
                    it = iter(conv(present))
                    cols[i] = [None if v is None else next(it) for v in cols[i]]
            rows = list(zip(*cols, strict=True))
        if self.sqlite:
            marks = ", ".join("?" * len(columns))
            self.conn.exec_driver_sql(
                f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})", list(rows)
            )
        else:
            self.conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        self.counts[table_name] = self.counts.get(table_name, 0) + len(rows)

    def _converter(self, type_: Any) -> Callable[[list[Any]], list[Any]] | None:
        """A whole-column converter from generator values to what the driver stores."""
        if isinstance(type_, UTCDateTime):
            if self.sqlite:
                return self._ts.column
            return lambda col: [to_datetime(v) for v in col]
        if isinstance(type_, Date):
            return _date_column if self.sqlite else None
        if isinstance(type_, Time):
            return (lambda col: [t.strftime("%H:%M:%S.%f") for t in col]) if self.sqlite else None
        return None


# ---------------------------------------------------------------------- people's names


_SURNAME_CUM = tuple(
    float(x) for x in np.cumsum([1.0 / (i + 1) ** 0.8 for i in range(len(_data.SURNAMES))])
)


def person_name(r: random.Random, female: bool | None = None) -> str:
    """A common Chinese name: census-like weighted surname + one or two given characters."""
    surname = r.choices(_data.SURNAMES, cum_weights=_SURNAME_CUM)[0]
    if female is None:
        female = r.random() < 0.5
    pool = _data.GIVEN_FEMALE if female else _data.GIVEN_MALE
    given = r.choice(pool) if r.random() < 0.35 else r.choice(pool) + r.choice(pool)
    return surname + given


def phone_number(r: random.Random) -> str:
    prefix = r.choice(("138", "139", "137", "136", "135", "158", "159", "186", "187", "188", "177"))
    return prefix + f"{r.randrange(10**8):08d}"


# ---------------------------------------------------------------------- geometry

M_PER_DEG_LAT = 111_320.0


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m``/``east_m`` metres from (lat, lon) (local flat approximation)."""
    return (
        lat + north_m / M_PER_DEG_LAT,
        lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))
