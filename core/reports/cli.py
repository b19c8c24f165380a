"""``storedesk report --store S|--region R --week 2026-W47 --out FILE.pdf [--lang zh|en]``.

Headless: opens the local cache (``--cache`` or the default one), builds the pack and writes
it atomically. A bad store, region or week is a one-line error with exit status 2 and no
file; a failure while building is exit status 1, also without a file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.i18n import _


def cli_report(args: argparse.Namespace) -> int:
    from core.cache import CacheError, open_cache
    from core.reports import build_pack
    from core.reports.gather import ScopeNotFound
    from core.timeutil import parse_iso_week

    out = Path(args.out)
    lang = {"zh": "zh_CN", "en": "en"}.get(args.report_lang or "")
    if lang is None:
        from core.i18n import current_language

        lang = current_language()
    try:
        parse_iso_week(args.week)
    except ValueError as e:
        return _fail(2, str(e))
    if not out.parent.is_dir():
        return _fail(2, _("output folder does not exist: {path}").format(path=out.parent))
    cache_path = getattr(args, "cache", None)
    if cache_path is not None and not Path(cache_path).exists():
        return _fail(2, _("no such data file: {path}").format(path=cache_path))
    try:
        cache = open_cache(cache_path)
    except CacheError as e:
        return _fail(2, str(e))
    if cache.recovered is not None:
        print(cache.recovered.message(), file=sys.stderr)
    try:
        t0 = time.perf_counter()
        with cache.session() as session:
            role = "supervisor" if args.region else "store_manager"
            result = build_pack(
                session,
                out,
                store=args.store,
                region=args.region,
                week=args.week,
                lang=lang,
                author_role=role,
            )
        elapsed = time.perf_counter() - t0
    except ScopeNotFound as e:
        return _fail(2, str(e))
    finally:
        cache.close()
    print(
        _("{path}: {pages} pages, {scope} {week}, built in {seconds:.1f} s").format(
            path=result.path,
            pages=result.pages,
            scope=result.scope_name,
            week=result.week,
            seconds=elapsed,
        )
    )
    return 0


def _fail(code: int, message: str) -> int:
    print(f"storedesk report: error: {message}", file=sys.stderr)
    return code
