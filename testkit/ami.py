"""AMI traffic on the wire: recorded event logs rendered back into bytes, and raw transcripts.

Two kinds of fixtures live under ``tests/fixtures/ami/`` (see its README):

* ``spike/*.jsonl``: AMI events of real Asterisk 22 runs as panoramisk parsed them (one dict a
  line). :func:`to_wire` renders them back into AMI bytes (``Key: Value\\r\\n``, a blank line
  between frames, a repeated header such as ``ChanVariable`` as repeated lines) so that byte-level
  parsers see what Asterisk sent. The spike logged no ``Timestamp`` header, so the receive time
  (``_wall``) stands in for it;
* ``*.ami``: raw bytes recorded from the project's own Asterisk (greeting, responses and all);
  :func:`event_frames` keeps their events, and :func:`account_receives` says which of them a
  manager.conf account of today gets (a transcript recorded before a filter was added has more).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from testkit import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "ami"
SPIKE = FIXTURES / "spike"
FLOWS = SPIKE / "flows_answer_noanswer_abandon.jsonl"
THREE_PARTY = SPIKE / "three_party_variants.jsonl"
# raw transcripts: the harness's (HOTLINE_RECORD_AMI=1) and tests/cti/test_asterisk.py's own
RAW_DIRS = (FIXTURES, ROOT / "tests" / "cti" / "transcripts")

GREETING = b"Asterisk Call Manager/9.0.0\r\n"


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def frame_bytes(d: dict) -> bytes:
    """One event dict → one AMI frame (``Timestamp`` from ``_wall`` when missing).

    >>> frame_bytes({"Event": "Hold", "Privilege": "call,all", "Var": ["A=1", "B=2"], "_wall": 7.5}).split(b"\\r\\n")
    [b'Event: Hold', b'Privilege: call,all', b'Timestamp: 7.500000', b'Var: A=1', b'Var: B=2', b'', b'']
    """
    lines: list[str] = []
    for k, v in d.items():
        if k.startswith("_"):
            continue
        if isinstance(v, list):
            lines.extend(f"{k}: {x}" for x in v)
        else:
            lines.append(f"{k}: {v}")
        if k == "Privilege" and "Timestamp" not in d and "_wall" in d:
            lines.append(f"Timestamp: {d['_wall']:.6f}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def to_wire(events: Iterable[dict], greeting: bool = True) -> bytes:
    """Event dicts → the AMI byte stream (pseudo events like ``_panoramisk_login`` dropped).

    >>> to_wire([{"Event": "_panoramisk_login"}, {"Event": "FullyBooted"}])
    b'Asterisk Call Manager/9.0.0\\r\\nEvent: FullyBooted\\r\\n\\r\\n'
    """
    out = [GREETING] if greeting else []
    out += [frame_bytes(d) for d in events if not str(d.get("Event", "")).startswith("_")]
    return b"".join(out)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` cut every ``size`` bytes, as TCP may deliver it (inside frames and characters too)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def raw_transcripts() -> list[Path]:
    """Every raw ``.ami`` transcript recorded so far, in path order (none on a fresh clone is fine)."""
    return sorted(p for d in RAW_DIRS if d.exists() for p in d.glob("*.ami"))


def event_frames(data: bytes) -> bytes:
    """A raw transcript's events only: the greeting and the action responses dropped.

    >>> event_frames(GREETING + b"Response: Success\\r\\n\\r\\nEvent: Hangup\\r\\nUniqueid: 1.1\\r\\n\\r\\n")
    b'Event: Hangup\\r\\nUniqueid: 1.1\\r\\n\\r\\n'
    """
    frames = [f for f in data.split(b"\r\n\r\n") if f.startswith(b"Event: ")]
    return b"".join(f + b"\r\n\r\n" for f in frames)


def manager_user(manager_conf: str, user: str) -> list[tuple[str, str]]:
    """The ``key = value`` lines of ``[user]`` in a ``manager.conf``, in order, comments dropped.

    >>> manager_user("[general]\\nport = 5038\\n[hl]\\nread = call ; the bridge's\\nwrite = agent\\n", "hl")
    [('read', 'call'), ('write', 'agent')]
    """
    section, pairs = "", []
    for raw in manager_conf.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
        elif section == user and "=" in line:
            key, value = (x.strip() for x in line.split("=", 1))
            pairs.append((key, value))
    return pairs


def account_receives(manager_conf: str, user: str) -> Callable[[str], bool]:
    """Whether Asterisk sends an event (its text, ``Event: X\\r\\nPrivilege: call,all\\r\\n…``) to
    ``user`` of this ``manager.conf``, as manager.c decides it: every class of the event's
    ``Privilege`` (``all`` is a label, not a class) is among the user's ``read`` classes, and its
    ``eventfilter`` lines let it through: each a regular expression searched in the event's text,
    ``!`` excluding; with any including filter, the event must match one of those.

    >>> conf = "[hl]\\nread = call,agent\\neventfilter = !Event: (Newstate|VarSet)\\n"
    >>> ok = account_receives(conf, "hl")
    >>> [ok(t) for t in ("Event: Hangup\\r\\nPrivilege: call,all", "Event: Newstate\\r\\nPrivilege: call,all",
    ...                  "Event: SuccessfulAuth\\r\\nPrivilege: security,all")]
    [True, False, False]
    """
    read, include, exclude = set(), [], []
    for key, value in manager_user(manager_conf, user):
        if key == "read":
            read |= {c.strip() for c in value.split(",") if c.strip()}
        elif key == "eventfilter":
            (exclude if value.startswith("!") else include).append(re.compile(value.lstrip("!")))
    if not read:
        raise ValueError(f"manager.conf has no read classes for [{user}]")

    def receives(text: str) -> bool:
        privilege = re.search(r"^Privilege: (.*)$", text, re.M)
        classes = {c.strip() for c in privilege.group(1).split(",")} - {"all"} if privilege else set()
        if not classes <= read and "all" not in read:
            return False
        if include and not any(p.search(text) for p in include):
            return False
        return not any(p.search(text) for p in exclude)

    return receives
