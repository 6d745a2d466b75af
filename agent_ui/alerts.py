"""The lead's alerts (班长告警): pure rules with an injected clock, fed by the bus and the live views.

The bridge already publishes two of them (a call past 15 s: ``AnswerRuleBreached``; a handover
gap: ``HandoverMeasured`` with ``ok`` false). The rest are judged here from what the bus says:

* a seat busy (示忙) longer than allowed;
* a seat signed in but not answering: it rang longer than ``ring_limit_s``, or let a call go
  (``SeatRingNoAnswer``);
* the 24 h completion rate under its target (once per dip: re-armed when it recovers);
* an emergency ticket (重大紧急), from the ticket store.

Each alert is raised once per episode (``key``) and stays on the list until a lead acknowledges
it; acknowledging is logged by the caller (agent_ui/lead.py), not here.

>>> eng = AlertEngine(AlertRules(busy_limit_s=60))
>>> eng.feed({"event": "SeatStateChanged", "seat": "8001", "state": "busy", "reason": "培训", "at": 0.0})
[]
>>> [a.kind for a in eng.check(now=61.0)]
['busy_long']
>>> eng.check(now=62.0)  # once per busy spell
[]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KIND_LABELS = {
    "answer_rule": "来电超 15 秒未接",
    "completion": "接通率低于目标",
    "busy_long": "示忙超时",
    "no_answer": "坐席振铃未接",
    "handover": "交接班间隔超 30 秒",
    "emergency": "重大紧急工单",
    "link": "实时链路中断",
    "phone_offline": "坐席话机离线",
    "live_forbidden": "通话中出现服务禁语",
    "live_emergency": "来电人提及紧急情况",
}


# the bus events AlertEngine.feed raises alerts from (seat states only feed the timed rules)
ALERT_SOURCES = frozenset({"AnswerRuleBreached", "HandoverMeasured", "SeatRingNoAnswer", "SeatPhoneChanged",
                           "LiveFlagRaised", "LinkStatus"})


@dataclass(frozen=True, slots=True)
class AlertRules:
    busy_limit_s: float = 600.0  # 示忙 longer than this needs the lead's eye
    ring_limit_s: float = 12.0  # a signed-in seat ringing this long is not answering (the queue gives up at 15 s)
    completion_target: float = 95.0  # % answered of offered over 24 h
    completion_min_offered: int = 5  # too few calls say nothing about the rate


@dataclass(slots=True)
class Alert:
    id: int
    kind: str
    key: str  # one alert per episode: the same key is not raised twice while open
    at: float
    title: str
    detail: str = ""
    queue: str = ""
    subject_seat: str = ""  # not "seat": the websocket would show it to that seat's operator
    call_id: str = ""
    ticket_id: int | None = None
    acked_by: str = ""
    acked_at: float | None = None

    def view(self) -> dict[str, Any]:
        return asdict(self) | {"label": KIND_LABELS.get(self.kind, self.kind)}


@dataclass(slots=True)
class _SeatWatch:
    state: str = "signed_out"
    since: float = 0.0
    reason: str = ""
    raised: bool = False  # for the current spell


@dataclass
class AlertEngine:
    rules: AlertRules = field(default_factory=AlertRules)
    keep: int = 200  # acknowledged alerts kept for the list
    alerts: dict[int, Alert] = field(default_factory=dict)
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))
    _floor: int = 1  # the lowest id the next alert may take (alerts adopted from another node sit below it)
    _open_keys: dict[str, int] = field(default_factory=dict)
    _seats: dict[str, _SeatWatch] = field(default_factory=dict)
    _low_queues: set[str] = field(default_factory=set)
    _seen_tickets: set[int] = field(default_factory=set)
    # every episode raised here or adopted from the node on duty, acknowledged or not: a node taking
    # the duty over replays what the dead one may not have acted on (catch_up) without raising twice
    _known_keys: dict[str, float] = field(default_factory=dict)
    _catching_up: bool = False

    # ------------------------------------------------------------------ raising

    def _raise(self, kind: str, key: str, at: float, detail: str = "", **kw: Any) -> list[Alert]:
        if key in self._open_keys or (self._catching_up and key in self._known_keys):
            return []
        self._know(key, at)
        next_id: int = next(self._ids)  # type: ignore[call-overload]
        self._floor = max(self._floor, next_id + 1)
        alert = Alert(id=next_id, kind=kind, key=key, at=at,  # type: ignore[call-overload]
                      title=KIND_LABELS[kind], detail=detail, **kw)
        self.alerts[alert.id] = alert
        self._open_keys[key] = alert.id
        self._trim()
        return [alert]

    def _know(self, key: str, at: float) -> None:
        self._known_keys[key] = at
        if len(self._known_keys) > 4 * self.keep:  # the oldest half goes: a catch-up looks back a minute
            for k, _ in sorted(self._known_keys.items(), key=lambda kv: kv[1])[: len(self._known_keys) // 2]:
                del self._known_keys[k]

    def _trim(self) -> None:
        acked = [a for a in self.alerts.values() if a.acked_at is not None]
        for a in sorted(acked, key=lambda a: a.id)[: max(0, len(acked) - self.keep)]:
            del self.alerts[a.id]

    # ------------------------------------------------------------------ inputs

    def feed(self, msg: Mapping[str, Any]) -> list[Alert]:
        """One bus message (``hotline.bus.to_message`` shape) → the alerts it raises now."""
        event, at = msg.get("event"), float(msg.get("at") or 0.0)
        if event == "AnswerRuleBreached":
            rung = "、".join(msg.get("seats_rung") or []) or "无"
            ringing = f"，正在振铃 {msg['ringing_seat']}" if msg.get("ringing_seat") else ""
            return self._raise("answer_rule", f"call:{msg['call_id']}", at,
                               f"{msg.get('caller_num', '')} 已等待 {round(msg.get('waited_ms', 0) / 1000)} 秒；"
                               f"已振铃坐席 {rung}{ringing}",
                               queue=msg.get("queue", ""), call_id=msg["call_id"],
                               subject_seat=msg.get("ringing_seat", ""))
        if event == "HandoverMeasured" and not msg.get("ok", True):
            return self._raise("handover", f"handover:{msg['from_seat']}:{msg['to_seat']}:{at}", at,
                               f"{msg['from_seat']} → {msg['to_seat']} 间隔 {msg['gap_s']:.0f} 秒",
                               subject_seat=str(msg["to_seat"]))
        if event == "SeatRingNoAnswer" and msg.get("ring_ms", 0) >= self.rules.ring_limit_s * 1000:
            # rang out; a phone that refused at once (still hanging up the last call) is not "not answering"
            seat = str(msg["seat"])
            self._seat(seat).raised = True  # the RNA says it better than the ring timer would
            return self._raise("no_answer", f"rna:{seat}:{msg.get('call_id', '')}", at,
                               f"坐席 {seat} 已签入，振铃 {round(msg.get('ring_ms', 0) / 1000)} 秒未接听",
                               subject_seat=seat, call_id=str(msg.get("call_id", "")))
        if event == "SeatStateChanged":
            watch = self._seat(str(msg["seat"]))
            if watch.state != msg["state"]:
                watch.state, watch.since, watch.raised = str(msg["state"]), at, False
            watch.reason = str(msg.get("reason") or "")
        if event == "SeatPhoneChanged":
            seat = str(msg["seat"])
            if msg.get("reachable", True) or not msg.get("signed_in"):
                return []  # back (an open alert stays until the lead acknowledges it), or nobody expects calls
            who = f"（{msg['operator']}）" if msg.get("operator") else ""
            return self._raise("phone_offline", f"phone:{seat}", at,
                               f"坐席 {seat}{who}已签入，但话机未注册：来电不会分配到该坐席", subject_seat=seat)
        if event == "LiveFlagRaised":  # said on a live call (issue #16): the lead can open its live transcript
            kind = "live_emergency" if msg.get("flag") == "emergency" else "live_forbidden"
            who = "来电人" if msg.get("speaker") == "citizen" else f"话务员{msg.get('operator') or ''}"
            return self._raise(kind, f"live:{msg['call_id']}:{msg.get('flag')}:{msg.get('phrase')}", at,
                               f"坐席 {msg.get('seat', '')}：{who}说“{msg.get('phrase', '')}”——"
                               f"{msg.get('text', '')[:60]}",
                               subject_seat=str(msg.get("seat", "")), call_id=str(msg["call_id"]))
        if event == "LinkStatus" and not msg.get("up", True):
            return self._raise("link", f"link:{at}", at, str(msg.get("detail") or "与 Asterisk 的连接中断"))
        return []

    def catch_up(self, msgs: Iterable[Mapping[str, Any]]) -> list[Alert]:
        """Taking the duty over: the alerts the bus messages of the last moments raise that the node
        on duty (dead now) never published. An episode it published (adopted here), acknowledged
        since or not, is not raised again; seat states are not replayed (the seats are seeded as
        they are now)."""
        out: list[Alert] = []
        self._catching_up = True
        try:
            for msg in msgs:
                if msg.get("event") != "SeatStateChanged":
                    out += self.feed(msg)
        finally:
            self._catching_up = False
        return out

    def seed_seats(self, views: Iterable[Mapping[str, Any]]) -> None:
        """Seats as they are now (at start, or after a resync)."""
        for v in views:
            watch = self._seat(str(v["seat"]))
            if watch.state != v["state"]:
                watch.state, watch.since, watch.raised = str(v["state"]), float(v.get("since") or 0.0), False
            watch.reason = str(v.get("reason") or "")

    def _seat(self, seat: str) -> _SeatWatch:
        return self._seats.setdefault(seat, _SeatWatch())

    def check(self, now: float, queues: Iterable[Mapping[str, Any]] = ()) -> list[Alert]:
        """The timed rules: seats busy or ringing too long, queues under the completion target."""
        out: list[Alert] = []
        r = self.rules
        for seat, w in sorted(self._seats.items()):
            if w.raised:
                continue
            if w.state == "busy" and now - w.since >= r.busy_limit_s:
                w.raised = True
                reason = f"（{w.reason}）" if w.reason else ""
                out += self._raise("busy_long", f"busy:{seat}:{w.since}", now,
                                   f"坐席 {seat} 示忙{reason}已 {_mmss(now - w.since)}", subject_seat=seat)
            elif w.state == "ringing" and now - w.since >= r.ring_limit_s:
                w.raised = True
                out += self._raise("no_answer", f"ring:{seat}:{w.since}", now,
                                   f"坐席 {seat} 已签入，振铃 {now - w.since:.0f} 秒未接听", subject_seat=seat)
        for q in queues:
            name, rate = str(q["queue"]), q.get("completion_24h")
            # the view gives the 24 h rate and abandons, not the 24 h offered count: derive it
            abandoned = int(q.get("abandoned_24h") or 0)
            offered = round(abandoned * 100 / (100 - rate)) if rate is not None and rate < 100 else 0
            low = rate is not None and rate < r.completion_target and offered >= r.completion_min_offered
            if low and name not in self._low_queues:
                self._low_queues.add(name)
                out += self._raise("completion", f"completion:{name}:{now}", now,
                                   f"队列 {name} 24 小时接通率 {rate:.1f} %，低于 {r.completion_target:.0f} %",
                                   queue=name)
            elif not low and rate is not None and rate >= r.completion_target:
                self._low_queues.discard(name)  # recovered: the next dip alerts again
        return out

    def emergency(self, ticket_id: int, number: str, title: str, at: float) -> list[Alert]:
        if ticket_id in self._seen_tickets:
            return []
        self._seen_tickets.add(ticket_id)
        return self._raise("emergency", f"ticket:{ticket_id}", at, f"{number or ticket_id} {title}",
                           ticket_id=ticket_id)

    # ------------------------------------------------------------------ the lead

    def ack(self, alert_id: int, by: str, now: float) -> Alert:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise LookupError("告警不存在或已过期")
        if alert.acked_at is None:
            alert.acked_by, alert.acked_at = by, now
            self._open_keys.pop(alert.key, None)
        return alert

    def adopt(self, view: Mapping[str, Any]) -> Alert:
        """An alert the node on duty raised or acknowledged (agent_ui.lead: its view, as the bus
        carried it), kept as if raised here: this node lists it, and raises its own above it if it
        takes the duty over."""
        alert = Alert(**{f.name: view[f.name] for f in fields(Alert) if f.name in view})
        self.alerts[alert.id] = alert
        self._know(alert.key, alert.at)
        if alert.ticket_id is not None:  # the emergency poll, on this node once on duty, knows it too
            self._seen_tickets.add(alert.ticket_id)
        if alert.acked_at is None:
            self._open_keys[alert.key] = alert.id
        elif self._open_keys.get(alert.key) == alert.id:
            del self._open_keys[alert.key]
        if alert.id >= self._floor:
            self._floor = alert.id + 1
            self._ids = itertools.count(self._floor)
        self._trim()
        return alert

    def listing(self) -> list[dict[str, Any]]:
        """Open alerts first (newest first), then acknowledged ones."""
        return [a.view() for a in sorted(self.alerts.values(), key=lambda a: (a.acked_at is not None, -a.id))]


def _mmss(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"
