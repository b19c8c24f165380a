"""The screen declarations: listed without importing views, equal to what each view registers."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from desktop import screens


def test_listing_the_screens_imports_no_view_module() -> None:
    code = (
        "import sys\n"
        "from desktop.screens import screens_for_role\n"
        "ids = [s.id for s in screens_for_role('supervisor')]\n"
        "assert ids[0] == 'home' and 'field_map' in ids, ids\n"
        "views = sorted(m for m in sys.modules if m.startswith('desktop.views.'))\n"
        "assert not views, views\n"
        "assert 'shapely' not in sys.modules and 'gpxpy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("spec", screens.SCREENS, ids=lambda s: s.id)
def test_each_declaration_matches_what_its_view_registers(spec) -> None:
    assert isinstance(spec.factory, screens.LazyFactory)
    importlib.import_module(spec.factory.module)
    real = screens._REGISTRY[spec.id]
    assert (real.title, real.roles, real.order, real.icon) == (
        spec.title,
        spec.roles,
        spec.order,
        spec.icon,
    )
    assert spec.factory.resolve() is real.factory
    assert screens.SCREEN_MODULES.count(spec.factory.module) == 1


def test_roles_see_their_screens_in_order() -> None:
    manager = [s.id for s in screens.screens_for_role("store_manager")]
    supervisor = [s.id for s in screens.screens_for_role("supervisor")]
    assert manager[0] == supervisor[0] == "home" and manager[-1] == "sync_settings"
    assert "funnel" in supervisor and "funnel" not in manager
    assert len(set(supervisor)) == len(supervisor)
