"""One bridge's live picture, and the centre's picture made of every bridge's (issue #15). Pure.

An active bridge posts its picture (:func:`picture`) twice a second on the board beside the bus
(hotline/board.py); a web node without the bridge shows :func:`merge` of every Asterisk server's
latest one. The views are the bridge's own (``queue_views``, ``seat_views``, ``call_views``), so a
page looks the same whichever node serves it. A queue that several servers serve is one queue of
the centre: its figures are summed from the counts each picture carries, never averaged from
percentages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cti.state import CtiState
from cti.stats import Figures

SUMMED = ("waiting", "seats_ready", "seats_busy", "seats_on_call", "seats_ringing", "seats_wrap_up", "answered",
          "abandoned", "abandoned_24h")
COUNTS = ("offered_today", "answered", "within_rule_today", "offered_24h", "answered_24h", "within_rule_24h")


def picture(state: CtiState, *, server: str, queues: Iterable[str], owned: Iterable[str], now: float,
            logged_in: bool, leader: Mapping[str, Any] | None = None, system_name: str = "") -> dict[str, Any]:
    """What one active bridge knows now, JSON-ready. ``owned``: the seats this Asterisk server
    serves (its ``HOTLINE_SEATS``): call control for them goes to this bridge."""
    views = state.queue_views(now, queues=queues)
    counts = {q["queue"]: _counts(state.figures(q["queue"], now)) for q in views}
    return {
        "server": server, "at": now, "logged_in": logged_in, "leader": dict(leader or {}), "system_name": system_name,
        "queues": views, "counts": counts, "seats": state.seat_views(now), "calls": state.call_views(now),
        "owned": sorted(set(owned)),
        "roster": state.operator_seats(), "roster_version": state.roster_version,
        "job_numbers": {s.seat: s.job_number for s in state.seats.values() if s.signed_in and s.job_number},
    }


def seat_now(state: CtiState, seat: str, *, now: float, roster: bool = False) -> dict[str, Any] | None:
    """One seat's part of :func:`picture` as it stands now: what a bridge answers the web node that
    asked for an action on the seat, so that the operator's page, reloaded next, shows what the
    click did without waiting for the next whole picture (some 100 kB at 200 seats) and reading
    every server's again (issue #15). None for a seat Asterisk never mentioned.

    ``roster``: with who sits where (an action that changed it: a sign-in, a sign-out). The whole
    roster, not the seat's line of it: a node that patched one line onto its older copy would stamp
    sign-ins still on their way over the bus as older, and drop them."""
    view = state.seat_view(seat, now)
    if view is None:
        return None
    s = state.seats[seat]
    out = {"at": now, "view": view, "job_number": s.job_number if s.signed_in else ""}
    if roster:
        out["roster"] = state.operator_seats()
    return out


def patched(centre: Centre, patches: Mapping[str, Mapping[str, Any]]) -> Centre:
    """``centre`` with the seats whose bridges answered for them after their last pictures (seat →
    its :func:`seat_now` and the ``server`` that answered)."""
    if not patches:
        return centre
    seats = [s for s in centre.seats if s["seat"] not in patches]
    seats.extend(_shown(p) for p in patches.values())
    seats.sort(key=lambda s: s["seat"])
    return replace(centre, seats=seats, job_numbers=_job_numbers(centre.job_numbers, patches))


def patched_at(centre: Centre, i: int, seat: str, patch: Mapping[str, Any]) -> Centre:
    """:func:`patched` for one more answered seat, whose entry is ``centre.seats[i]`` (and no other):
    that entry replaced, not every seat's copied and sorted again."""
    seats = list(centre.seats)
    seats[i] = _shown(patch)
    return replace(centre, seats=seats, job_numbers=_job_numbers(centre.job_numbers, {seat: patch}))


def _shown(patch: Mapping[str, Any]) -> dict[str, Any]:
    return {**patch["view"], "server": patch["server"]}


def _job_numbers(held: Mapping[str, str], patches: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    out = {seat: n for seat, n in held.items() if seat not in patches}
    out.update((seat, p["job_number"]) for seat, p in patches.items() if p.get("job_number"))
    return out


def _counts(f: Figures) -> dict[str, int]:
    return {name: getattr(f, name) for name in COUNTS}


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 2) if b else None


@dataclass(frozen=True, slots=True)
class Centre:
    """Every server's picture as one: what the web room's live views show."""

    queues: list[dict[str, Any]] = field(default_factory=list)
    seats: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # seat → the servers that claim it
    job_numbers: dict[str, str] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → at, logged_in, leader

    def owner(self, seat: str) -> str | None:
        """The one server that drives ``seat``; None when none does, ``ValueError`` when two claim it."""
        found = self.owners.get(seat, ())
        if len(found) > 1:
            raise ValueError(f"坐席 {seat} 同时配置在交换机 {'、'.join(found)} 上，请管理员检查各节点的 HOTLINE_SEATS")
        return found[0] if found else None


def merge(pictures: Mapping[str, Mapping[str, Any]]) -> Centre:
    """The centre's views from each server's latest picture (ordered by server name)."""
    queues: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, int]] = {}
    seats: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    owners: dict[str, list[str]] = {}
    job_numbers: dict[str, str] = {}
    servers: dict[str, dict[str, Any]] = {}
    for name in sorted(pictures):
        p = pictures[name]
        servers[name] = {"at": p.get("at", 0.0), "logged_in": bool(p.get("logged_in")), "leader": p.get("leader", {}),
                         "system_name": p.get("system_name", "")}
        for q in p.get("queues", ()):
            _add_queue(queues, counts, q, p.get("counts", {}).get(q["queue"], {}))
        seats.extend({**s, "server": name} for s in p.get("seats", ()))
        calls.extend({**c, "server": name} for c in p.get("calls", ()))
        for seat in p.get("owned", ()):
            owners.setdefault(seat, []).append(name)
        job_numbers.update(p.get("job_numbers", {}))
    for q, c in counts.items():
        view = queues[q]
        view["pct_within_rule_today"] = _pct(c["within_rule_today"], c["answered"])
        view["pct_within_rule_24h"] = _pct(c["within_rule_24h"], c["answered_24h"])
        view["completion_24h"] = _pct(c["answered_24h"], c["offered_24h"])
    seats.sort(key=lambda s: s["seat"])
    return Centre([queues[q] for q in sorted(queues)], seats, calls, {s: tuple(o) for s, o in owners.items()},
                  job_numbers, servers)


def _add_queue(queues: dict[str, dict[str, Any]], counts: dict[str, dict[str, int]], view: Mapping[str, Any],
               mine: Mapping[str, int]) -> None:
    name = view["queue"]
    total = counts.setdefault(name, dict.fromkeys(COUNTS, 0))
    for k in COUNTS:
        total[k] += int(mine.get(k, 0))
    if name not in queues:
        queues[name] = {**view, "abandoned_waits_ms_24h": list(view.get("abandoned_waits_ms_24h", ()))}
        return
    into = queues[name]
    for k in SUMMED:
        into[k] = into.get(k, 0) + view.get(k, 0)
    into["longest_wait_s"] = max(into.get("longest_wait_s", 0.0), view.get("longest_wait_s", 0.0))
    into["abandoned_waits_ms_24h"] = sorted([*into["abandoned_waits_ms_24h"], *view.get("abandoned_waits_ms_24h", ())])


def unnamed(centre: Centre) -> list[str]:
    """The servers whose uniqueids could collide with another's: with more than one, each needs a
    systemname of its own (HOTLINE_ASTERISK_SYSTEMNAME), or the call log loses calls."""
    if len(centre.servers) < 2:
        return []
    names = [s.get("system_name", "") for s in centre.servers.values()]
    return [n for n, s in centre.servers.items() if not s.get("system_name") or names.count(s["system_name"]) > 1]


def roster_of(pictures: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """operator username → seat, over every server."""
    out: dict[str, str] = {}
    for name in sorted(pictures):
        out.update(pictures[name].get("roster", {}))
    return out
