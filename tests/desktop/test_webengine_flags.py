"""QtWebEngine's Chromium flags: ours are added, the user's are kept and win."""

from __future__ import annotations

from desktop.webengine import ENV, apply_chromium_flags, chromium_flags


def test_one_renderer_and_no_zygote_when_the_sandbox_is_off() -> None:
    env = {"QTWEBENGINE_DISABLE_SANDBOX": "1", "QT_QPA_PLATFORM": "xcb"}
    flags = chromium_flags(env, "linux").split()
    assert "--renderer-process-limit=1" in flags and "--no-zygote" in flags
    assert "--disable-gpu" not in flags  # a real display may have a GPU
    assert "--no-zygote" in chromium_flags({ENV: "--no-sandbox"}, "linux").split()


def test_zygote_kept_with_the_sandbox_on_or_off_linux() -> None:
    assert "--no-zygote" not in chromium_flags({}, "linux")  # Chromium refuses it sandboxed
    assert "--no-zygote" not in chromium_flags({ENV: "--no-sandbox"}, "win32")


def test_no_gpu_when_qt_renders_in_software() -> None:
    assert "--disable-gpu" in chromium_flags({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert "--disable-gpu" in chromium_flags({"QT_QUICK_BACKEND": "software"}, "darwin")


def test_the_users_flags_are_kept_and_win() -> None:
    env = {ENV: "--renderer-process-limit=3 --force-dark-mode --no-sandbox --disable-gpu"}
    flags = chromium_flags(env, "linux").split()
    assert flags[:4] == env[ENV].split()  # untouched, in their order
    assert "--renderer-process-limit=1" not in flags
    assert flags.count("--disable-gpu") == 1


def test_apply_is_idempotent() -> None:
    env = {"QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_DISABLE_SANDBOX": "1"}
    first = apply_chromium_flags(env)
    assert env[ENV] == first == apply_chromium_flags(env)
    assert sorted(first.split()) == ["--disable-gpu", "--no-zygote", "--renderer-process-limit=1"]
