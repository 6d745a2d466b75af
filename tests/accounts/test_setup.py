"""Production's one-time setup token: kept as a hash, once, for an hour."""

from __future__ import annotations

import json

from accounts.setup import SetupToken


def test_the_token_works_once_for_an_hour_and_only_its_hash_is_kept(tmp_path) -> None:
    now = [1_800_000_000.0]
    setup = SetupToken(tmp_path / "secrets", clock=lambda: now[0])
    token = setup.issue()
    stored = json.loads((tmp_path / "secrets" / "setup-token").read_text())
    assert token not in json.dumps(stored) and (tmp_path / "secrets" / "setup-token").stat().st_mode & 0o077 == 0
    assert setup.pending() and setup.check(token) and not setup.check(token + "x") and not setup.check("")
    now[0] += 3601
    assert not setup.pending() and not setup.check(token)
    token = setup.issue()
    setup.consume()
    assert not setup.check(token)
