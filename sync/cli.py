"""``storedesk sync --server URL --user U [--password-stdin]``: one headless sync.

Prints a text progress bar on stderr and a one-line summary on stdout. Errors are one
line; exit status 2 for bad arguments, 1 when the sync failed, 0 on success. The password
comes from standard input (``--password-stdin``, first line) or an interactive prompt;
it is never accepted on the command line, where other users could read it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import TextIO

from core.i18n import _
from core.tasks import Cancelled, TaskState


class _Bar:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = ""

    def __call__(self, fraction: float, message: str) -> None:
        width = 30
        filled = int(fraction * width)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message}"
        if line != self.last:
            self.out.write(line[:120].ljust(len(self.last)))
            self.out.flush()
            self.last = line


def cli_sync(args: argparse.Namespace) -> int:
    from core.cache import CacheError, open_cache
    from sync.engine import PasswordAuth, SyncEngine, SyncError
    from sync.protocol import MAX_PAGE_ROWS

    server = str(args.server).strip()
    if not server.startswith(("http://", "https://")):
        sys.stderr.write(
            _("storedesk sync: error: --server must be an http:// or https:// URL") + "\n"
        )
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass(_("Password for {user}: ").format(user=args.user))
        except (EOFError, KeyboardInterrupt):
            password = ""
    if not password:
        sys.stderr.write(_("storedesk sync: error: no password given") + "\n")
        return 2
    try:
        cache = open_cache(getattr(args, "cache", None))
    except CacheError as e:
        sys.stderr.write(f"storedesk sync: {e}\n")
        return 1
    # Page sizes (rows per snapshot page, changes per pull page); tests use small pages.
    page = int(os.environ.get("STOREDESK_SYNC_PAGE_ROWS", str(MAX_PAGE_ROWS)))
    pull_page = int(os.environ.get("STOREDESK_SYNC_PULL_ROWS", "2000"))
    bar = _Bar(sys.stderr)

    async def run():
        engine = SyncEngine(
            cache,
            server,
            token_provider=PasswordAuth(args.user, password),
            snapshot_limit=page,
            pull_limit=pull_page,
        )
        try:
            return await engine.sync_once(TaskState(on_progress=bar))
        finally:
            await engine.aclose()

    try:
        result = asyncio.run(run())
    except (SyncError, Cancelled) as e:
        sys.stderr.write("\n" + _("Sync failed: {error}").format(error=e or _("cancelled")) + "\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(
            "\n" + _("Sync interrupted; it resumes where it stopped next time.") + "\n"
        )
        return 1
    finally:
        cache.close()
    sys.stderr.write("\n")
    line = _(
        "Synchronised: {pushed} edits sent, {rejected} refused, {conflicts} conflicts, "
        "{pulled} changes received"
    ).format(
        pushed=result.pushed,
        rejected=result.rejected,
        conflicts=result.conflicts,
        pulled=result.pulled,
    )
    if result.snapshot:
        line += _("; {rows} rows downloaded ({rate} rows/s)").format(
            rows=f"{result.snapshot_rows:,}", rate=f"{result.rows_per_second:,.0f}"
        )
    if result.verified is True:
        line += _("; checksums match")
    print(line)
    for m in result.messages:
        print("  - " + m)
    return 0
