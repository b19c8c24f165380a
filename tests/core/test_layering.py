"""core/ and sync/ never import Qt; core/ never imports the upper layers (DESIGN.md §1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS, "import-linter is a dev dependency"
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_contract_catches_core_importing_qt(tmp_path: Path) -> None:
    """The same contracts, on a copy of the tree where core/ imports PySide6, must fail."""
    for pkg in ("core", "sync", "central", "desktop"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "core" / "sneaky.py").write_text("from PySide6 import QtCore\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "core.sneaky -> PySide6" in result.stdout


def test_core_and_sync_import_without_qt() -> None:
    """Import every core/sync module in a process where PySide6 cannot be imported."""
    code = textwrap.dedent(
        """
        import sys, pkgutil, importlib
        sys.modules['PySide6'] = None; sys.modules['qasync'] = None; sys.modules['pyqtgraph'] = None
        import core, sync
        for pkg in (core, sync):
            for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
                importlib.import_module(m.name)
        print('ok')
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
