"""Each component's state for the health page: Asterisk, AMI, FastAGI, database, and whatever
later parts register (CTI bridge, transcription workers…)."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

import recordings.service
from hotline import reconciliation
from hotline.bus import Envelope
from hotline.listening import ListenerStatus
from hotline.outbox import Outbox
from hotline.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    label: str  # shown to people, in Chinese
    state: str  # "ok" | "down" | "off" (not started on purpose)
    detail: str = ""
    ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


Probe = Callable[[], Awaitable[Check]]


async def _timed(name: str, label: str, probe: Callable[[], Awaitable[tuple[str, str]]], limit_s: float) -> Check:
    start = time.perf_counter()
    try:
        state, detail = await asyncio.wait_for(probe(), limit_s)
    except TimeoutError:
        state, detail = "down", f"{limit_s:g} 秒内无响应"
    except Exception as exc:  # a health page reports failures, it does not raise them
        state, detail = "down", f"{type(exc).__name__}: {exc}"[:200]
    return Check(name, label, state, detail, round((time.perf_counter() - start) * 1000, 1))


async def _banner(host: str, port: int, expect: bytes) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        line = await reader.readline()
    finally:
        writer.close()
    if not line.startswith(expect):
        return "down", f"意外的应答: {line[:60]!r}"
    return "ok", line.decode(errors="replace").strip()


async def _listening(host: str, port: int) -> tuple[str, str]:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "off", f"{host}:{port} 未监听"
    writer.close()
    return "ok", f"{host}:{port}"


def asterisk_probe(settings: Settings) -> Probe:
    async def probe() -> tuple[str, str]:
        if settings.asterisk_mode == "remote":
            return "ok", f"远程 Asterisk {settings.ami_host}"
        from hotline.asterisk import process

        status = await asyncio.to_thread(process.status, settings)
        if not status.running:
            return "down", "Asterisk 未运行：执行 hotline asterisk start"
        match = re.search(r"System uptime: (\d+)", status.uptime)
        return "ok", f"pid {status.pid}，已运行 {match.group(1) if match else '?'} 秒"

    return lambda: _timed("asterisk", "Asterisk 交换机", probe, 3)


def ami_probe(settings: Settings) -> Probe:
    return lambda: _timed("ami", "AMI 管理接口",
                          lambda: _banner(settings.ami_host, settings.ami_port, b"Asterisk Call Manager"), 2)


def agi_probe(settings: Settings) -> Probe:
    return lambda: _timed("agi", "FastAGI 来电查询", lambda: _listening(settings.agi_host, settings.agi_port), 1)


def database_probe(engine: sa.Engine) -> Probe:
    async def probe() -> tuple[str, str]:
        def ping() -> str:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return engine.dialect.name

        return "ok", await asyncio.to_thread(ping)

    return lambda: _timed("database", "数据库", probe, 3)


def disk_probe(settings: Settings) -> Probe:
    async def probe() -> tuple[str, str]:
        usage = shutil.disk_usage(settings.var_dir)
        free_gb = usage.free / 2**30
        return ("ok" if free_gb > 1 else "down"), f"可用 {free_gb:.1f} GB"

    return lambda: _timed("disk", "录音存储空间", probe, 1)


def call_log_probe(settings: Settings) -> Probe:
    """Finished calls waiting in the outbox for the call log (launch/filing.py): none is normal; any
    means the database refused them and they are being retried."""
    async def probe() -> tuple[str, str]:
        waiting = len(Outbox(settings.call_outbox_dir))
        if waiting:
            return "down", f"{waiting} 通已结束的通话尚未写入通话记录（数据库拒绝写入，正在重试，不会丢失）"
        return "ok", "通话记录已全部写入"

    return lambda: _timed("call_log", "通话记录写入", probe, 1)


def recordings_probe(engine: sa.Engine) -> Probe:
    """Recording files found gone or changed since they were stored (the sweep and every read check
    them against their checksums, recordings/sweep.py), and files no row refers to."""
    async def probe() -> tuple[str, str]:
        got = await asyncio.to_thread(recordings.service.integrity, engine)
        return str(got["state"]), str(got["detail"])

    return lambda: _timed("recordings", "录音文件完整性", probe, 3)


def witness_probe(settings: Settings) -> Probe:
    """The call log against Asterisk's own records (launch/witness.py, on the CTI node): any call
    one has and the other has not is shown here."""
    async def probe() -> tuple[str, str]:
        report = reconciliation.read(settings.var_dir)
        if report is None:
            return "off", "尚未核对（CTI 话务桥启动约 1 分钟后首次核对）"
        if not report.readable:
            return "down", f"找不到 Asterisk 的通话事件记录（{report.source}），中断期间的通话无法补录"
        if report.age_s() > 2 * settings.witness_check_s + 120:
            return "down", f"核对已停止（上次 {report.at}）：CTI 话务桥是否在运行？"
        rebuilt = f"，已补录 {report.rebuilt_total} 通" if report.rebuilt_total else ""
        if report.differences:
            parts = [(report.missing, "通话记录缺少"), (report.unknown_to_asterisk, "Asterisk 无记录"),
                     (report.outcome_differs, "接通与否不一致"), (report.lost_but_finished, "记为中断但已正常结束")]
            said = "；".join(f"{label} {len(ids)} 通（{'、'.join(ids[:3])}{'…' if len(ids) > 3 else ''}）"
                            for ids, label in parts if ids)
            return "down", f"近 24 小时与 Asterisk 记录不一致：{said}{rebuilt}"
        return "ok", f"近 24 小时 {report.checked} 通与 Asterisk 记录一致{rebuilt}"

    return lambda: _timed("witness", "通话记录核对", probe, 1)


async def run_checks(probes: list[Probe]) -> list[Check]:
    return list(await asyncio.gather(*(p() for p in probes)))


def cti_probe(cti: Any) -> Probe:  # cti.service.CtiService, None where this node does not run it
    async def probe() -> tuple[str, str]:
        if cti is None:
            return "off", "未在本节点运行（设置 HOTLINE_SERVICES）"
        stats = cti.health()
        if stats.get("replica"):  # a node of a centre: each Asterisk server's active bridge, as it reports
            return _replica_health(stats)
        up = bool(stats.get("logged_in"))
        detail = (f"{'已登录 AMI' if up else '未连接 AMI，正在重试'} · 断线 {stats.get('disconnects', 0)} 次 · "
                  f"异常帧 {stats.get('malformed', 0)} · 事件序号 {stats.get('bus_seq', 0)}")
        return ("ok" if up else "down"), detail

    return lambda: _timed("cti", "CTI 话务桥", probe, 1)


def _replica_health(stats: dict[str, Any]) -> tuple[str, str]:
    servers = stats.get("servers", {})
    if not servers:
        why = f"：{stats['problem']}" if stats.get("problem") else ""
        return "down", f"没有话务桥在报告交换机状态（各交换机的 CTI 节点是否运行？）{why}"
    parts = []
    for name, s in servers.items():
        term = (s.get("leader") or {}).get("term")
        said = "已登录 AMI" if s.get("logged_in") else "未连接 AMI，正在重试"
        parts.append(f"{name}：{said}{f'（任期 {term}）' if term else ''}，{s.get('age_s', 0)} 秒前报告")
    if stats.get("unnamed"):  # calls are being lost: as loud as a bridge that is down
        return "down", f"{stats['problem']}；" + "；".join(parts)
    return ("ok" if stats.get("logged_in") else "down"), "；".join(parts)


class Listeners:
    """The centre's listening nodes as their heartbeats say (followed on the bus by every web node:
    a node on a machine of its own is seen too)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.seen: dict[str, tuple[ListenerStatus, float]] = {}

    KINDS = (ListenerStatus,)  # what it follows: a web node rebuilds no other event for it

    def on_envelope(self, env: Envelope) -> None:
        e = env.event
        if isinstance(e, ListenerStatus):
            self.seen[e.node] = (e, self.clock())

    def check(self) -> tuple[str, str]:
        if not self.seen:
            return "off", "没有实时转写节点（通话结束后转写；启用：HOTLINE_SERVICES 含 listen 或运行 hotline listen）"
        now, parts, room, alive = self.clock(), [], 0, 0
        for name, (st, at) in sorted(self.seen.items()):
            age = now - at
            if st.capacity == 0 and age > 3 * st.every_s:
                continue  # said goodbye (capacity 0) a while ago: a node stopped on purpose
            if age > 3 * st.every_s:
                parts.append(f"{name}：{age:.0f} 秒无心跳")
                continue
            alive += 1
            room += max(0, st.capacity - st.active) if not st.overloaded else 0
            busy = "，跟不上（暂不接新通话）" if st.overloaded else ""
            parts.append(f"{name}：{st.active}/{st.capacity} 路，预热 {st.warm}{busy}")
        if not parts:
            return "off", "实时转写节点均已停止"
        state = "ok" if alive and room >= 2 else "down"
        return state, f"可接 {room // 2} 通；" + "；".join(parts)


def listen_probe(listeners: Listeners) -> Probe:
    async def probe() -> tuple[str, str]:
        return listeners.check()

    return lambda: _timed("listen", "实时转写节点", probe, 1)
