"""Register the bundled TrueType CJK font with reportlab (embedded, subset, extractable).

reportlab embeds TrueType outlines only; WenQuanYi Micro Hei (resources/fonts) covers CJK
and Latin. Registering is idempotent and cheap after the first call.
"""

from __future__ import annotations

from functools import cache

from reportlab.graphics import shapes
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from core.resources import cjk_font_path

FONT = "StoreDeskCJK"


@cache
def register_fonts() -> str:
    """Register the CJK font (normal/bold/italic all map to it) and return its name."""
    path = cjk_font_path()
    if not path.exists():
        raise FileNotFoundError(f"bundled font missing: {path}")
    pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
    # reportlab.graphics starts every Drawing in STATE_DEFAULTS' font (Helvetica, which is
    # never embedded); StoreDesk is the only reportlab user in the process, so make the
    # embedded CJK font the drawing default and every font in our PDFs is embedded.
    shapes.STATE_DEFAULTS["fontName"] = FONT
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(FONT, bold, italic, FONT)
    return FONT
