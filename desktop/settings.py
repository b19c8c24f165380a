"""Typed, versioned user settings, stored as JSON in the platformdirs config folder.

Why JSON and not QSettings: the file is readable in a support call, the schema is a plain
dataclass (typos are attribute errors, not silent new keys), and migrations are ordinary
functions over dicts (napari's ``schema_version`` / Orange's ``migrate_settings``). The
sign-in token is NOT a setting: it lives in the OS keyring (``desktop.signin``).

Writes are atomic (temp file + ``os.replace``) so a crash or a full disk never leaves a
half-written file; a file that cannot be read is moved aside and defaults are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from core.cache import APP_AUTHOR, APP_NAME

log = logging.getLogger(__name__)

#: Bump when a field is renamed or its meaning changes; add a step to MIGRATIONS.
SETTINGS_VERSION = 2


@dataclass
class Settings:
    """Everything the app remembers between runs (except secrets)."""

    schema_version: int = SETTINGS_VERSION
    #: "" = follow the system locale; "zh_CN" or "en" = the user's choice.
    language: str = ""
    #: "demo" (embedded demo region, offline) or "server".
    mode: str = "demo"
    #: Demo sign-in: "store_manager" or "supervisor", and which store/region.
    demo_role: str = "store_manager"
    demo_store_code: str = ""
    demo_region_code: str = ""
    server_url: str = ""
    username: str = ""
    #: Seconds between background syncs when signed in to a server (0 = only on demand).
    sync_interval_s: int = 300
    #: Sign in again automatically at start with the remembered account.
    auto_sign_in: bool = True
    #: QMainWindow.saveGeometry()/saveState() as base64 text.
    window_geometry: str = ""
    window_state: str = ""
    last_screen: str = ""
    #: Per-screen filters: screen id -> {name: JSON value}.
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ------------------------------------------------------------------ per-screen filters

    def screen_filter(self, screen_id: str, name: str, default: Any = None) -> Any:
        return self.filters.get(screen_id, {}).get(name, default)

    def set_screen_filter(self, screen_id: str, name: str, value: Any) -> None:
        json.dumps(value)  # refuse values that could not be saved, at the call site
        self.filters.setdefault(screen_id, {})[name] = value


def default_settings_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)) / "settings.json"


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 stored ``lang`` as "zh"/"en" and ``role`` for the demo; v2 names them fully."""
    lang = data.pop("lang", "")
    data.setdefault("language", {"zh": "zh_CN", "en": "en"}.get(lang, ""))
    role = data.pop("role", None)
    if role:
        data.setdefault("demo_role", {"manager": "store_manager"}.get(role, role))
    return data


MIGRATIONS = {1: _migrate_1_to_2}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a settings dict of any older version up to SETTINGS_VERSION."""
    version = int(data.get("schema_version", 1))
    while version < SETTINGS_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    data["schema_version"] = version
    return data


def from_dict(data: dict[str, Any]) -> Settings:
    """Known fields with the right type are kept; anything else falls back to the default."""
    defaults = Settings()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name not in data:
            continue
        value = data[f.name]
        expected = type(getattr(defaults, f.name))
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            kwargs[f.name] = value
        else:
            log.warning("settings: ignoring %s=%r (expected %s)", f.name, value, expected.__name__)
    return Settings(**kwargs)


class SettingsStore:
    """Loads and saves one :class:`Settings` file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_settings_path()

    def load(self) -> Settings:
        if not self.path.exists():
            return Settings()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if int(data.get("schema_version", 1)) > SETTINGS_VERSION:
                log.warning("settings written by a newer StoreDesk; unknown fields ignored")
            else:
                data = migrate(data)
            return from_dict(data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            aside = self.path.with_suffix(".unreadable.json")
            log.warning("settings file %s unreadable (%s); moved to %s", self.path, e, aside)
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            return Settings()

    def save(self, settings: Settings) -> None:
        """Write atomically; raises OSError (e.g. disk full) for the caller to report."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        payload = json.dumps(dataclasses.asdict(settings), ensure_ascii=False, indent=2)
        try:
            with tmp.open("w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
