"""Sign-in throttling per account and per client; a held account is refused even with the right
password, and without the password being checked."""

from __future__ import annotations

from accounts.admin import AccountAdmin, Actor


def test_five_failures_hold_the_account_for_the_window_even_for_the_right_password(accounts, clock) -> None:
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    for i in range(5):
        assert accounts.sign_in("op2001", f"guess{i}", client=f"10.0.0.{i}").principal is None
    held = accounts.sign_in("op2001", "Right-pass-2001", client="10.0.1.1")
    assert held.principal is None and 0 < held.held_s <= 900
    assert accounts.audit.list(action="login_throttled")[0] == 1
    clock.advance(held.held_s + 1)
    assert accounts.sign_in("op2001", "Right-pass-2001").principal is not None


def test_a_success_starts_the_count_again(accounts, clock) -> None:
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    for _ in range(4):
        accounts.sign_in("op2001", "typo")
    assert accounts.sign_in("op2001", "Right-pass-2001").principal is not None
    for _ in range(4):
        accounts.sign_in("op2001", "typo")
    assert accounts.sign_in("op2001", "Right-pass-2001").principal is not None


def test_one_client_trying_many_accounts_is_held(accounts) -> None:
    for n in range(20):
        accounts.sign_in(f"user{n}", "password", client="203.0.113.7")
    assert accounts.sign_in("someone-else", "x", client="203.0.113.7").held_s > 0
    assert accounts.sign_in("someone-else", "x", client="203.0.113.8").held_s == 0  # another client is not


def test_an_admins_reset_lifts_the_hold(accounts) -> None:
    accounts.upsert("admin", "Admin-pass-2026", "admin")
    accounts.upsert("op2001", "Right-pass-2001", "operator", job_number="2001")
    for _ in range(5):
        accounts.sign_in("op2001", "guess")
    temporary = AccountAdmin(accounts).reset_password(Actor("admin"), "op2001")
    signed = accounts.sign_in("op2001", temporary)
    assert signed.principal is not None and signed.principal.must_change_password
