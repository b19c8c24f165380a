"""``storedesk``: the app, and its headless commands (demo, report, sync, self-check).

Heavy modules (Qt, reportlab, httpx) are imported only by the command that needs them, so
``storedesk --help`` and ``storedesk demo`` start fast and work without a display.
Bad arguments print one line to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from gettext import gettext as argparse_text  # argparse's own catalogue, as its default

from core.i18n import _, set_language


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("storedesk")
    except PackageNotFoundError:  # running from a bundle without metadata
        from desktop import __version__

        return __version__


class _VersionAction(argparse.Action):
    """``--version``, looking the version up only when asked (importlib.metadata scans the
    installed distributions: ~15 ms that every app start would otherwise pay)."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)
        self.help = help or argparse_text("show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"StoreDesk {app_version()}")
        parser.exit()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="storedesk",
        description=_(
            "StoreDesk (门店工作台): shift schedules, foot traffic, expiry promotions, rep "
            "trajectory maps and sales funnels for store managers and regional supervisors. "
            "Without a command it opens the app (on the demo region when nothing is configured)."
        ),
    )
    p.add_argument("--version", action=_VersionAction)
    p.add_argument(
        "--cache", metavar="FILE", help=_("use this local data file instead of the default")
    )
    p.add_argument(
        "--lang", choices=("zh", "en"), help=_("user interface language (default: system)")
    )
    p.add_argument(
        "--self-check",
        action="store_true",
        help=_("open the demo data, build a report page and load the map offscreen, then exit"),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    demo = sub.add_parser("demo", help=_("write a demo data file (the East China demo region)"))
    demo.add_argument("--out", required=True, metavar="FILE", help=_("the SQLite file to write"))
    demo.add_argument(
        "--scale", type=_positive_int, default=1, help=_("multiply volumes (default 1)")
    )
    demo.add_argument(
        "--seed", type=int, default=None, help=_("random seed (same seed, same data)")
    )
    demo.add_argument(
        "--today", type=_date, default=None, help=_("last day of history, YYYY-MM-DD")
    )
    demo.add_argument("--force", action="store_true", help=_("overwrite FILE if it exists"))

    rep = sub.add_parser("report", help=_("build a weekly business review pack (PDF), headless"))
    target = rep.add_mutually_exclusive_group(required=True)
    target.add_argument("--store", metavar="S", help=_("store code or id"))
    target.add_argument("--region", metavar="R", help=_("region code or id"))
    rep.add_argument("--week", required=True, metavar="YYYY-Www", help=_("ISO week, e.g. 2026-W47"))
    rep.add_argument("--out", required=True, metavar="FILE.pdf")
    rep.add_argument("--lang", dest="report_lang", choices=("zh", "en"), default=None)

    syn = sub.add_parser(
        "sync", help=_("synchronise the local data with a StoreDesk central server")
    )
    syn.add_argument("--server", required=True, metavar="URL")
    syn.add_argument("--user", required=True, metavar="U")
    syn.add_argument(
        "--password-stdin", action="store_true", help=_("read the password from standard input")
    )
    return p


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Pick the language before building help texts.
    lang = None
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv) and argv[i + 1] in ("zh", "en"):
            lang = argv[i + 1]
        elif a.startswith("--lang="):
            lang = a.split("=", 1)[1]
    set_language({"zh": "zh_CN", "en": "en"}.get(lang or ""))
    args = build_parser().parse_args(argv)

    if args.command == "demo":
        from core.demo import cli_demo

        return cli_demo(args)
    if args.command == "report":
        from core.reports.cli import cli_report

        return cli_report(args)
    if args.command == "sync":
        from sync.cli import cli_sync

        return cli_sync(args)
    if args.self_check:
        from desktop.self_check import run_self_check

        return run_self_check(args)
    import gc

    # desktop.app's tune_runtime thresholds, set before its imports: SQLAlchemy's ORM and
    # the models allocate enough to trigger dozens of collections (≈15 ms of start-up).
    gc.set_threshold(50_000, 50, 100)
    from desktop.app import run_app

    return run_app(args)


if __name__ == "__main__":
    raise SystemExit(main())
