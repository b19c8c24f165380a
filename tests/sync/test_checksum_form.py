"""The protocol 2 row checksum: its byte layout, written out here, equals what
``row_checksum_terms`` computes (with marshal, in C), for every kind of wire value.

If a Python release changed marshal's format 2, this test fails rather than desktops
and servers on different Pythons disagreeing about every table.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import given
from hypothesis import strategies as st

from sync.protocol import CHECKSUM_BINARY, CHECKSUM_REPR, checksum_form, row_checksum_terms


def _value(v: object) -> bytes:
    if v is None:
        return b"N"
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return b"i" + struct.pack("<i", v)
        digits = []
        a = abs(v)
        while a:
            digits.append(a & 0x7FFF)
            a >>= 15
        n = len(digits) if v > 0 else -len(digits)
        return b"l" + struct.pack("<i", n) + b"".join(struct.pack("<H", d) for d in digits)
    if isinstance(v, float):
        return b"g" + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return b"u" + struct.pack("<I", len(b)) + b
    raise TypeError(type(v))


def _row(row: tuple) -> bytes:
    return b"(" + struct.pack("<I", len(row)) + b"".join(map(_value, row))


wire_value = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-310, 31.213781, 121.506878]),
    st.text(),
    st.sampled_from(["", "上海区", 'it\'s "q"', "\ud800", "2026-11-21 00:34:49.000000"]),
)


@given(st.lists(st.tuples(wire_value, wire_value, wire_value), max_size=20))
def test_binary_checksum_is_the_documented_layout(rows):
    n, total = row_checksum_terms(rows, CHECKSUM_BINARY)
    assert n == len(rows)
    assert total == sum(zlib.crc32(_row(r)) for r in rows)


def test_forms_by_protocol_and_lists_equal_tuples():
    assert checksum_form(1) == CHECKSUM_REPR and checksum_form(2) == CHECKSUM_BINARY
    rows = [(1, "a", 2.5, None), (2**40, "上海", -0.0, "")]
    for form in (CHECKSUM_REPR, CHECKSUM_BINARY):
        assert row_checksum_terms(rows, form) == row_checksum_terms([list(r) for r in rows], form)
    assert row_checksum_terms(rows, CHECKSUM_REPR) == (
        2,
        sum(zlib.crc32(repr(r).encode()) for r in rows),
    )
    # a value's type is part of the row: 1, 1.0 and "1" differ
    one = [row_checksum_terms([(v,)])[1] for v in (1, 1.0, "1", None)]
    assert len(set(one)) == 4
