"""``hotline tickets import FILE``: the centre's finished tickets from its previous system.

FILE holds JSON lines, one ticket each (the fields of ``ticketing.importer.TicketImport``; ``-`` is
standard input). ``--dry-run`` checks every line and writes nothing: run it first, fix what it
reports, then import. A re-run skips the numbers already imported, so an interrupted import is
simply started again. The import is an audit event (审计日志) with its counts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from hotline.settings import get_settings


def _lines(path: str) -> Iterator[str]:
    if path == "-":
        yield from (line.strip() or "{}" for line in sys.stdin)
        return
    with Path(path).open(encoding="utf-8-sig") as f:
        yield from (line.strip() or "{}" for line in f)  # an empty line is reported, not skipped silently


def _import(args: argparse.Namespace) -> int:
    from hotline.identity import Principal, Role
    from launch.accounts_cli import cli_actor
    from launch.compose import build as build_node

    if args.file != "-" and not Path(args.file).is_file():
        print(f"hotline tickets import: 找不到文件 {args.file}", file=sys.stderr)
        return 2
    node = build_node(get_settings(), set())
    actor = cli_actor()
    who = Principal(actor.username, Role.ADMIN)

    def progress(r) -> None:
        print(f"\r已读 {r.read} 行：导入 {r.imported}，已存在 {r.already_present}，有误 {r.rejected}",
              end="", file=sys.stderr, flush=True)

    try:
        report = node.store.imports.tickets(_lines(args.file), who, dry_run=args.dry_run, progress=progress)
    finally:
        print(file=sys.stderr)
    for line, reason in report.errors:
        print(f"第 {line} 行：{reason}")
    verb = "可导入" if args.dry_run else "已导入"
    print(f"{verb} {report.imported} 张，已存在 {report.already_present} 张，有误 {report.rejected} 行"
          + ("（只列出前 100 行）" if report.rejected > len(report.errors) else ""))
    if not args.dry_run:
        node.accounts.audit.record(actor.username, "ticket_import", Path(args.file).name[:64],
                                   f"导入 {report.imported}，已存在 {report.already_present}，有误 {report.rejected}",
                                   "localhost")
    node.engine.dispose()
    return 1 if report.rejected else 0


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tickets", help="工单：import（从原系统导入已办结的历史工单，JSON lines）")
    t.add_argument("action", choices=["import"])
    t.add_argument("file", help="JSON lines, one ticket per line; - for standard input")
    t.add_argument("--dry-run", action="store_true", help="check every line, write nothing")
    t.set_defaults(fn=_import)
