"""The admin's commands on the server, run as an admin runs them (a process, its output, its exit
code): ``hotline account``, ``hotline demo``, ``hotline preflight``, the seed's guard, and
production's first start, which prints a one-time setup token instead of any default password."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from accounts.store import Accounts
from hotline.db import make_engine
from tests.support.browser import free_port

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
STRONG_AMI = "Ami-secret-for-tests-0123456789"


def hotline(var: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HOTLINE_VAR_DIR": str(var), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "launch.cli", *args], input=stdin, capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=90)


def accounts_in(var: Path) -> Accounts:
    return Accounts(make_engine(f"sqlite:///{var / 'hotline.db'}"))


def test_create_list_reset_disable_from_the_command_line(tmp_path: Path) -> None:
    made = hotline(tmp_path, "account", "create", "op3001", "--role", "operator", "--name", "孙丽",
                   "--job-number", "3001")
    assert made.returncode == 0, made.stderr
    temporary = re.search(r"临时密码（只显示这一次，首次登录须修改）：(\S+)", made.stdout).group(1)
    who = accounts_in(tmp_path).authenticate("op3001", temporary)
    assert who is not None and who.must_change_password and who.job_number == "3001"
    listed = hotline(tmp_path, "account", "list").stdout
    assert "op3001" in listed and "孙丽" in listed and "待改密" in listed
    chosen = hotline(tmp_path, "account", "reset-password", "op3001", "--password-stdin", stdin="Sun-li-own-2026\n")
    assert chosen.returncode == 0 and "临时密码" not in chosen.stdout
    assert not accounts_in(tmp_path).authenticate("op3001", "Sun-li-own-2026").must_change_password
    assert hotline(tmp_path, "account", "disable", "op3001").returncode == 0
    assert accounts_in(tmp_path).authenticate("op3001", "Sun-li-own-2026") is None
    refused = hotline(tmp_path, "account", "create", "op3002", "--role", "operator", "--name", "周强")
    assert refused.returncode == 2 and "话务员必须有工号" in refused.stderr
    weak = hotline(tmp_path, "account", "create", "lead9", "--role", "lead", "--password-stdin", stdin="12345678\n")
    assert weak.returncode == 2 and "至少 10 位" in weak.stderr
    events = accounts_in(tmp_path).audit.list(target="op3001")[1]
    assert {e["action"] for e in events} >= {"account_create", "password_reset", "account_disable"}
    assert all(e["actor"].startswith("cli:") for e in events)


def test_production_refuses_each_unsafe_setting_and_says_what_to_do(tmp_path: Path) -> None:
    accounts = accounts_in(tmp_path)
    from accounts import db

    db.migrate(accounts.engine)
    accounts.ensure_demo()
    env = {"HOTLINE_MODE": "production", "HOTLINE_WEB_HOST": "0.0.0.0", "HOTLINE_AMI_SECRET": "hotline",
           "HOTLINE_INTAKE_BRIDGE_KEYS": '{"wechat": "short"}', "HOTLINE_SMTP_HOST": "mail.example",
           "HOTLINE_SMTP_PASSWORD": "pw", "HOTLINE_ALLOWED_HOSTS": ""}
    check = hotline(tmp_path, "preflight", **env)
    assert check.returncode == 2
    for says in ("演示账号仍然存在", "hotline demo off", "AMI 密码过弱", "没有 TLS", "HOTLINE_ALLOWED_HOSTS",
                 "网络来件接口密钥过短", "STARTTLS"):
        assert says in check.stdout, (says, check.stdout)
    web = hotline(tmp_path, "web", **env)
    assert web.returncode == 2 and "生产模式拒绝启动" in web.stderr and "演示账号仍然存在" in web.stderr
    assert hotline(tmp_path, "demo", "off").stdout.startswith("已删除演示账号")
    assert "演示账号仍然存在" not in hotline(tmp_path, "preflight", **env).stdout
    # demo tickets, a line back on its old derived SIP password, a missing certificate, an insecure cookie
    assert hotline(tmp_path, "seed", "--tickets", "3").returncode == 0
    (tmp_path / "secrets" / "sip").mkdir(parents=True, exist_ok=True)
    (tmp_path / "secrets" / "sip" / "8001").write_text("s8001\n")
    more = hotline(tmp_path, "preflight", **env, HOTLINE_TLS_CERTFILE=str(tmp_path / "nope.pem"),
                   HOTLINE_TLS_KEYFILE=str(tmp_path / "nope.key"), HOTLINE_COOKIE_SECURE="false").stdout
    for says in ("张演示工单", "坐席 8001 仍在使用旧的默认 SIP 密码", "hotline sip rotate 8001", "TLS 文件不存在",
                 "HOTLINE_COOKIE_SECURE=false"):
        assert says in more, (says, more)


def test_the_seed_never_writes_demo_data_over_real_tickets_or_in_production(tmp_path: Path) -> None:
    refused = hotline(tmp_path, "seed", "--tickets", "3", HOTLINE_MODE="production")
    assert refused.returncode == 2 and "生产模式不写入演示数据" in refused.stderr
    from ticketing import db as ticketing_db
    from ticketing.context import StoreContext
    from ticketing.schemas import SystemActor
    from ticketing.store import Store

    engine = make_engine(f"sqlite:///{tmp_path / 'hotline.db'}")
    ticketing_db.migrate(engine)
    Store.on(StoreContext(engine)).tickets.create(
        {"category": "咨询", "title": "真实来电", "caller_number": "13953012345"}, SystemActor("op", "operator"))
    again = hotline(tmp_path, "seed", "--tickets", "3")
    assert again.returncode == 2 and "已有 1 张真实工单" in again.stderr
    assert hotline(tmp_path, "seed", "--tickets", "3", "--force").returncode == 0


def test_production_starts_with_no_default_password_and_a_one_time_setup_token(tmp_path: Path) -> None:
    from hotline.asterisk.secrets import ensure_passwords
    from hotline.settings import Settings

    ensure_passwords(Settings(var_dir=tmp_path))
    port = free_port()
    env = {**os.environ, "HOTLINE_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "HOTLINE_MODE": "production",
           "HOTLINE_AMI_SECRET": STRONG_AMI, "HOTLINE_SERVICES": "", "HOTLINE_WEB_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "launch.cli", "web"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        token = None
        while token is None:
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
            if lines[-1].startswith("    "):
                token = lines[-1].strip()
        lines.append(proc.stdout.readline())  # where to type it
        assert "尚无管理员账号" in "".join(lines) and "/setup" in "".join(lines)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/setup", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        demo_login = {"username": "admin", "password": "demoadmin"}
        assert httpx.post(f"{url}/api/auth/login", json=demo_login).status_code == 401
        body = {"token": token, "username": "chief", "display_name": "主任", "password": "Centre-head-2026"}
        assert httpx.post(f"{url}/api/auth/setup", json=body).status_code == 200
        signed = httpx.post(f"{url}/api/auth/login", json={"username": "chief", "password": "Centre-head-2026"})
        assert signed.status_code == 200 and signed.json()["user"]["role"] == "admin"
        assert httpx.get(f"{url}/setup").status_code == 404  # used: closed
    finally:
        proc.terminate()
        proc.wait(15)
