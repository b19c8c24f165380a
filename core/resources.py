"""Finding bundled resources, from a source checkout and from a PyInstaller bundle alike.

Every file under ``resources/`` (web assets, fonts, translations, base map, icons) is found
through :func:`resource_path`; nothing else in the code computes resource locations.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_root() -> Path:
    """The ``resources`` folder: next to the packages in a checkout, in _MEIPASS in a bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """``resources/<parts...>`` as an absolute path (it may not exist; callers check)."""
    return resources_root().joinpath(*parts)


#: The bundled TrueType font covering CJK and Latin (see resources/fonts/README.md).
CJK_FONT_FILE = "wqy-microhei.ttc"


def cjk_font_path() -> Path:
    """The bundled CJK+Latin TrueType font, for reportlab (PDF) and Qt (fallback)."""
    return resource_path("fonts", CJK_FONT_FILE)
