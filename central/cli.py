"""``storedesk-central``: run the StoreDesk central API.

    storedesk-central --demo                  # seed the demo region on first start
    storedesk-central --db postgresql+psycopg://user@host/storedesk --port 8765
    storedesk-central --generate-every 5     # promotion rules every 5 minutes (default 10)

The default database is ``central.db`` in the user data folder. ``--demo`` fills an empty
database with the demo region and gives every demo account the password
``core.demo.DEMO_PASSWORD``, then prints how to sign in. Bad arguments print one line and
exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import platformdirs
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.jobs import DEFAULT_GENERATE_EVERY
from core.i18n import _, set_language


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def default_db_path() -> Path:
    d = Path(platformdirs.user_data_dir("StoreDesk", "StoreDesk"))
    d.mkdir(parents=True, exist_ok=True)
    return d / "central.db"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="storedesk-central", description=_("The StoreDesk central sync server."))
    p.add_argument(
        "--db",
        metavar="URL",
        help=_("database URL or SQLite file (default: central.db in the user data folder)"),
    )
    p.add_argument(
        "--host", default="127.0.0.1", help=_("address to listen on (default 127.0.0.1)")
    )
    p.add_argument("--port", type=int, default=8765, help=_("port (default 8765)"))
    p.add_argument(
        "--demo",
        action="store_true",
        help=_("seed the demo region and demo accounts if the database is empty"),
    )
    p.add_argument(
        "--generate-every",
        type=float,
        default=DEFAULT_GENERATE_EVERY.total_seconds() / 60,
        metavar="MINUTES",
        help=_(
            "run the promotion rules for all stores every MINUTES minutes (default 10; 0 = "
            "only on request)"
        ),
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def seed_demo(engine: Engine, *, out=sys.stdout) -> bool:
    """Generate the demo region into an empty central database and set demo passwords."""
    from central.auth import hash_password
    from core.demo import DEFAULT_SEED, DEMO_PASSWORD, generate, shanghai_today
    from core.models import Region, User

    with Session(engine) as s:
        seeded = not s.scalar(select(func.count()).select_from(Region))
    if seeded:
        print(_("Generating the demo region (this takes a little while)…"), file=out, flush=True)
        generate(engine, scale=1, seed=DEFAULT_SEED, today=shanghai_today())
    with Session(engine) as s, s.begin():
        users = s.scalars(select(User).where(User.password_hash.is_(None))).all()
        # One salted scrypt per account (no shared salt); scrypt releases the GIL.
        with ThreadPoolExecutor(max_workers=4) as pool:
            hashes = list(pool.map(lambda _u: hash_password(DEMO_PASSWORD), users))
        for u, h in zip(users, hashes, strict=True):
            u.password_hash = h
    return seeded


def print_sign_in(engine: Engine, url: str, *, out=sys.stdout) -> None:
    from core.demo import DEMO_PASSWORD
    from core.models import User

    with Session(engine) as s:
        names = s.scalars(select(User.username).order_by(User.id)).all()
    sups = [n for n in names if n.startswith("sup")]
    mgrs = [n for n in names if n.startswith("mgr")]
    print(_("Demo accounts (password: {pw}):").format(pw=DEMO_PASSWORD), file=out)
    print(
        "  admin; " + ", ".join(sups) + "; " + ", ".join(mgrs[:3]) + f" … ({len(mgrs)})", file=out
    )
    print(_("Sign in from the app with server {url}, or headless:").format(url=url), file=out)
    print(
        f"  echo {DEMO_PASSWORD} | storedesk sync --server {url} --user sup_sh --password-stdin",
        file=out,
    )
    print(_("API documentation: {url}/docs").format(url=url), file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    set_language(None)
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536:
        build_parser().error(f"port out of range: {args.port}")
    if not 0 <= args.generate_every <= 24 * 60:
        build_parser().error(f"--generate-every must be 0…1440 minutes: {args.generate_every}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import uvicorn

    from central.app import create_app
    from central.db import init_central_schema, make_central_engine

    url = args.db or default_db_path()
    try:
        engine = make_central_engine(url)
        init_central_schema(engine)
    except Exception as e:  # bad URL, unreachable server, unreadable file
        print(f"storedesk-central: error: cannot open the database: {e}", file=sys.stderr)
        return 1
    if args.demo:
        seed_demo(engine)
    every = dt.timedelta(minutes=args.generate_every) if args.generate_every else None
    app = create_app(engine, init_schema=False, generate_every=every)
    base = f"http://{args.host if args.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{args.port}"
    if args.demo:
        print_sign_in(engine, base)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
