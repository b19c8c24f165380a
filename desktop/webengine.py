"""QtWebEngine's process settings, set in one place before QtWebEngine starts.

StoreDesk shows one simple page at a time (the offline Leaflet map, served from its own
``storedesk://`` scheme), so Chromium's defaults for a browser cost memory for nothing:

* ``--renderer-process-limit=1``: every map view shares one renderer process;
* ``--no-zygote`` when the sandbox is off (running as root, containers, or the user's own
  ``--no-sandbox``): the two zygote processes exist to fork *sandboxed* renderers quickly;
  without a sandbox they only add two processes (≈ 60 MiB resident each, mostly shared
  library pages) to the tree. Chromium refuses ``--no-zygote`` with the sandbox on, so
  a sandboxed installation keeps them;
* ``--disable-gpu`` when Qt renders without a GPU anyway (offscreen/minimal platform or
  ``QT_QUICK_BACKEND=software``): no GPU thread and GL contexts that would only fall back
  to software.

Flags the user already put in ``QTWEBENGINE_CHROMIUM_FLAGS`` win: a switch they set
(with any value) is never added or changed. Chromium reads the variable once, when the
first QtWebEngine profile is created (:func:`desktop.widgets.map_view.map_profile`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

ENV = "QTWEBENGINE_CHROMIUM_FLAGS"
_TRUE = {"1", "true", "yes", "on"}


def sandbox_disabled(env: Mapping[str, str]) -> bool:
    """Whether QtWebEngine will run without its sandbox (Qt's variable or the flag)."""
    flags = env.get(ENV, "").split()
    return env.get("QTWEBENGINE_DISABLE_SANDBOX", "").lower() in _TRUE or "--no-sandbox" in flags


def software_rendering(env: Mapping[str, str]) -> bool:
    """Whether Qt draws without a GPU (no display server, or software asked for)."""
    platform = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].lower()
    return platform in ("offscreen", "minimal") or env.get("QT_QUICK_BACKEND") == "software"


def chromium_flags(env: Mapping[str, str], platform: str = sys.platform) -> str:
    """``QTWEBENGINE_CHROMIUM_FLAGS`` for StoreDesk: the user's flags plus ours."""
    flags = env.get(ENV, "").split()
    have = {f.split("=", 1)[0] for f in flags}
    wanted = ["--renderer-process-limit=1"]
    if platform.startswith("linux") and sandbox_disabled(env):
        wanted.append("--no-zygote")
    if software_rendering(env):
        wanted.append("--disable-gpu")
    flags += [f for f in wanted if f.split("=", 1)[0] not in have]
    return " ".join(flags)


def apply_chromium_flags(env: MutableMapping[str, str] | None = None) -> str:
    """Put StoreDesk's flags into the environment (before QtWebEngine starts); returns them."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    flags = chromium_flags(target)
    target[ENV] = flags
    return flags
