"""Smoke test of the benchmark harness: it runs, prints figures beside baselines with ratios.

NOT a timed assertion: the figures themselves are whatever this machine gives. One run of
the start-up benchmark (three fresh processes: the supervisor's and the store manager's
start and the bare floor) on the test session's demo data, plus the table/verdict logic on hand-made figures.
"""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.common import Figure, table


def test_verdicts_and_ratios_on_hand_made_figures() -> None:
    start = Figure("start", "start", 2.2, "s", 2.0, "bare", "ratio<=", 1.1)
    assert start.ratio == pytest.approx(1.1) and start.verdict == "PASS"
    slow = Figure("start", "start", 2.3, "s", 2.0, "bare", "ratio<=", 1.1)
    assert slow.verdict == "MISS"
    sync = Figure("sync", "sync", 300_000, "rows/s", 1_000_000, "raw", ">=", 250_000)
    assert sync.verdict == "PASS" and sync.ratio == pytest.approx(0.3)
    ratio = Figure("r", "ratio", 200_000, "rows/s", 1_000_000, "raw", "ratio>=", 0.25)
    assert ratio.verdict == "MISS"
    missing = Figure("m", "missing", None, "s", 1.0, "b", "<=", 0.5)
    assert missing.verdict == "n/a" and missing.ratio is None
    text = table([start, sync])
    assert "| start | 2.200 s | 2.000 s (bare) | 1.10× | ≤ 1.1× baseline | PASS |" in text
    assert "300,000 rows/s" in text and "≥ 250,000 rows/s" in text


@pytest.mark.gui
@pytest.mark.slow
def test_harness_prints_start_figure_with_baseline(demo_db_template, tmp_path, capsys) -> None:
    from benchmarks.__main__ import main

    out_json = tmp_path / "bench.json"
    rc = main(
        [
            "--quick",
            "--only",
            "start",
            "--demo-db",
            str(demo_db_template),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
            str(out_json),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rows = [line for line in printed.splitlines() if line.startswith("| 1. Start → painted")]
    assert len(rows) == 2 and "store manager" in rows[1], printed
    for row in rows:  # value, baseline, ratio and a verdict are all there
        assert re.search(r"\| \d+\.\d{3} s \| \d+\.\d{3} s \(bare PySide6", row), row
        assert re.search(r"\| \d+\.\d\d× \|", row), row
        assert re.search(r"\| (PASS|MISS) \|$", row), row
    assert "Heavy modules imported at start" in printed
    assert "Store manager's start: heavy modules" in printed
    data = json.loads(out_json.read_text())
    supervisor, manager = data["figures"]
    assert supervisor["name"] == "start" and manager["name"] == "start_manager"
    # both starts beside the one floor measured in the same run
    assert manager["baseline"] == supervisor["baseline"] > 0
    for fig in (supervisor, manager):
        assert fig["value"] > 0 and len(fig["samples"]) == 1
    # the module lists were really taken from the app processes
    assert "desktop" in data["details"]["start"]["top_level_packages_at_start"]
    assert "desktop" in data["details"]["start"]["manager"]["top_level_packages_at_start"]
