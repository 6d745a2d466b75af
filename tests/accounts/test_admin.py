"""Account administration: temporary passwords, the rules of each role, the last admin, and an
audit line for every change with who made it."""

from __future__ import annotations

import pytest

from accounts.admin import AccountAdmin, Actor
from accounts.store import AccountError

ADMIN = Actor("admin", "10.0.0.1")


@pytest.fixture
def admin(accounts) -> AccountAdmin:
    accounts.upsert("admin", "Admin-pass-2026", "admin")
    return AccountAdmin(accounts)


def test_a_new_account_gets_a_temporary_password_to_change_at_first_sign_in(admin, accounts) -> None:
    made, temporary = admin.create(ADMIN, "Sun.Li", "operator", display_name="孙丽", job_number="2001")
    assert made["username"] == "sun.li" and made["must_change_password"] and temporary
    signed = accounts.sign_in("sun.li", temporary)
    assert signed.principal.must_change_password
    accounts.change_password(signed.token, temporary, "Sunli-own-2026!")
    assert accounts.sessions.resolve(signed.token).must_change_password is False  # the session goes on
    assert accounts.authenticate("sun.li", "Sunli-own-2026!") is not None
    _n, events = accounts.audit.list(target="sun.li")
    assert [e["action"] for e in events][-1] == "account_create" and events[-1]["actor"] == "admin"
    assert "password_change" in [e["action"] for e in events]


def test_changing_ones_password_needs_the_old_one_and_the_policy_and_ends_the_other_sessions(admin, accounts) -> None:
    accounts.upsert("qa", "Qa-pass-2026x", "qa")
    here, there = accounts.sign_in("qa", "Qa-pass-2026x").token, accounts.sign_in("qa", "Qa-pass-2026x").token
    with pytest.raises(AccountError, match="原密码不正确"):
        accounts.change_password(here, "wrong", "Qa-new-pass-2026")
    with pytest.raises(AccountError, match="至少 10 位"):
        accounts.change_password(here, "Qa-pass-2026x", "short1A!")
    accounts.change_password(here, "Qa-pass-2026x", "Qa-new-pass-2026")
    assert accounts.sessions.resolve(here) is not None and accounts.sessions.resolve(there) is None


@pytest.mark.parametrize(("role", "fields", "says"), [
    ("operator", {}, "话务员必须有工号"),
    ("department", {}, "必须选择所属单位"),
    ("lead", {"department_id": 3}, "只有承办单位账号"),
    ("qa", {"dept_lead": True}, "只有承办单位账号"),
    ("superuser", {}, "角色只能是"),
    ("operator", {"job_number": "12a"}, "工号只能是数字"),
])
def test_each_role_gets_what_it_needs_and_nothing_else(admin, role, fields, says) -> None:
    with pytest.raises(AccountError, match=says):
        admin.create(ADMIN, "someone", role, display_name="某人", **fields)


def test_user_names_and_job_numbers_are_unique_and_clean(admin) -> None:
    admin.create(ADMIN, "op2001", "operator", display_name="孙丽", job_number="2001")
    with pytest.raises(AccountError, match="已存在"):
        admin.create(ADMIN, "op2001", "qa", display_name="又一个")
    with pytest.raises(AccountError, match="工号 2001 已被账号 op2001 使用"):
        admin.create(ADMIN, "op2002", "operator", display_name="周强", job_number="2001")
    for bad in ("张三", "a b", "x/../y", "a" * 65, ""):
        with pytest.raises(AccountError, match="用户名只能"):
            admin.create(ADMIN, bad, "qa", display_name="某人")


def test_a_chosen_password_must_meet_the_policy(admin, accounts) -> None:
    with pytest.raises(AccountError, match="三种"):
        admin.create(ADMIN, "lead2", "lead", display_name="二班长", password="onlylowercaseletters")
    made, temporary = admin.create(ADMIN, "lead2", "lead", display_name="二班长", password="Second-shift-9")
    assert temporary == "" and not made["must_change_password"]
    assert accounts.authenticate("lead2", "Second-shift-9") is not None


def test_the_last_admin_cannot_be_disabled_or_demoted_and_nobody_disables_themselves(admin) -> None:
    with pytest.raises(AccountError, match="不能停用自己"):
        admin.set_active(ADMIN, "admin", False)
    with pytest.raises(AccountError, match="最后一个管理员"):
        admin.update(ADMIN, "admin", role="lead")
    with pytest.raises(AccountError, match="最后一个管理员"):
        admin.set_active(Actor("root"), "admin", False)
    admin.create(ADMIN, "admin2", "admin", display_name="副管理员")
    admin.update(ADMIN, "admin", role="lead")  # now there is another
    with pytest.raises(LookupError):
        admin.set_active(ADMIN, "nobody", False)


def test_the_list_shows_state_and_open_sessions_never_a_hash(admin, accounts) -> None:
    admin.create(ADMIN, "op2001", "operator", display_name="孙丽", job_number="2001")
    accounts.sessions.open("admin")
    rows = {r["username"]: r for r in admin.list()}
    assert rows["admin"]["open_sessions"] == 1 and rows["op2001"]["must_change_password"]
    assert all("password_hash" not in r and "password" not in r for r in rows.values())
