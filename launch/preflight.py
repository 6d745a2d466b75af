"""Production mode's refusals, and its first administrator.

``HOTLINE_MODE=production`` is the one switch: every serving command (``hotline up``, ``web``,
``cti``, ``agi``) first asks :func:`problems`, and refuses to start, saying each problem in one
Chinese sentence with what to do, while any remains: demo accounts or demo data, default or weak
telephony and bridge secrets, a console reachable beyond this machine without TLS or without a
Host allow-list, mail passwords sent in the clear. With no admin yet, a one-time setup token is
printed instead of any default password (:func:`first_admin`).
"""

from __future__ import annotations

import ipaddress
import sys
from urllib.parse import urlsplit

import sqlalchemy as sa

from accounts.audit import AuditLog
from accounts.setup import SetupToken
from accounts.store import Accounts
from hotline.asterisk.secrets import weak_telephony_secrets
from hotline.settings import Settings
from ticketing.seed import ticket_origins

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def telephony_problems(settings: Settings) -> list[str]:
    """Default or weak secrets between the app and Asterisk, and the seats' SIP passwords."""
    return weak_telephony_secrets(settings)


def problems(settings: Settings, accounts: Accounts, engine: sa.Engine) -> list[str]:
    """Why production mode may not start now; empty when it may (and always in demo mode)."""
    if settings.mode != "production":
        return []
    found = []
    demo = accounts.demo_present()
    if demo:
        found.append(f"演示账号仍然存在（{'、'.join(demo)}）：运行 hotline demo off 删除")
    origins = ticket_origins(engine)
    if origins["demo"]:
        found.append(f"数据库中有 {origins['demo']} 张演示工单：生产环境请使用新的数据库（HOTLINE_DATABASE_URL）")
    found += telephony_problems(settings)
    if not loopback(settings.web_host):
        if not settings.tls:
            found.append(f"控制台监听 {settings.web_host}（本机以外可访问）却没有 TLS：请设置 HOTLINE_TLS_CERTFILE 和 "
                         "HOTLINE_TLS_KEYFILE，或只监听 127.0.0.1 并由 HTTPS 反向代理转发")
        if not settings.allowed_hosts:
            found.append("控制台监听本机以外的地址时，须用 HOTLINE_ALLOWED_HOSTS 列出用户访问的域名或地址")
    for path in (settings.tls_certfile, settings.tls_keyfile):
        if path is not None and not path.is_file():
            found.append(f"TLS 文件不存在：{path}")
    if settings.tls_certfile is not None and settings.tls_keyfile is None:
        found.append("设置了 HOTLINE_TLS_CERTFILE 却没有 HOTLINE_TLS_KEYFILE")
    if settings.cookie_secure is False and (settings.tls or not loopback(settings.web_host)):
        found.append("HOTLINE_COOKIE_SECURE=false：登录凭据会经明文连接发送，请去掉该设置")
    weak_keys = [ch for ch, key in settings.intake_bridge_keys.items() if len(key.get_secret_value()) < 24]
    if weak_keys:
        found.append(f"网络来件接口密钥过短（{'、'.join(weak_keys)}）：每个密钥至少 24 位随机字符")
    if engine.dialect.name == "postgresql" and settings.cti_lease_margin_s < 1:  # any node may run `hotline cti`
        found.append(f"CTI 话务桥租约设置不安全：HOTLINE_CTI_LEASE_DEAD_S（{settings.cti_lease_dead_s}）须比 "
                     "HOTLINE_CTI_LEASE_CHECK_S 与 HOTLINE_CTI_LEASE_TIMEOUT_S 之和至少大 1 秒，"
                     "否则断网的主用话务桥尚未停止，备用话务桥就可能接管（同一 Asterisk 上两个话务桥）")
    found += bus_problems(settings)
    found += browser_phone_problems(settings)
    if settings.smtp_password.get_secret_value() and not settings.smtp_starttls and not loopback(settings.smtp_host):
        found.append("邮件服务器密码将以明文发送：请设置 HOTLINE_SMTP_STARTTLS=true")
    return found


def browser_phone_problems(settings: Settings) -> list[str]:
    """A browser phone off this machine needs a secure page and a secure SIP socket: on plain ws:// the
    seat's SIP digest could be replayed from the wire, and an HTTPS console may not open it at all."""
    if settings.mode != "production" or not settings.browser_phone_seats:
        return []
    off_box = not (loopback(settings.sip_host) and loopback(settings.web_host))
    if off_box and settings.browser_phone_url.startswith("ws://"):
        return [f"浏览器话机（坐席 {'、'.join(settings.browser_phone_seats)}）的 SIP 信令将经明文 ws:// 传输："
                "请设置 HOTLINE_TLS_CERTFILE/KEYFILE（交换机以 wss:// 提供），或由 HTTPS 反向代理转发并设置 "
                "HOTLINE_BROWSER_SIP_URL=wss://…；不用浏览器话机时设置 HOTLINE_BROWSER_SEATS= （空）"]
    return []


def refuse_unsafe(settings: Settings, accounts: Accounts, engine: sa.Engine) -> None:
    """Print every problem and exit 2 (and leave one audit line saying so)."""
    found = problems(settings, accounts, engine)
    if not found:
        return
    print("生产模式拒绝启动：", file=sys.stderr)
    for p in found:
        print(f"  - {p}", file=sys.stderr)
    AuditLog(engine).record("system", "config_refused", "", "；".join(found))
    raise SystemExit(2)


def first_admin(settings: Settings, accounts: Accounts) -> str | None:
    """Production with no active admin: a one-time setup token (printed by the caller), else None."""
    if settings.mode != "production" or accounts.admins_present():
        return None
    return SetupToken(settings.secrets_dir).issue()


def announce_setup(settings: Settings, token: str) -> None:
    scheme = "https" if settings.tls else "http"
    print("尚无管理员账号。一次性初始化令牌（1 小时内有效，只能使用一次）：", flush=True)
    print(f"    {token}", flush=True)
    print(f"请打开 {scheme}://{settings.web_host}:{settings.web_port}/setup 输入令牌并设置管理员，"
          "或运行 hotline account create <用户名> --role admin", flush=True)


def bus_problems(settings: Settings) -> list[str]:
    """A Redis bus carries every pop (callers' numbers, names, places): on another machine it needs a
    password, and TLS unless the network between the nodes is the centre's own (say so by rediss://)."""
    url = urlsplit(settings.bus_url.get_secret_value().strip())
    if url.scheme not in ("redis", "rediss") or loopback(url.hostname or "127.0.0.1"):
        return []
    found = []
    if not url.password:
        found.append(f"事件总线 Redis（{url.hostname}）没有密码：请在 HOTLINE_BUS_URL 中设置 "
                     "redis://:密码@主机:端口/0，并在 Redis 上配置 requirepass 或 ACL")
    if url.scheme == "redis":
        found.append(f"事件总线 Redis（{url.hostname}）不在本机却未加密：来电号码和姓名将明文传输，"
                     "请使用 rediss://（Redis TLS）")
    return found
