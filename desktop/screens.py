"""The one mechanism that puts screens into the main window.

Every screen is declared in :data:`SCREENS` with a :class:`LazyFactory` that names its view
class, so the main window can list the navigation without importing any view module: a
view module (and what it pulls in — shapely and gpxpy for the field map, QtPdf for the
reports) is imported the first time its screen is opened. Start-up imports only the screen
it lands on.

Each ``desktop/views/<screen>.py`` module also calls :func:`register_screen` at import
time with its real class; that entry replaces the declaration (a test holds the two
equal). A screen registered by a module that is not declared here shows once its module
is imported. The main window shows the screens whose ``roles`` include the signed-in
user's role, ordered by ``order``. Nothing in the shell names a concrete screen class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.i18n import N_

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop.context import AppContext

ALL_ROLES = frozenset({"store_manager", "supervisor", "admin"})


@dataclass(frozen=True)
class ScreenSpec:
    id: str  # stable key, also used in settings and tests ("traffic", "field_map" ...)
    title: str  # English source string; translated with core.i18n._ at display time
    factory: Callable[[AppContext], QWidget]
    roles: frozenset[str] = ALL_ROLES
    order: int = 100
    icon: str = ""  # file name under resources/icons/


@dataclass(frozen=True)
class LazyFactory:
    """A view class named ``"package.module:Class"``, imported when the screen is first built."""

    target: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    def resolve(self) -> Callable[[AppContext], QWidget]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def __call__(self, ctx: AppContext) -> QWidget:
        return self.resolve()(ctx)


def _declare(
    id: str, title: str, target: str, order: int, roles: frozenset[str] = ALL_ROLES
) -> ScreenSpec:
    return ScreenSpec(id, title, LazyFactory(target), roles, order, icon=id)


#: Every screen, in navigation order; a later issue adds its screen here.
SCREENS: tuple[ScreenSpec, ...] = (
    _declare("home", N_("Home"), "desktop.views.home:HomeView", 0),
    _declare("schedule", N_("Schedule"), "desktop.views.schedule:ScheduleView", 20),
    _declare("traffic", N_("Traffic"), "desktop.views.traffic:TrafficView", 30),
    _declare("promotions", N_("Promotions"), "desktop.views.promotions:PromotionsView", 40),
    _declare("field_map", N_("Field map"), "desktop.views.field_map:FieldMapView", 50),
    _declare(
        "funnel",
        N_("Funnel"),
        "desktop.views.funnel:FunnelView",
        60,
        frozenset({"supervisor", "admin"}),
    ),
    _declare("alerts", N_("Alerts"), "desktop.views.alerts:AlertsView", 70),
    _declare("reports", N_("Reports"), "desktop.views.reports:ReportsView", 80),
    _declare(
        "sync_settings",
        N_("Sync & settings"),
        "desktop.views.sync_settings:SyncSettingsView",
        900,
    ),
)

#: View modules, in navigation order (the self-check imports each of them).
SCREEN_MODULES: list[str] = [
    s.factory.module for s in SCREENS if isinstance(s.factory, LazyFactory)
]


_REGISTRY: dict[str, ScreenSpec] = {}


def register_screen(spec: ScreenSpec) -> ScreenSpec:
    _REGISTRY[spec.id] = spec
    return spec


def load_screens() -> list[ScreenSpec]:
    """Every screen, declared or registered by an imported module, in order (no imports)."""
    specs = {s.id: s for s in SCREENS}
    specs.update(_REGISTRY)
    return sorted(specs.values(), key=lambda s: (s.order, s.id))


def screens_for_role(role: str) -> list[ScreenSpec]:
    return [s for s in load_screens() if role in s.roles]
