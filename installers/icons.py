"""Application icons for the installers, drawn from ``resources/icons/app.svg``.

One source (the SVG the app's window uses) → PNG 256 px (Linux desktop entry), ``.ico``
(Windows executable, installer and shortcuts; 16–256 px) and ``.icns`` (macOS app
bundle; up to 1024 px). Qt's QSvgRenderer rasterises the SVG, Pillow writes the
multi-size containers (both are already dependencies of the app). Run as a script to
refresh the committed ``installers/linux/storedesk.png``.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "app.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(size: int, svg: Path = SVG) -> bytes:
    """The SVG rasterised to a transparent ``size``×``size`` PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0] or "icons"])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"not a valid SVG: {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def make_icons(out_dir: Path) -> dict[str, Path]:
    """Write ``storedesk.png`` (256), ``storedesk.ico`` and ``storedesk.icns`` into out_dir."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    big = Image.open(io.BytesIO(render_png(1024))).convert("RGBA")
    png = out_dir / "storedesk.png"
    png.write_bytes(render_png(256))
    ico = out_dir / "storedesk.ico"
    big.save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    icns = out_dir / "storedesk.icns"
    big.save(icns, format="ICNS")
    return {"png": png, "ico": ico, "icns": icns}


if __name__ == "__main__":
    target = ROOT / "installers" / "linux" / "storedesk.png"
    target.write_bytes(render_png(256))
    print(f"wrote {target}")
