"""The StoreDesk Qt application (PySide6 + qasync)."""

import sys

__version__ = "0.1.0"


def _pin_singletons() -> None:
    """Make None/True/False effectively immortal on CPython < 3.12 (as 3.12 does, PEP 683).

    PySide6 6.12 returns them from some calls without taking a reference: every
    Python-side ``Signal.emit`` steals one from True; ``setCurrentIndex``, ``setChecked``
    and ``currentData`` steal from None. On 3.11 the counts run down and the process
    aborts ("bool_dealloc: deallocating True or False") after a few thousand emits — or at
    exit, failing the test run. A huge extra count (ob_refcnt is the first field of every
    CPython object) means they can never reach zero. See
    /work/shared/notes/pyside-6.12-refcount-py311.md; drop this on Python 3.12+.
    """
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    import ctypes

    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40


_pin_singletons()
