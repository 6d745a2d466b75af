"""A notification sender in a process of its own, for the tests that kill one (test_crash.py).

``python -m tests.notify.sender URL SMTP_PORT NOW WORKER [--sweep GO_FILE]``: on the database at
URL, at the instant NOW (ISO), as WORKER, send what the outbox holds due to the SMTP server on
127.0.0.1:SMTP_PORT (SMS: log only). With ``--sweep``, first plan and enqueue the reminders due
at NOW like a web node's sweep, starting once GO_FILE exists (so that two of them start together).
Prints ``ready`` once connected, then one JSON line per delivery.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from hotline.db import make_engine
from notify.channels import LogOnly, SmtpChannel
from notify.outbox import Outbox
from notify.service import Notifier
from notify.sweep import ReminderSweep, deliver_due
from tests.notify.conftest import rules
from ticketing.context import StoreContext
from ticketing.store import Store

SENDER = "12345热线 <hotline@12345.example>"


def main(argv: list[str]) -> None:
    url, port, when, worker = argv[:4]
    now = datetime.fromisoformat(when)
    engine = make_engine(url)
    with engine.connect():  # connected before "ready": the race starts at the database, not at the import
        pass
    outbox = Outbox(engine, worker=worker)
    notifier = Notifier({"email": SmtpChannel(host="127.0.0.1", port=int(port), sender=SENDER, timeout_s=60),
                         "sms": LogOnly()})
    print("ready", flush=True)
    if argv[4:5] == ["--sweep"]:
        go = Path(argv[5])
        while not go.exists():
            time.sleep(0.005)
        store = Store.on(StoreContext(engine, clock=lambda: now))
        done = asyncio.run(ReminderSweep(store, notifier, rules(), clock=lambda: now, outbox=outbox).sweep_once())
    else:
        done = asyncio.run(deliver_due(outbox, notifier, lambda: now))
    for d in done:
        print(json.dumps({"status": d.status, "transport": d.transport, "error": d.error}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
