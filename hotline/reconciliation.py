"""The last comparison of the call log with Asterisk's own records, as a small file in ``var/``.

The node that runs the CTI bridge runs the comparison (launch/witness.py); the health page of any
web process reads it from here. One shape, written and read in this module only.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE = "witness.json"


@dataclass
class Report:
    at: str  # when compared (UTC, ISO)
    source: str  # where Asterisk's records were read
    readable: bool  # the records were there
    checked: int = 0  # calls in Asterisk's records over the window
    missing: list[str] = field(default_factory=list)  # in Asterisk's records, not in the call log
    unknown_to_asterisk: list[str] = field(default_factory=list)  # logged, not in Asterisk's records
    outcome_differs: list[str] = field(default_factory=list)  # answered in one, not in the other
    lost_but_finished: list[str] = field(default_factory=list)  # logged lost, ended normally for Asterisk
    rebuilt_total: int = 0  # calls rebuilt from Asterisk's records since this node started
    malformed_lines: int = 0

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.unknown_to_asterisk) + len(self.outcome_differs) + len(
            self.lost_but_finished)

    def age_s(self, now: float | None = None) -> float:
        return (now or time.time()) - datetime.fromisoformat(self.at).timestamp()

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat(timespec="seconds")


def write(var_dir: Path, report: Report) -> None:
    path = Path(var_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)  # a CTI node's var folder may hold nothing else yet
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(report), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read(var_dir: Path) -> Report | None:
    """The last report (None before the first, or if the file is not one)."""
    try:
        raw: dict[str, Any] = json.loads((Path(var_dir) / FILE).read_text(encoding="utf-8"))
        known = {f.name for f in fields(Report)}
        report = Report(**{k: v for k, v in raw.items() if k in known})
        report.age_s()  # a valid time
        return report
    except (OSError, ValueError, TypeError):
        return None
