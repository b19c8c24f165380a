"""Weekly review packs built from the demo region and checked with real PDF tools."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.reports import build_pack
from core.reports.commentary import format_number
from core.reports.gather import gather_pack
from core.tasks import Cancelled, TaskState
from core.traffic.analytics import load_store_data

ROOT = Path(__file__).resolve().parents[2]
WEEK = "2026-W47"  # the last full week of the demo history (DEMO_TODAY is 2026-11-27)
MONDAY = dt.date(2026, 11, 16)
SUNDAY = dt.date(2026, 11, 22)

pytestmark = pytest.mark.skipif(shutil.which("pdffonts") is None, reason="poppler-utils missing")


def _text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def _fonts_all_embedded(pdf: Path) -> list[str]:
    out = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert out, "no fonts listed"
    return [line for line in out if line.split()[-5] != "yes"]  # the 'emb' column


@pytest.fixture(scope="module")
def packs(demo_db_template: Path, tmp_path_factory: pytest.TempPathFactory, artifacts: Path):
    from core.cache import open_cache

    out = tmp_path_factory.mktemp("packs")
    cache = open_cache(demo_db_template)
    results = {}
    with cache.session() as s:
        results["store_zh"] = build_pack(
            s, out / "store_zh.pdf", store="SH001", week=WEEK, lang="zh_CN"
        )
        results["region_zh"] = build_pack(
            s, out / "region_zh.pdf", region="SH", week=WEEK, lang="zh_CN", author_role="supervisor"
        )
        results["store_en"] = build_pack(
            s, out / "store_en.pdf", store="SH001", week=WEEK, lang="en"
        )
    cache.close()
    for key in ("store_zh", "region_zh"):
        shutil.copy(results[key].path, artifacts / f"pack_{key}.pdf")
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "60",
                "-png",
                str(results[key].path),
                str(artifacts / f"pack_{key}"),
            ],
            check=True,
        )
    return results


def test_page_counts_match_the_files(packs) -> None:
    for result in packs.values():
        assert len(PdfReader(result.path).pages) == result.pages
    assert packs["store_zh"].pages >= 4
    assert packs["region_zh"].pages > packs["store_zh"].pages


def test_every_font_is_embedded(packs) -> None:
    for result in packs.values():
        assert _fonts_all_embedded(result.path) == []


def test_chinese_text_extracts(packs) -> None:
    text = _text(packs["store_zh"].path)
    assert "周经营复盘" in text
    assert "客流" in text and "转化率" in text
    region = _text(packs["region_zh"].path)
    for heading in ("目录", "门店排名", "销售漏斗", "拜访"):
        assert heading in region


def test_kpis_are_the_ones_core_computes(packs, demo_cache) -> None:
    """Visitors and sales of the week, computed independently by core, appear in the PDF."""
    with demo_cache.session() as s:
        from core.reports.gather import resolve_scope

        store_id = resolve_scope(s, store="SH001").id
        kpis = load_store_data(s, store_id, MONDAY, SUNDAY).kpis(MONDAY, SUNDAY)
    text = _text(packs["store_en"].path)
    assert f"{kpis.visitors:,}" in text
    assert format_number(kpis.sales_fen, "money_fen", "en") in text
    assert f"{kpis.conversion * 100:.1f}%" in text


def test_commentary_names_the_real_biggest_mover(demo_cache) -> None:
    from core.i18n import translate_in

    with demo_cache.session() as s:
        data = gather_pack(s, store="SH001", week=WEEK, lang="en")
        from core.reports.gather import resolve_scope

        store_id = resolve_scope(s, store="SH001").id
        sd = load_store_data(s, store_id, MONDAY - dt.timedelta(days=7), SUNDAY)
    now = sd.kpis(MONDAY, SUNDAY)
    before = sd.kpis(MONDAY - dt.timedelta(days=7), SUNDAY - dt.timedelta(days=7))
    changes = {
        "Visitors": (now.visitors - before.visitors) / before.visitors,
        "Transactions": (now.transactions - before.transactions) / before.transactions,
        "Sales": (now.sales_fen - before.sales_fen) / before.sales_fen,
        "Conversion": (now.conversion - before.conversion) / before.conversion,
    }
    from core.reports.commentary import commentary

    lines = commentary(data, "en")
    mover = max(data.kpis, key=lambda k: abs(k.change or 0))
    if mover.label in changes:
        assert abs(mover.change - changes[mover.label]) < 1e-9
    assert lines[0].startswith(f"Biggest mover: {mover.label} ")
    assert f"{abs(mover.change) * 100:.1f}%" in lines[0]
    zh = commentary(data, "zh_CN")[0]
    assert translate_in("zh_CN", mover.label) in zh


def test_cancel_leaves_no_file(demo_cache, tmp_path: Path) -> None:
    state = TaskState()
    calls = {"n": 0}

    def cancel_soon(_fraction: float, _message: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            state.cancel()

    state._on_progress = cancel_soon
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(Cancelled), demo_cache.session() as s:
        build_pack(s, folder / "x.pdf", region="SH", week=WEEK, state=state)
    assert list(folder.iterdir()) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_a_pack_and_refuses_bad_input(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "pack.pdf"
    ok = _cli(
        "--cache",
        str(demo_db),
        "report",
        "--store",
        "sh001",
        "--week",
        WEEK,
        "--out",
        str(out),
        "--lang",
        "en",
    )
    assert ok.returncode == 0, ok.stderr
    assert out.exists() and "pages" in ok.stdout
    for bad in (
        ["--store", "XX999", "--week", WEEK],
        ["--region", "NOPE", "--week", WEEK],
        ["--store", "SH001", "--week", "2026-W60"],
        ["--store", "SH001", "--week", "47"],
    ):
        target = tmp_path / "bad.pdf"
        r = _cli("--cache", str(demo_db), "report", *bad, "--out", str(target))
        assert r.returncode == 2, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not target.exists()
