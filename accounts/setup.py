"""Production's first administrator, without a default password.

When production mode starts with no active admin, it prints a one-time setup token (and keeps
only its SHA-256 under ``var/secrets``); whoever can read the server's console types it into
``/setup`` with the admin's own user name and password. The token works once, for one hour.
``hotline account create <name> --role admin`` is the other way in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

TTL_S = 3600


class SetupToken:
    def __init__(self, secrets_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = secrets_dir / "setup-token"
        self.clock = clock

    def issue(self) -> str:
        token = secrets.token_urlsafe(18)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        body = {"sha256": hashlib.sha256(token.encode()).hexdigest(), "expires": self.clock() + TTL_S}
        self.path.write_text(json.dumps(body))
        self.path.chmod(0o600)
        return token

    def pending(self) -> bool:
        """A token is waiting (and has not expired): the setup page is open."""
        return self._stored() is not None

    def check(self, token: str) -> bool:
        stored = self._stored()
        if stored is None or not token:
            return False
        return hmac.compare_digest(stored, hashlib.sha256(token.encode()).hexdigest())

    def consume(self) -> None:
        self.path.unlink(missing_ok=True)

    def _stored(self) -> str | None:
        try:
            body = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(body, dict) or float(body.get("expires", 0)) < self.clock():
            return None
        return str(body.get("sha256", "")) or None
