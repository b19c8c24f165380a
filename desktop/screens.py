"""The one mechanism that puts screens into the main window.

Each ``desktop/views/<screen>.py`` module calls :func:`register_screen` at import time;
the main window imports every module in :data:`SCREEN_MODULES`, then shows the screens
whose ``roles`` include the signed-in user's role, ordered by ``order``. Nothing in the
shell names a concrete screen class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop.context import AppContext

ALL_ROLES = frozenset({"store_manager", "supervisor", "admin"})

#: View modules, in navigation order; a later issue adds its module here.
SCREEN_MODULES: list[str] = [
    "desktop.views.home",
    "desktop.views.schedule",
    "desktop.views.traffic",
    "desktop.views.promotions",
    "desktop.views.field_map",
    "desktop.views.funnel",
    "desktop.views.alerts",
    "desktop.views.reports",
    "desktop.views.sync_settings",
]


@dataclass(frozen=True)
class ScreenSpec:
    id: str  # stable key, also used in settings and tests ("traffic", "field_map" ...)
    title: str  # English source string; translated with core.i18n._ at display time
    factory: Callable[[AppContext], QWidget]
    roles: frozenset[str] = ALL_ROLES
    order: int = 100
    icon: str = ""  # file name under resources/icons/


_REGISTRY: dict[str, ScreenSpec] = {}


def register_screen(spec: ScreenSpec) -> ScreenSpec:
    _REGISTRY[spec.id] = spec
    return spec


def load_screens() -> list[ScreenSpec]:
    """Import every view module (registering its screens); return them in order."""
    for mod in SCREEN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real import error inside the view must not be hidden
                raise
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.id))


def screens_for_role(role: str) -> list[ScreenSpec]:
    return [s for s in load_screens() if role in s.roles]
