"""The one translation layer for the UI, the CLI and the PDF reports.

Source strings are English inside ``_()``; Simplified Chinese catalogues are gettext ``.po``
files under ``resources/i18n/zh_CN/``, one file per area of the product (``shell.po``,
``traffic.po``, ``reports.po`` ...) so that features can be translated independently. All
``.po`` files of a language are merged at load time (parsed with Babel, no compile step).
``N_()`` marks a string for extraction without translating it (module-level constants).

The language is process-wide: the system locale picks it, a setting overrides it
(``set_language``). ``tests/core/test_i18n.py`` checks that every ``_()`` string in the
code has a Chinese translation.
"""

from __future__ import annotations

import locale
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from core.resources import resource_path

SUPPORTED = ("zh_CN", "en")
_current = "en"
_catalog: dict[str, str] = {}
_listeners: list[Callable[[str], None]] = []


def system_language() -> str:
    """zh_CN for any Chinese system locale, en otherwise."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var)
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    try:
        loc = locale.getlocale()[0] or ""
    except ValueError:
        loc = ""
    return "zh_CN" if loc.lower().startswith("zh") else "en"


@cache
def load_catalog(lang: str) -> dict[str, str]:
    """Merged msgid -> msgstr of every .po file for ``lang`` (empty for English)."""
    from babel.messages.pofile import read_po  # only when a catalogue is read (not for English)

    messages: dict[str, str] = {}
    folder = Path(resource_path("i18n", lang))
    if not folder.is_dir():
        return messages
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang.replace("-", "_"))
        for msg in catalog:
            if msg.id and msg.string and not msg.fuzzy:
                if isinstance(msg.id, tuple):
                    messages[msg.id[0]] = msg.string[0]
                    messages[msg.id[1]] = msg.string[-1]
                else:
                    messages[msg.id] = msg.string
    return messages


def set_language(lang: str | None) -> str:
    """Switch the process language (None = system). Returns the language now in use."""
    global _current, _catalog
    lang = lang or system_language()
    if lang.lower().startswith("zh"):
        lang = "zh_CN"
    elif lang not in SUPPORTED:
        lang = "en"
    _current = lang
    _catalog = load_catalog(lang) if lang != "en" else {}
    for cb in list(_listeners):
        cb(lang)
    return lang


def current_language() -> str:
    return _current


def on_language_changed(callback: Callable[[str], None]) -> Callable[[], None]:
    """Subscribe to language switches; returns an unsubscribe function."""
    _listeners.append(callback)
    return lambda: _listeners.remove(callback) if callback in _listeners else None


def _(message: str) -> str:
    """Translate ``message`` into the current language."""
    return _catalog.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    # Chinese has one form; English picks by n.
    if _current == "en":
        return singular if n == 1 else plural
    return _catalog.get(plural if n != 1 else singular, _catalog.get(singular, plural))


def N_(message: str) -> str:
    """Mark for translation; translate later with ``_()`` at display time."""
    return message


def translate_in(lang: str, message: str) -> str:
    """Translate into a given language without switching the process (PDF in --lang)."""
    if lang.lower().startswith("zh"):
        return load_catalog("zh_CN").get(message, message)
    return message
