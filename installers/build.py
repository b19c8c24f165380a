"""Build the StoreDesk one-folder bundle for this platform and prove it works.

    uv run python installers/build.py            # check tools, build, self-check, size
    uv run python installers/build.py --installer  # + Windows setup.exe (Inno Setup)

Steps (each prints a line; the first failure stops the build with exit status 1):

1. **tools** — Python, PyInstaller, PySide6 with QtWebEngine; with ``--installer`` on
   Windows also Inno Setup's ``ISCC.exe`` (PATH, or the default install folders).
2. **bundle** — PyInstaller with ``installers/storedesk.spec`` (one folder:
   ``dist/storedesk/``; on macOS also ``dist/StoreDesk.app``).
3. **self-check** — runs ``<bundle>/storedesk --self-check`` headless (demo data, one
   store pack, the map page offscreen with 0 network requests); a bundle that fails it
   is not shipped.
4. **size** — total size and file count of the bundle.
5. **platform extras** — Linux: the desktop entry, icon and per-user install script are
   copied into the bundle (``--archive``: also ``storedesk-<version>-linux-<arch>.tar.gz``);
   Windows with ``--installer``: ``ISCC storedesk.iss`` writes
   ``dist/StoreDesk-<version>-setup.exe``; macOS: see installers/macos/README.md for
   signing and notarising the .app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "installers" / "storedesk.spec"
SELF_CHECK_TIMEOUT_S = 600


class BuildError(Exception):
    pass


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def app_version() -> str:
    for line in (ROOT / "desktop" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise BuildError("desktop/__init__.py has no __version__")


def find_iscc() -> Path | None:
    found = shutil.which("ISCC") or shutil.which("iscc")
    if found:
        return Path(found)
    # Windows environment variable names are case-insensitive
    for base in (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES")):
        if base:
            p = Path(base) / "Inno Setup 6" / "ISCC.exe"
            if p.is_file():
                return p
    return None


def check_tools(installer: bool) -> dict[str, str]:
    step("1/5 tools")
    found: dict[str, str] = {}
    found["python"] = sys.version.split()[0]
    try:
        import PyInstaller

        found["pyinstaller"] = PyInstaller.__version__
    except ImportError as e:
        raise BuildError("PyInstaller is missing: run `uv sync` (it is a dev dependency)") from e
    try:
        import PySide6
        from PySide6 import QtWebEngineWidgets  # noqa: F401

        found["pyside6"] = PySide6.__version__
    except ImportError as e:
        raise BuildError(f"PySide6 with QtWebEngine is missing: {e}") from e
    if sys.platform.startswith("linux") and shutil.which("objdump") is None:
        raise BuildError("objdump is missing: install binutils (PyInstaller needs it on Linux)")
    if installer:
        if sys.platform != "win32":
            raise BuildError("--installer builds the Windows setup.exe: run it on Windows")
        iscc = find_iscc()
        if iscc is None:
            raise BuildError("Inno Setup 6 (ISCC.exe) not found: https://jrsoftware.org/isdl.php")
        found["iscc"] = str(iscc)
    for k, v in found.items():
        print(f"   {k:<12} {v}")
    return found


def build_bundle(dist: Path, work: Path) -> tuple[Path, float]:
    step("2/5 bundle (PyInstaller, one folder)")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level=WARN",
        f"--distpath={dist}",
        f"--workpath={work}",
        str(SPEC),
    ]
    print("   " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise BuildError(f"PyInstaller failed (exit status {done.returncode})")
    bundle = dist / "storedesk"
    exe = bundle_executable(bundle)
    if not exe.is_file():
        raise BuildError(f"PyInstaller finished but {exe} is missing")
    print(f"   built {bundle} in {seconds:.0f} s")
    return bundle, seconds


def bundle_executable(bundle: Path) -> Path:
    """The console executable (Windows/macOS also have the windowed ``StoreDesk``)."""
    if sys.platform == "win32":
        return bundle / "storedesk-cli.exe"
    if sys.platform == "darwin":
        return bundle / "storedesk-cli"
    return bundle / "storedesk"


def self_check_env(home: Path) -> dict[str, str]:
    """A clean environment: no display, no user's data folders, no source tree on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        env[var] = str(home / sub)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return env


def check_links(bundle: Path) -> int:
    """Linux: every ELF file of the bundle's Qt finds the Qt/ICU libraries it links to.

    The spec leaves unused Qt libraries out (link closure); this proves nothing needed was
    dropped. Libraries of the system (X11, xcb, GL...) are the user's, and not checked.
    """
    qt = bundle / "_internal" / "PySide6"
    files = [
        p for p in qt.rglob("*") if p.is_file() and (".so" in p.name or p.parent.name == "libexec")
    ]
    missing: set[str] = set()
    for f in files:
        done = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        for line in done.stdout.splitlines():
            name = line.strip().split(" ", 1)[0]
            if "not found" in line and name.startswith(
                ("libQt6", "libicu", "libpyside", "libshiboken")
            ):
                missing.add(f"{f.relative_to(bundle)} -> {name}")
    if missing:
        raise BuildError("Qt libraries missing from the bundle:\n  " + "\n  ".join(sorted(missing)))
    print(f"   {len(files)} Qt binaries: every Qt library they link to is in the bundle")
    return len(files)


def run_self_check(bundle: Path) -> tuple[str, float]:
    step("3/5 self-check of the bundle")
    if sys.platform.startswith("linux") and shutil.which("ldd"):
        check_links(bundle)
    exe = bundle_executable(bundle)
    with tempfile.TemporaryDirectory(prefix="storedesk-build-") as tmp:
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                [str(exe), "--lang", "en", "--self-check"],
                cwd=tmp,  # not the source tree: the bundle must find everything itself
                env=self_check_env(Path(tmp)),
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=SELF_CHECK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            raise BuildError(f"the bundle's self-check took over {SELF_CHECK_TIMEOUT_S} s") from e
        seconds = time.perf_counter() - t0
    print(done.stdout.rstrip())
    if done.returncode != 0:
        print(done.stderr.rstrip()[-4000:], file=sys.stderr)
        raise BuildError(f"the bundle's self-check failed (exit status {done.returncode})")
    print(f"   self-check passed in {seconds:.1f} s (process start to exit)")
    return done.stdout, seconds


def measure(bundle: Path) -> tuple[int, int]:
    step("4/5 size")
    total = files = 0
    for p in bundle.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
            files += 1
    print(f"   {bundle}: {total / 2**20:.0f} MB in {files} files")
    return total, files


def linux_archive(bundle: Path, dist: Path) -> Path:
    """``storedesk-<version>-linux-<arch>.tar.gz`` of the bundle folder (links kept)."""
    import platform
    import tarfile

    out = dist / f"storedesk-{app_version()}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname="storedesk")
    return out


def platform_extras(
    bundle: Path, dist: Path, work: Path, installer: bool, iscc: str | None, archive: bool = False
) -> None:
    step("5/5 platform extras")
    if sys.platform.startswith("linux"):
        for name in ("storedesk.desktop", "storedesk.png", "install.sh"):
            shutil.copy2(ROOT / "installers" / "linux" / name, bundle / name)
        print(f"   Linux: {bundle}/install.sh installs it for the current user")
        if archive:
            print(f"   wrote {linux_archive(bundle, dist)}")
    elif sys.platform == "win32":
        if installer and iscc:
            sys.path.insert(0, str(ROOT / "installers"))
            from icons import make_icons

            ico = make_icons(work / "icons")["ico"]
            cmd = [
                iscc,
                f"/DAppVersion={app_version()}",
                f"/DBundleDir={bundle}",
                f"/DIconFile={ico}",
                f"/O{dist}",
                str(ROOT / "installers" / "windows" / "storedesk.iss"),
            ]
            print("   " + " ".join(cmd), flush=True)
            if subprocess.run(cmd).returncode != 0:
                raise BuildError("Inno Setup failed")
            print(f"   wrote {dist / f'StoreDesk-{app_version()}-setup.exe'}")
        else:
            print("   Windows: add --installer to build the setup.exe with Inno Setup")
    elif sys.platform == "darwin":
        print(f"   macOS: {dist / 'StoreDesk.app'}; sign and notarise: installers/macos/README.md")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (dist/)")
    p.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller work folder")
    p.add_argument("--skip-self-check", action="store_true", help="do not run the bundle")
    p.add_argument("--installer", action="store_true", help="Windows: also build setup.exe")
    p.add_argument("--archive", action="store_true", help="Linux: also write a .tar.gz")
    args = p.parse_args(argv)
    started = time.perf_counter()
    try:
        tools = check_tools(args.installer)
        bundle, build_s = build_bundle(args.dist.resolve(), args.work.resolve())
        check_s = None
        if not args.skip_self_check:
            _out, check_s = run_self_check(bundle)
        size, files = measure(bundle)
        platform_extras(
            bundle,
            args.dist.resolve(),
            args.work.resolve(),
            args.installer,
            tools.get("iscc"),
            args.archive,
        )
    except BuildError as e:
        print(f"\nBUILD FAILED: {e}", file=sys.stderr)
        return 1
    print(
        f"\nStoreDesk {app_version()} bundle: {bundle} — {size / 2**20:.0f} MB, {files} files; "
        f"build {build_s:.0f} s"
        + (f", self-check {check_s:.1f} s" if check_s is not None else "")
        + f"; total {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
