"""The ``hotline`` command: run, provision and exercise the whole system."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hotline.asterisk.errors import AsteriskError
from hotline.settings import get_settings
from launch import accounts_cli, model_cli, sip_cli, tickets_cli


def _asterisk(args: argparse.Namespace) -> int:
    from hotline.asterisk import install, process, render

    settings = get_settings()
    if args.action == "install":
        install.install(settings)
    elif args.action == "start":
        status = process.start(settings)
        print(f"Asterisk running, pid {status.pid}")
    elif args.action == "stop":
        process.stop(settings)
        print("Asterisk stopped; nothing mounted")
    elif args.action == "status":
        status = process.status(settings)
        print(f"running: {status.running}  pid: {status.pid}  mounts: {status.mounted or 'none'}")
        print(status.uptime)
        return 0 if status.running else 3
    elif args.action == "config":
        print(f"config written to {render.install_config(settings)}")
    elif args.action == "cli":
        if args.command:
            print(process.cli(settings, " ".join(args.command)), end="")
        else:
            return process.interactive_cli(settings)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from hotline.simulate.run import Plan, run

    plan = Plan(calls=args.calls, rate=args.rate, concurrency=args.concurrency, seats=args.seats,
                ring_delay=args.ring_delay, talk=args.talk, abandon_after=args.abandon_after, dtmf=args.dtmf,
                dtmf_mode=args.dtmf_mode, language=args.language, seed=args.seed)
    outcome = run(get_settings(), plan)
    counts = "" if outcome.answered is None else f"（接通 {outcome.answered}，放弃 {outcome.abandoned}）"
    print(f"{outcome.calls} 通呼叫完成{counts}，用时 {outcome.seconds:.1f} 秒，SIPp 退出码 {outcome.exit_code}")
    return outcome.exit_code


def _up(_args: argparse.Namespace) -> int:
    from launch.up import up

    up(get_settings())
    return 0


def _web(_args: argparse.Namespace) -> int:
    import uvicorn

    from launch.compose import server_config

    uvicorn.Server(server_config(get_settings())).run()
    return 0


def _serve(main: Any) -> int:
    """Run a service's coroutine on uvloop when it is there (as uvicorn does for the web app)."""
    import asyncio
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
    return 0


def _cti(_args: argparse.Namespace) -> int:
    from launch.compose import serve

    return _serve(serve(get_settings(), {"cti"}))


def _agi(_args: argparse.Namespace) -> int:
    from launch.compose import serve

    return _serve(serve(get_settings(), {"agi"}))


def _listen(_args: argparse.Namespace) -> int:
    from launch.compose import serve

    return _serve(serve(get_settings(), {"listen"}))


def _transcribe(args: argparse.Namespace) -> int:
    from launch.compose import transcribe

    counts = transcribe(get_settings(), workers=args.workers, drain=args.drain)
    print(counts)
    return 0


def _backup(args: argparse.Namespace) -> int:
    from launch.backup import backup

    return _saved("backup", "备份完成", lambda: backup(get_settings(), Path(args.to) if args.to else None))


def _restore(args: argparse.Namespace) -> int:
    from launch.backup import restore

    return _saved("restore", "恢复完成", lambda: restore(get_settings(), Path(args.folder), force=args.force))


def _saved(command: str, done_says: str, run: Any) -> int:
    """A backup or a restore, said: what it holds, each problem; 2 refused, 1 done with problems."""
    from launch.backup import BackupError

    try:
        done = run()
    except BackupError as e:
        print(f"hotline {command}: {e}", file=sys.stderr)
        return 2
    counts = "，".join(f"{t} {n}" for t, n in done.counts.items())
    print(f"{done_says}：{done.folder}（{done.files} 个文件；{counts}）")
    for p in done.problems:
        print(f"- {p}", file=sys.stderr)
    return 1 if done.problems else 0


def _calls_check(args: argparse.Namespace) -> int:
    """The call log against Asterisk's own records now, as the CTI node does every few minutes."""
    import json
    from dataclasses import asdict

    from hotline.outbox import Outbox
    from launch.compose import build
    from launch.filing import CallFiler
    from launch.witness import CallWitness

    settings = get_settings()
    node = build(settings, set())
    try:
        filer = CallFiler(node.store.calls, node.engine, settings, Outbox(settings.call_outbox_dir))
        witness = CallWitness(settings, node.store.calls, filer)
        witness.read()
        rebuilt = witness.settle() if args.repair else []
        report = witness.check()
    finally:
        node.engine.dispose()
    if args.json:
        print(json.dumps({**asdict(report), "rebuilt_now": rebuilt}, ensure_ascii=False))
    else:
        print(f"Asterisk 记录 {report.checked} 通（{report.source}）；补录 {len(rebuilt)} 通；"
              f"通话记录缺少 {len(report.missing)}，Asterisk 无记录 {len(report.unknown_to_asterisk)}，"
              f"接通与否不一致 {len(report.outcome_differs)}，记为中断但已正常结束 {len(report.lost_but_finished)}")
    return 1 if report.differences or not report.readable else 0


def _seed(args: argparse.Namespace) -> int:
    from launch.compose import SeedRefused, seed

    try:
        print(seed(get_settings(), args.tickets, force=args.force))
    except SeedRefused as e:
        print(f"hotline seed: {e}", file=sys.stderr)
        return 2
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline", description="政务服务热线 call-center platform")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("up", help="start every service in the foreground (Ctrl-C stops all)").set_defaults(fn=_up)
    sub.add_parser("web", help="the web app alone").set_defaults(fn=_web)

    a = sub.add_parser("asterisk", help="the project's Asterisk 22")
    a.add_argument("action", choices=["install", "start", "stop", "status", "cli", "config"])
    a.add_argument("command", nargs="*", help="for cli: one command to run, e.g. queue show hotline")
    a.set_defaults(fn=_asterisk)

    s = sub.add_parser("simulate", help="real SIP calls: SIPp citizens and auto-answering seat bots")
    s.add_argument("--calls", type=int, default=5)
    s.add_argument("--rate", type=float, default=1.0, help="new calls per second")
    s.add_argument("--concurrency", type=int, default=10)
    s.add_argument("--seats", type=int, default=2, help="seat bots (0: real operators answer)")
    s.add_argument("--ring-delay", type=float, default=2.0, help="seconds a bot lets its phone ring")
    s.add_argument("--talk", type=float, default=15.0, help="seconds a bot talks")
    s.add_argument("--abandon-after", type=float, default=None, help="citizens hang up after N s")
    s.add_argument("--dtmf", default=None, help="survey key the citizen presses (1/2/3)")
    s.add_argument("--dtmf-mode", choices=["rfc4733", "info"], default="rfc4733")
    s.add_argument("--language", choices=["cmn", "ko"], default="cmn")
    s.add_argument("--seed", type=int, default=None)
    s.set_defaults(fn=_simulate)

    sub.add_parser("cti", help="the CTI bridge alone (AMI → state → bus → call log, recordings catalog)"
                   ).set_defaults(fn=_cti)
    sub.add_parser("agi", help="the FastAGI server alone (lookup, survey, status query)").set_defaults(fn=_agi)
    sub.add_parser("listen", help="a listening node alone: live transcript of calls (AudioSocket + Vosk)"
                   ).set_defaults(fn=_listen)
    t = sub.add_parser("transcribe", help="transcription workers (Vosk) over the recordings backlog")
    t.add_argument("-w", "--workers", type=int, default=None, help="worker processes (default: the setting)")
    t.add_argument("--drain", action="store_true", help="stop when the backlog is empty")
    t.set_defaults(fn=_transcribe)

    d = sub.add_parser("seed", help="demo data: departments, knowledge base, historical tickets")
    d.add_argument("--tickets", type=int, default=300)
    d.add_argument("--force", action="store_true", help="also into a production or real database")
    d.set_defaults(fn=_seed)
    b = sub.add_parser("backup", help="online backup: database snapshot, the recordings and attachments it "
                                      "refers to (checksums verified), secrets")
    b.add_argument("--to", help="an empty folder (default var/backups/hotline-<time>)")
    b.set_defaults(fn=_backup)
    r = sub.add_parser("restore", help="put a backup back into the configured var directory and database "
                                       "(stop the services first)")
    r.add_argument("folder")
    r.add_argument("--force", action="store_true", help="even over a database that holds tickets")
    r.set_defaults(fn=_restore)
    c = sub.add_parser("calls", help="the call log against Asterisk's own records (CEL) over the last 24 h")
    c.add_argument("action", choices=["check"])
    c.add_argument("--repair", action="store_true", help="rebuild the calls the call log lacks (as the CTI "
                                                          "node does by itself)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=_calls_check)
    accounts_cli.register(sub)
    sip_cli.register(sub)
    model_cli.register(sub)
    tickets_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except AsteriskError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
