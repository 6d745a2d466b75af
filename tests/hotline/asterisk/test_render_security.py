"""The rendered config's security policy, checked so that widening it again fails a test:
seats dial only the internal plan, nothing a phone reaches leads out, the AMI user has the classes
the bridge's actions need and no more, and only the app's address may log in."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cti.actions import Dialplan
from hotline.asterisk import runuser
from hotline.asterisk.render import render_config
from hotline.settings import PROJECT_ROOT, Settings
from testkit.ami import account_receives, manager_user

# every AMI action the code sends → the write classes that allow it (Asterisk 22, `manager show command
# <Action>`; any one of them is enough). An action missing here fails the test: look its class up first.
ACTION_CLASSES: dict[str, set[str]] = {
    "Login": set(), "Ping": set(), "QueueStatus": set(),
    "QueueAdd": {"agent"}, "QueueRemove": {"agent"}, "QueuePause": {"agent"},
    "Redirect": {"call"}, "BlindTransfer": {"call"}, "Setvar": {"call"}, "Hangup": {"system", "call"},
    "Originate": {"originate"},
    "CoreShowChannels": {"system", "reporting"},
}
WRITE = {"agent", "call", "originate", "reporting"}
READ = {"system", "call", "agent", "user"}  # FullyBooted/Shutdown, channels, queues, UserEvent
# with these AMI could run shell commands (Originate Application=System), load modules, rewrite config
NEVER_WRITE = {"all", "system", "command", "config"}
SENDERS = ("cti", "agent_ui", "launch", "hotline", "testkit", "tests", "bench", "agi", "recordings", "notify")
OUTSIDE = ["013800138000", "13953012345", "05305123456", "0085212345678", "+8613800138000", "9", "00", "110", "12345"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, ami_secret="", asterisk_mode="remote")


@pytest.fixture
def rendered(settings: Settings) -> dict[str, str]:
    return render_config(settings)


# ------------------------------------------------------------------------------- the dialplan

Dialplan_ = dict[str, dict[str, list[str]]]  # context → extension → its applications, in order


def parse_dialplan(text: str) -> Dialplan_:
    plan: Dialplan_ = {}
    context, exten = "", ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            context = m.group(1)
            plan.setdefault(context, {})
        elif m := re.fullmatch(r"exten\s*=>\s*([^,]+),[^,]+,(.*)", line):
            exten = m.group(1).strip()
            plan[context].setdefault(exten, []).append(m.group(2))
        elif m := re.fullmatch(r"same\s*=>\s*[^,]+,(.*)", line):
            plan[context][exten].append(m.group(1))
        elif m := re.fullmatch(r"include\s*=>\s*(\S+)", line):
            plan[context].setdefault("__include__", []).append(m.group(1))
    return plan


def pattern_matches(pattern: str, number: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == number
    rx = ""
    for token in re.findall(r"\[[^\]]*\]|.", pattern[1:]):
        rx += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(
            token, token if token.startswith("[") else re.escape(token))
    return re.fullmatch(rx, number) is not None


def targets(app: str, context: str, exten: str, plan: Dialplan_) -> list[tuple[str, str]]:
    """(context, extension) pairs a Goto/GotoIf/Gosub may jump to (all of a context for ${…})."""
    out = []
    m = re.match(r"(Goto|GotoIf|Gosub|GosubIf)\((.*)\)$", app)
    if not m:
        return out
    args = m.group(2)
    branches = re.split(r"[?:]", args.split("?", 1)[1]) if "If" in m.group(1) and "?" in args else [args]
    for branch in branches:
        parts = [p.strip() for p in branch.split(",")]
        if len(parts) == 3:
            ctx, ext = parts[0], parts[1]
        elif len(parts) == 2:
            ctx, ext = context, parts[0]
        else:
            continue  # a label in this extension
        if ctx not in plan:
            raise AssertionError(f"{app} in {context}: unknown context {ctx}")
        out += [(ctx, e) for e in plan[ctx] if "${" in ext or e == ext]
    return out


def reachable(plan: Dialplan_, context: str, numbers: list[str] | None = None) -> set[tuple[str, str]]:
    """Every (context, extension) a call entering ``context`` may run (for ``numbers``, or any)."""
    todo = [(context, e) for e in plan[context]
            if e != "__include__" and (numbers is None or any(pattern_matches(e, n) for n in numbers))]
    todo += [(inc, e) for inc in plan[context].get("__include__", []) for e in plan[inc]]
    seen: set[tuple[str, str]] = set()
    while todo:
        ctx, ext = todo.pop()
        if (ctx, ext) in seen:
            continue
        seen.add((ctx, ext))
        for app in plan[ctx][ext]:
            todo += targets(app, ctx, ext, plan)
    return seen


def apps(plan: Dialplan_, where: set[tuple[str, str]]) -> list[str]:
    return [app for ctx, ext in sorted(where) for app in plan[ctx][ext]]


def endpoint_contexts(pjsip: str) -> set[str]:
    return set(re.findall(r"^context\s*=\s*(\S+)", pjsip, flags=re.M))


def test_seats_dial_only_the_internal_plan(rendered: dict[str, str], settings: Settings) -> None:
    plan = parse_dialplan(rendered["extensions.conf"])
    seats = plan["from-seats"]
    assert "__include__" not in seats
    assert set(seats) == {"_20XX", "_80XX", "expert", "_[+0-9*#].", "_[+0-9*#]"}
    for exten in ("_20XX", "_80XX"):
        assert seats[exten] == ["Dial(PJSIP/${EXTEN},30)", "Hangup()"]
    assert seats["expert"][0].startswith(f"Queue({settings.specialist_queue},")
    # an outside number reaches the refusal and nothing else: said, logged, hung up
    for number in OUTSIDE:
        where = reachable(plan, "from-seats", [number])
        assert {ctx for ctx, _ in where} == {"from-seats", "seat-refused"}, (number, where)
        for app in apps(plan, where):
            assert app.split("(")[0] in {"Set", "Goto", "Log", "Progress", "Playback", "Hangup"}, (number, app)
    refused = plan["seat-refused"]["s"]
    assert refused[0].startswith("Log(WARNING,HOTLINE-REFUSED") and refused[-1] == "Hangup(21)"


def test_nothing_a_phone_reaches_dials_out(rendered: dict[str, str]) -> None:
    plan = parse_dialplan(rendered["extensions.conf"])
    phones = endpoint_contexts(rendered["pjsip.conf"])
    assert phones == {"from-trunk", "from-seats"}
    for context in phones:
        where = reachable(plan, context)
        for app in apps(plan, where):
            assert "pstn-out" not in app and "Local/" not in app, (context, app)
            assert not re.search(r"Dial\([^)]*\$\{(?!EXTEN\})", app), (context, app)  # no dialled variable
        assert not {ctx for ctx, _ in where} & {"hotline-outbound", "hotline-transfer", "hotline-conf"}, context
    # the only ways out: the app's Originate (callbacks) and BlindTransfer (a department's outside number)
    out = {ctx for ctx, extens in plan.items() for ext, a in extens.items() if any("@pstn-out" in x for x in a)}
    assert out == {"hotline-outbound", "hotline-transfer"}
    assert Dialplan().callback_context == "hotline-outbound" and Dialplan().transfer_context == "hotline-transfer"
    assert not re.search(r"^\s*exten\s*=>\s*_X\.", rendered["extensions.conf"].split("[from-seats]")[1]
                         .split("[seat-refused]")[0], flags=re.M)


# ------------------------------------------------------------------------------- the AMI user

def ami_user(rendered: dict[str, str], settings: Settings) -> list[tuple[str, str]]:
    return manager_user(rendered["manager.conf"], settings.ami_user)


def test_the_ami_user_has_only_the_classes_the_bridge_needs(rendered: dict[str, str], settings: Settings) -> None:
    pairs = ami_user(rendered, settings)
    read = {c.strip() for k, v in pairs if k == "read" for c in v.split(",")}
    write = {c.strip() for k, v in pairs if k == "write" for c in v.split(",")}
    assert read == READ and write == WRITE
    assert not write & NEVER_WRITE and "all" not in read


def actions_sent() -> dict[str, list[str]]:
    """Every ``"Action": "<Name>"`` the code and the tests send over the AMI → where."""
    found: dict[str, list[str]] = {}
    for top in SENDERS:
        for path in sorted((PROJECT_ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict):
                    for k, v in zip(node.keys, node.values, strict=True):
                        if (isinstance(k, ast.Constant) and k.value == "Action" and isinstance(v, ast.Constant)
                                and isinstance(v.value, str)):
                            found.setdefault(v.value, []).append(str(path.relative_to(PROJECT_ROOT)))
    return found


def test_every_action_the_code_sends_is_allowed_and_needs_no_more() -> None:
    sent = actions_sent()
    assert {"Originate", "QueueAdd", "Redirect", "CoreShowChannels"} <= set(sent)  # the scan finds them
    unknown = {a: where for a, where in sent.items() if a not in ACTION_CLASSES}
    assert unknown == {}, "look up each new action's class (manager show command X) and add it to ACTION_CLASSES"
    denied = [a for a in sent if ACTION_CLASSES[a] and not ACTION_CLASSES[a] & WRITE]
    assert denied == []
    # and nothing in WRITE is there for an action nobody sends
    assert {c for a in sent for c in ACTION_CLASSES[a] & WRITE} == WRITE


def test_only_the_apps_address_may_log_in_and_log_ins_are_shown(rendered: dict[str, str], settings: Settings) -> None:
    pairs = ami_user(rendered, settings)
    acl = [(k, v) for k, v in pairs if k in ("deny", "permit")]
    assert acl[:2] == [("deny", "0.0.0.0/0.0.0.0"), ("deny", "::/0")]
    assert acl[2:] == [("permit", "127.0.0.1/255.255.255.255")]
    assert ("displayconnects", "yes") in pairs
    assert re.search(r"^displayconnects = yes$", rendered["manager.conf"].split(f"[{settings.ami_user}]")[0], re.M)
    assert "bindaddr = 127.0.0.1" in rendered["manager.conf"]


def test_the_app_elsewhere_is_permitted_by_its_own_address(tmp_path: Path) -> None:
    s = Settings(var_dir=tmp_path, ami_secret="", ami_host="0.0.0.0", ami_permit="10.1.2.3, 10.9.0.0/16, fd00::5")
    acl = [(k, v) for k, v in ami_user(render_config(s), s) if k == "permit"]
    assert acl == [("permit", "10.1.2.3/255.255.255.255"), ("permit", "10.9.0.0/255.255.0.0"),
                   ("permit", "fd00::5/128")]
    wide = Settings(var_dir=tmp_path, ami_secret="", ami_host="0.0.0.0")
    assert [v for k, v in ami_user(render_config(wide), wide) if k == "permit"] == ["127.0.0.1/255.255.255.255"]


# ------------------------------------------------------------------------------- logs, files, user

def test_security_events_go_to_their_own_log(rendered: dict[str, str]) -> None:
    assert re.search(r"^security\.log\s*=>\s*security$", rendered["logger.conf"], re.M)
    assert re.search(r"^load = res_security_log\.so", rendered["modules.conf"], re.M)


def test_config_files_with_secrets_are_not_world_readable(settings: Settings) -> None:
    from hotline.asterisk.render import install_config

    target = install_config(settings)
    for name in ("manager.conf", "pjsip.conf"):
        assert (target / name).stat().st_mode & 0o777 == 0o640, name


def test_the_chroot_user_is_moved_off_host_ids(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nasterisk:x:101:101:PBX:/var/lib/asterisk:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nasterisk:x:101:\naudio:x:29:asterisk\n")
    owned = root / "var/spool/asterisk/monitor/a.wav"
    owned.parent.mkdir(parents=True)
    owned.write_bytes(b"")
    taken = {101, 999}  # the host's, say postgres and another service
    monkeypatch.setattr(runuser, "_host_uid_taken", lambda n: n in taken)
    monkeypatch.setattr(runuser, "_host_gid_taken", lambda n: n in taken)
    chowned: list[tuple[str, int, int]] = []
    monkeypatch.setattr(runuser.os, "chown", lambda p, u, g, follow_symlinks=True: chowned.append((str(p), u, g)))
    monkeypatch.setattr(runuser, "_walk", lambda top, skip=(): [owned])
    monkeypatch.setattr(Path, "lstat", lambda self: type("St", (), {"st_uid": 101, "st_gid": 101})())
    ids = runuser.ensure_ids(root)
    assert ids == runuser.Ids(998, 998)
    assert "asterisk:x:998:998:PBX" in (root / "etc/passwd").read_text()
    assert "asterisk:x:998:" in (root / "etc/group").read_text()
    assert chowned == [(str(owned), 998, 998)]
    assert runuser.run_args(Settings(var_dir=tmp_path, asterisk_mode="remote")) == []


def test_the_event_filters_keep_every_event_the_bridge_types(rendered: dict[str, str], settings: Settings) -> None:
    """The filters save the bridge a parse of each event it ignores; one that dropped an event it
    types would blind it (a call never seen to end). Only VarSet is typed and filtered: the bridge
    reads it when it asks for it (resync), and Asterisk sends ~110 of them a call."""
    from cti.protocol import BUILDERS
    receives = account_receives(rendered["manager.conf"], settings.ami_user)
    privilege = {"FullyBooted": "system", "Shutdown": "system", "UserEvent": "user"}
    agent = {n for n in BUILDERS if n.startswith(("Agent", "Queue"))}
    dropped = {n for n in BUILDERS
               if not receives(f"Event: {n}\r\nPrivilege: {privilege.get(n, 'agent' if n in agent else 'call')},all")}
    assert dropped == {"VarSet"}
    never = {"Newstate": "call", "HangupRequest": "call", "DialBegin": "call", "MusicOnHoldStart": "call",
             "MusicOnHoldStop": "call", "MixMonitorStart": "call", "BridgeCreate": "call", "BridgeDestroy": "call",
             "PeerStatus": "system", "ContactStatus": "system", "DeviceStateChange": "call",
             "VarSet": "dialplan", "Newexten": "dialplan", "SuccessfulAuth": "security"}
    for name, cls in never.items():  # what one call brings that the bridge never reads
        assert not receives(f"Event: {name}\r\nPrivilege: {cls},all"), name
