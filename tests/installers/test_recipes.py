"""The Windows and macOS recipes cannot be run here; keep them consistent with the code.

Each check names a way the recipes would silently break: an installer shortcut to an
executable the spec no longer builds, an uninstaller looking for the user's data in the
wrong folder, a script Inno Setup would read in the wrong encoding.
"""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALLERS = ROOT / "installers"


def _iss() -> str:
    raw = (INSTALLERS / "windows" / "storedesk.iss").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), (
        "Inno Setup reads non-ASCII scripts as UTF-8 only with a BOM"
    )
    return raw[3:].decode("utf-8")


def _spec() -> str:
    return (INSTALLERS / "storedesk.spec").read_text(encoding="utf-8")


def test_windows_installer_is_per_user_and_starts_the_windowed_exe() -> None:
    iss = _iss()
    assert re.search(r"^PrivilegesRequired=lowest$", iss, re.M)
    assert re.search(r"^DefaultDirName=\{autopf\}\\", iss, re.M)  # = {localappdata}\Programs
    assert '#define AppExe "StoreDesk.exe"' in iss
    assert 'make_exe("StoreDesk", console=False)' in _spec()  # the exe the shortcut starts
    assert re.search(
        r'^Name: "\{autoprograms\}\\\{#AppName\}"; Filename: "\{app\}\\\{#AppExe\}"', iss, re.M
    )
    assert re.search(
        r'^Source: "\{#BundleDir\}\\\*"; DestDir: "\{app\}";.*recursesubdirs', iss, re.M
    )
    # {app} never holds user data, so nothing in [UninstallDelete] may wipe it wholesale
    assert "[UninstallDelete]" not in iss


def test_uninstaller_asks_before_removing_the_data_folder_the_app_uses() -> None:
    from core.cache import APP_AUTHOR, APP_NAME

    iss = _iss()
    code = iss.split("[Code]", 1)[1]
    # platformdirs on Windows: %LOCALAPPDATA%\<appauthor>\<appname>
    assert f"{{localappdata}}\\{APP_AUTHOR}\\{APP_NAME}" in code
    assert "usPostUninstall" in code and "UninstallSilent()" in code
    # the question defaults to No, and a suppressed message box answers No
    assert re.search(r"MB_YESNO or MB_DEFBUTTON2, IDNO\) = IDYES", code)
    assert "DelTree(Dir, True, True, True)" in code
    for lang in ("en", "zh"):
        assert f"{lang}.RemoveDataQuestion=" in iss


def test_macos_bundle_runs_the_windowed_exe_and_entitlements_parse() -> None:
    spec = _spec()
    assert '"CFBundleExecutable": "StoreDesk"' in spec
    assert 'bundle_identifier="com.storedesk.desktop"' in spec
    for name in ("entitlements.plist", "QtWebEngineProcess.entitlements.plist"):
        data = plistlib.loads((INSTALLERS / "macos" / name).read_bytes())
        assert data and all(v is True for v in data.values()), name
    helper = plistlib.loads(
        (INSTALLERS / "macos" / "QtWebEngineProcess.entitlements.plist").read_bytes()
    )
    assert "com.apple.security.cs.disable-executable-page-protection" in helper
    script = (INSTALLERS / "macos" / "sign_and_notarize.sh").read_text(encoding="utf-8")
    for exe in ("Contents/MacOS/StoreDesk", "Contents/MacOS/storedesk-cli"):
        assert exe in script
    assert (
        "--options runtime" in script
        and "notarytool submit" in script
        and "stapler staple" in script
    )


def test_linux_entry_and_icon() -> None:
    entry = (INSTALLERS / "linux" / "storedesk.desktop").read_text(encoding="utf-8")
    assert entry.startswith("[Desktop Entry]\n")
    keys = dict(line.split("=", 1) for line in entry.splitlines()[1:] if "=" in line)
    assert keys["Type"] == "Application" and keys["Exec"] == "storedesk"
    assert keys["Icon"] == "storedesk" and keys["Name[zh_CN]"] == "门店工作台"
    png = (INSTALLERS / "linux" / "storedesk.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == int.from_bytes(png[20:24], "big") == 256


def test_icons_for_every_platform_come_from_the_app_svg(tmp_path: Path) -> None:
    import sys

    from PIL import Image

    sys.path.insert(0, str(INSTALLERS))
    try:
        from icons import ICO_SIZES, make_icons
    finally:
        sys.path.remove(str(INSTALLERS))
    made = make_icons(tmp_path)
    with Image.open(made["ico"]) as ico:
        assert {s[0] for s in ico.info["sizes"]} == set(ICO_SIZES)
    with Image.open(made["icns"]) as icns:
        assert icns.format == "ICNS"
    with Image.open(made["png"]) as png:
        assert png.size == (256, 256) and png.mode == "RGBA"
        assert png.getpixel((128, 128))[3] == 255 and png.getpixel((0, 0))[3] == 0  # rounded corner
