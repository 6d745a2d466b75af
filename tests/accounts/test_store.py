"""Accounts: sign-in, the demo accounts, who someone is; the table's own migrations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from accounts import db
from accounts.store import DEMO_ACCOUNTS, Accounts
from hotline.db import make_engine
from hotline.identity import Role


def test_sign_in_with_the_right_password_only_and_never_for_a_disabled_account(engine) -> None:
    accounts = Accounts(engine)
    accounts.upsert("op2001", "secret-2001", "operator", "孙丽", job_number="2001", centre="菏泽中心")
    who = accounts.authenticate("op2001", "secret-2001")
    assert who is not None and who.role is Role.OPERATOR and who.job_number == "2001" and who.centre == "菏泽中心"
    assert accounts.authenticate("op2001", "wrong") is None
    assert accounts.authenticate("nobody", "secret-2001") is None
    with engine.begin() as c:
        c.execute(sa.text("UPDATE account SET active = false WHERE username = 'op2001'"))
    assert accounts.authenticate("op2001", "secret-2001") is None
    with pytest.raises(ValueError):
        accounts.upsert("x", "y", "superuser")


def test_demo_accounts_are_made_once_and_sign_in_with_the_readme_passwords(engine) -> None:
    accounts = Accounts(engine)
    assert accounts.ensure_demo() == len(DEMO_ACCOUNTS)
    assert accounts.ensure_demo() == 0
    for spec in DEMO_ACCOUNTS:
        who = accounts.authenticate(str(spec["username"]), str(spec["password"]))
        assert who is not None and who.role == spec["role"]


def test_who_someone_is_by_job_number(engine) -> None:
    accounts = Accounts(engine)
    accounts.upsert("op2001", "pw", "operator", job_number="2001", centre="菏泽中心")
    accounts.upsert("lead", "pw", "lead")
    assert accounts.centre_of_job_number("2001") == "菏泽中心"
    assert accounts.centre_of_job_number("9999") == "" and accounts.centre_of_job_number("") == ""
    assert accounts.usernames_by_job_number() == {"2001": "op2001"}
    assert accounts.get("lead").role == "lead" and accounts.get("nobody") is None


def test_a_database_whose_account_table_came_from_the_web_apps_old_migration_is_adopted(tmp_path) -> None:
    # before accounts/ had its own history, agent_ui's ui0001 made the table: it is taken as it is
    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE account (id INTEGER PRIMARY KEY, username VARCHAR(64) NOT NULL UNIQUE, "
                          "display_name VARCHAR(64) NOT NULL, role VARCHAR(16) NOT NULL, job_number VARCHAR(16) "
                          "NOT NULL DEFAULT '', department_id INTEGER, centre VARCHAR(32) NOT NULL DEFAULT '', "
                          "password_hash VARCHAR(255) NOT NULL, active BOOLEAN NOT NULL DEFAULT 1, "
                          "created_at DATETIME NOT NULL)"))
        c.execute(sa.text("INSERT INTO account (username, display_name, role, password_hash, created_at) "
                          "VALUES ('kept', 'kept', 'qa', 'x', '2026-01-01')"))
    db.migrate(eng)
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT username FROM account")).scalars().all() == ["kept"]
        assert c.execute(sa.text(f"SELECT version_num FROM {db.VERSION_TABLE}")).scalar() == "acc0003"
        assert c.execute(sa.text("SELECT dept_lead FROM account")).scalar() in (0, False)  # added, off


def test_the_migrations_build_exactly_the_model(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import accounts.models  # noqa: F401

    def ours(obj, name, type_, _reflected, _compare_to) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in db.TABLES

    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c, opts={"include_object": ours}), SQLModel.metadata) == []


def test_demo_accounts_are_marked_and_turning_the_demo_off_removes_them_and_their_sessions(accounts) -> None:
    accounts.ensure_demo()
    accounts.upsert("op2001", "Real-pass-2001", "operator", job_number="2001")
    assert accounts.demo_present() == sorted(str(a["username"]) for a in DEMO_ACCOUNTS)
    token = accounts.sign_in("lead", "demolead").token
    assert accounts.sessions.resolve(token) is not None
    gone = accounts.remove_demo("cli:root")
    assert sorted(gone) == sorted(str(a["username"]) for a in DEMO_ACCOUNTS)
    assert accounts.demo_present() == [] and accounts.get("op2001") is not None
    assert accounts.sessions.resolve(token) is None  # the lead's session ended with the account
    assert accounts.authenticate("admin", "demoadmin") is None
    _total, events = accounts.audit.list(action="demo_off")
    assert events[0]["actor"] == "cli:root" and "admin" in events[0]["detail"]


def test_a_sign_in_is_audited_and_counted_and_opens_a_session(accounts) -> None:
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    assert accounts.sign_in("op2001", "wrong", client="10.0.0.9").principal is None
    ok = accounts.sign_in("op2001", "Right-pass-2001", client="10.0.0.9", user_agent="Chromium")
    assert ok.principal is not None and ok.principal.job_number == "2001" and ok.token
    assert accounts.sessions.resolve(ok.token) == ok.principal
    _total, events = accounts.audit.list(target="op2001")
    assert [(e["action"], e["client"]) for e in events] == [("login", "10.0.0.9"), ("login_failed", "10.0.0.9")]
    assert accounts.get("op2001").last_login_at is not None
