"""Fonts, style sheet and icons: how the app looks, in one place.

The bundled WenQuanYi Micro Hei (TrueType, CJK + Latin, Apache-2.0) is registered with Qt and appended
to the application font's fallback families, so Chinese renders on a machine without any
CJK font (a fresh Linux box, CI screenshots) instead of showing tofu boxes.
"""

from __future__ import annotations

import logging
from functools import cache

from PySide6.QtGui import QFont, QFontDatabase, QIcon
from PySide6.QtWidgets import QApplication

from core.resources import cjk_font_path, resource_path

log = logging.getLogger(__name__)


@cache
def cjk_font_families() -> tuple[str, ...]:
    """Register the bundled CJK font once; returns its family names (empty if missing)."""
    path = cjk_font_path()
    font_id = QFontDatabase.addApplicationFont(str(path))
    if font_id < 0:
        log.error("could not load the CJK fallback font %s", path)
        return ()
    return tuple(QFontDatabase.applicationFontFamilies(font_id))


def install_fonts(app: QApplication) -> None:
    """A readable UI font with the bundled CJK font as fallback for every family."""
    cjk = list(cjk_font_families())
    font = QFont(app.font())
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(10)
    if cjk:
        families = [f for f in font.families() if f not in cjk] or [font.family()]
        font.setFamilies([*families, *cjk])
        # Also a substitution for the generic families Qt falls back to on its own.
        for generic in ("Sans Serif", "Helvetica", "DejaVu Sans", font.family()):
            QFont.insertSubstitutions(generic, cjk)
    app.setFont(font)


def style_sheet() -> str:
    try:
        return resource_path("styles", "storedesk.qss").read_text(encoding="utf-8")
    except OSError:
        log.exception("style sheet missing; using the platform look")
        return ""


def install_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setStyleSheet(style_sheet())
    app.setWindowIcon(icon("app"))


def icon(name: str) -> QIcon:
    """``resources/icons/<name>.svg`` as an icon (empty icon if it does not exist)."""
    if not name:
        return QIcon()
    stem = name.removesuffix(".svg")
    path = resource_path("icons", f"{stem}.svg")
    return QIcon(str(path)) if path.exists() else QIcon()
