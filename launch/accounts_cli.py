"""``hotline account`` (create, change, disable, enable, reset a password, end sessions, list),
``hotline demo off|status`` and ``hotline preflight``: the admin's commands on the server itself.

Passwords are never arguments (they would sit in the shell history and in ``ps``): a new account
or a reset gets a temporary one, printed once; ``--password-stdin`` reads a chosen one (checked
against the policy) from standard input.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from hotline.settings import get_settings


def _parts():
    from launch.compose import build as build_node

    settings = get_settings()
    node = build_node(settings, set())  # migrated, with the settings' session limits and throttle
    return settings, node, node.accounts


def cli_actor():
    from accounts.admin import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(f"cli:{who}", "localhost")


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("密码：")
        if getpass.getpass("再输入一次：") != first:
            raise ValueError("两次输入的密码不一致")
        return first
    return sys.stdin.readline().rstrip("\n")


def _account(args: argparse.Namespace) -> int:
    from accounts.admin import AccountAdmin
    from accounts.store import AccountError

    _settings, node, accounts = _parts()
    admin = AccountAdmin(accounts)
    actor = cli_actor()
    try:
        if args.action == "list":
            rows = admin.list()
            print(f"{'用户名':<14}{'姓名':<12}{'角色':<8}{'工号':<8}{'单位':<6}{'中心':<10}{'状态':<8}在线")
            for a in rows:
                state = ("启用" if a["active"] else "停用") + ("·待改密" if a["must_change_password"] else "") + \
                        ("·演示" if a["demo"] else "")
                print(f"{a['username']:<16}{a['display_name']:<12}{a['role_label']:<8}{a['job_number']:<8}"
                      f"{a['department_id'] or '':<6}{a['centre'] or '全部':<10}{state:<10}{a['open_sessions']}")
            return 0
        if args.action == "create":
            password = _password_from_stdin() if args.password_stdin else None
            made, temporary = admin.create(actor, args.username, args.role, display_name=args.name or "",
                                           job_number=args.job_number or "", department_id=args.department,
                                           centre=args.centre or "", dept_lead=args.dept_lead, password=password)
            print(f"已创建账号 {made['username']}（{made['role_label']}）")
            if temporary:
                print(f"临时密码（只显示这一次，首次登录须修改）：{temporary}")
            return 0
        if args.action == "set":
            changes = {k: v for k, v in (("role", args.role), ("display_name", args.name),
                                         ("job_number", args.job_number), ("centre", args.centre)) if v is not None}
            if args.department is not None:
                changes["department_id"] = args.department or None
            if args.dept_lead is not None:
                changes["dept_lead"] = args.dept_lead
            admin.update(actor, args.username, **changes)
            print(f"已修改账号 {args.username}")
            return 0
        if args.action in ("disable", "enable"):
            admin.set_active(actor, args.username, args.action == "enable")
            print(f"账号 {args.username} 已{'启用' if args.action == 'enable' else '停用，登录已失效'}")
            return 0
        if args.action == "reset-password":
            password = _password_from_stdin() if args.password_stdin else None
            temporary = admin.reset_password(actor, args.username, password)
            print(f"账号 {args.username} 的密码已重置，登录已失效")
            if temporary:
                print(f"临时密码（只显示这一次，首次登录须修改）：{temporary}")
            return 0
        if args.action == "logout":
            print(f"{args.username} 的 {admin.revoke_sessions(actor, args.username)} 个会话已结束")
            return 0
        if args.action == "sessions":
            for info in accounts.sessions.list(args.username, open_only=False, limit=50):
                state = f"已结束（{info.revoked_reason}）" if info.revoked_at else "有效"
                print(f"{info.created_at:%Y-%m-%d %H:%M}  最近 {info.last_seen_at:%m-%d %H:%M}  "
                      f"{info.client:<16}{state}")
            return 0
    except (AccountError, ValueError, LookupError) as e:
        print(f"hotline account: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    finally:
        node.engine.dispose()
    return 2


def _demo(args: argparse.Namespace) -> int:
    _settings, node, accounts = _parts()
    try:
        if args.action == "off":
            gone = accounts.remove_demo(cli_actor().username)
            print(f"已删除演示账号：{'、'.join(gone)}" if gone else "没有演示账号")
        else:
            from ticketing.seed import ticket_origins

            present = accounts.demo_present()
            print(f"演示账号：{'、'.join(present) or '无'}；演示工单：{ticket_origins(node.engine)['demo']} 张")
        return 0
    finally:
        node.engine.dispose()


def _preflight(_args: argparse.Namespace) -> int:
    from launch.preflight import problems

    settings, node, accounts = _parts()
    try:
        found = problems(settings, accounts, node.engine)
    finally:
        node.engine.dispose()
    if settings.mode != "production":
        print("演示模式：不做生产检查（HOTLINE_MODE=production 时检查）")
        return 0
    for p in found:
        print(f"  - {p}")
    print("可以以生产模式启动" if not found else "生产模式将拒绝启动")
    return 2 if found else 0


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("account",
                       help="账号：list / create / set / disable / enable / reset-password / logout / sessions")
    a.add_argument("action", choices=["list", "create", "set", "disable", "enable", "reset-password", "logout",
                                      "sessions"])
    a.add_argument("username", nargs="?", default="")
    a.add_argument("--role", choices=["operator", "lead", "qa", "department", "admin"])
    a.add_argument("--name", help="姓名")
    a.add_argument("--job-number", help="工号（话务员必填）")
    a.add_argument("--department", type=int, help="所属单位编号（承办单位账号；set 时 0 表示无）")
    a.add_argument("--centre", help="中心（空：全部中心）")
    a.add_argument("--dept-lead", action=argparse.BooleanOptionalAction, default=None, help="单位负责人")
    a.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（否则生成临时密码）")
    a.set_defaults(fn=_checked_account)

    d = sub.add_parser("demo", help="演示模式：off 删除演示账号；status 查看")
    d.add_argument("action", choices=["off", "status"])
    d.set_defaults(fn=_demo)
    sub.add_parser("preflight", help="生产模式检查：列出会拒绝启动的配置").set_defaults(fn=_preflight)


def _checked_account(args: argparse.Namespace) -> int:
    if args.action not in ("list",) and not args.username:
        print("hotline account: 请给出用户名", file=sys.stderr)
        return 2
    if args.action == "create" and not args.role:
        print("hotline account: 新建账号须用 --role 指定角色", file=sys.stderr)
        return 2
    return _account(args)
