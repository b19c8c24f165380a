"""Every user-visible string has a Simplified Chinese translation, and switching works."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from core import i18n

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "sync", "central", "desktop")


def _source_strings() -> dict[str, str]:
    found: dict[str, str] = {}
    for pkg in PACKAGES:
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            ROOT / pkg,
            method_map=[("**.py", "python")],
            keywords={"_": None, "N_": None, "ngettext": (1, 2), "translate_in": (2,)},
        ):
            messages = message if isinstance(message, tuple) else (message,)
            for m in messages:
                if m:
                    found.setdefault(m, f"{pkg}/{filename}:{lineno}")
    return found


def test_every_source_string_has_a_chinese_translation() -> None:
    catalog = i18n.load_catalog("zh_CN")
    missing = {m: where for m, where in _source_strings().items() if m not in catalog}
    assert not missing, "untranslated strings:\n" + "\n".join(
        f"  {where}: {m!r}" for m, where in sorted(missing.items(), key=lambda kv: kv[1])
    )


def test_switching_language() -> None:
    try:
        assert i18n.set_language("zh_CN") == "zh_CN"
        assert i18n._("not a database file") == "不是数据库文件"
        assert i18n.set_language("en") == "en"
        assert i18n._("not a database file") == "not a database file"
        assert i18n.translate_in("zh", "not a database file") == "不是数据库文件"
    finally:
        i18n.set_language("en")


def test_system_locale_picks_chinese(monkeypatch) -> None:
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.system_language() == "zh_CN"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert i18n.system_language() == "en"
