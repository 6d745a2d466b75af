"""Report figures (004 §5.6, 003 篇10 附件2): pure functions over the call log and ticket facts.

Everything here takes plain data (``/api/calls`` dicts, the ticket store's
:class:`~ticketing.digest.TicketFact`) and a period, and
returns plain dicts, so a hand-computed fixture can check every number. Reading is at the edge:
:func:`load_calls` pages the call log, the ticket facts come from ``Store.digest.facts``, the seat
spells and the hand-entered assessment items from the lead's store (``LeadStore.spells`` /
``LeadStore.entered``), the other channels' 3-minute figures from ``Store.intake`` (:func:`load_intake`).
Periods are half-open ``[start, end)`` in the centre's local time; the previous period is the same
length immediately before, so a report always shows "this period / previous period" side by side.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ticketing.digest import TicketFact
from ticketing.intake import RESPOND_WITHIN

TARGET_WITHIN_RULE = 95.0  # % of answered calls picked up within 15 s
TARGET_COMPLETION = 95.0  # % of offered calls answered (24 h)
TARGET_INTAKE = 95.0  # % of web/WeChat/SMS submissions handled within 3 minutes (004 §5.1.2.3)
SURVEY_SATISFIED = (1, 2)  # the IVR survey: 1 满意, 2 基本满意, 3 不满意


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive

    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)

    def __contains__(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    @property
    def label(self) -> str:
        last = self.end - timedelta(seconds=1)
        a, b = self.start.date().isoformat(), last.date().isoformat()
        return a if a == b else f"{a} 至 {b}"


def period_for(kind: str, day: date, tz: ZoneInfo, until: date | None = None) -> Period:
    """日报 / 周报 (Monday-based) / 月报 / any range of whole days (``until`` inclusive)."""
    if kind == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    elif kind == "month":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    elif kind == "range":
        first, last = day, (until or day) + timedelta(days=1)
    else:
        first, last = day, day + timedelta(days=1)
    return Period(datetime(first.year, first.month, first.day, tzinfo=tz),
                  datetime(last.year, last.month, last.day, tzinfo=tz))


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _when(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------ calls

def state_seconds(spells: Iterable[Mapping[str, Any]], period: Period) -> dict[str, Counter[str]]:
    """Seconds per operator per seat state (busy, wrap_up…), the part of each spell inside the period."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for sp in spells:
        start, end = _when(sp["started_at"]), _when(sp["ended_at"])
        if start is None or end is None or not sp.get("operator"):
            continue
        overlap = (min(end, period.end) - max(start, period.start)).total_seconds()
        if overlap > 0:
            out[str(sp["operator"])][str(sp["state"])] += overlap
    return out


def call_figures(calls: Iterable[Mapping[str, Any]], period: Period, tz: ZoneInfo,
                 qa_scores: Mapping[str, float] | None = None,
                 spells: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Volumes by hour, service level, abandon rate, average wait and talk, per operator (with the
    time they spent busy and in wrap-up, from the seat state ``spells``).

    Lost calls (Asterisk stopped under them) are neither answered nor abandoned: left out.
    """
    mine = [c for c in calls if not c.get("lost") and _when(c.get("offered")) in period]
    answered = [c for c in mine if c.get("answered")]
    abandoned = [c for c in mine if c.get("abandoned") and not c.get("answered")]
    within = [c for c in answered if c.get("within_15s")]
    by_hour = [0] * 24
    for c in mine:
        by_hour[_when(c["offered"]).astimezone(tz).hour] += 1  # type: ignore[union-attr]
    by_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # day → [answered, within rule]
    for c in answered:
        day = _when(c["offered"]).astimezone(tz).date().isoformat()  # type: ignore[union-attr]
        by_day[day][0] += 1
        by_day[day][1] += bool(c.get("within_15s"))
    surveys = Counter(c["survey"] for c in mine if c.get("survey") in (1, 2, 3))
    operators: dict[str, dict[str, Any]] = {}
    for c in answered:
        name = c.get("operator") or c.get("seat") or "未知"
        op = operators.setdefault(name, {"operator": name, "calls": 0, "talk_s": 0.0, "within": 0,
                                         "surveys": Counter()})
        op["calls"] += 1
        op["talk_s"] += float(c.get("talk_s") or 0)
        op["within"] += bool(c.get("within_15s"))
        if c.get("survey") in (1, 2, 3):
            op["surveys"][c["survey"]] += 1
    states = state_seconds(spells, period)
    for name in states:
        operators.setdefault(name, {"operator": name, "calls": 0, "talk_s": 0.0, "within": 0, "surveys": Counter()})
    per_operator = []
    for name in sorted(operators):
        op = operators[name]
        rated = sum(op["surveys"].values())
        per_operator.append({
            "operator": name, "calls": op["calls"], "talk_s": round(op["talk_s"], 1),
            "avg_talk_s": round(op["talk_s"] / op["calls"], 1) if op["calls"] else None,
            "busy_s": round(states[name]["busy"], 1), "wrap_up_s": round(states[name]["wrap_up"], 1),
            "pct_within_rule": pct(op["within"], op["calls"]),
            "surveys": rated, "satisfied": sum(op["surveys"][k] for k in SURVEY_SATISFIED),
            "pct_satisfied": pct(sum(op["surveys"][k] for k in SURVEY_SATISFIED), rated),
            "qa_score": (qa_scores or {}).get(name),
        })
    rated = sum(surveys.values())
    return {
        "offered": len(mine),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "within_rule": len(within),
        "pct_within_rule": pct(len(within), len(answered)),
        "pct_completion": pct(len(answered), len(mine)),
        "pct_abandoned": pct(len(abandoned), len(mine)),
        "avg_wait_s": _mean([float(c["wait_s"]) for c in answered if c.get("wait_s") is not None]),
        "avg_talk_s": _mean([float(c.get("talk_s") or 0) for c in answered]),
        "by_hour": by_hour,
        "service_by_day": [{"day": d, "answered": a, "pct_within_rule": pct(w, a)}
                           for d, (a, w) in sorted(by_day.items())],
        "surveys": rated,
        "pct_satisfied": pct(sum(surveys[k] for k in SURVEY_SATISFIED), rated),
        "per_operator": per_operator,
    }


# ---------------------------------------------------------------------------------------- tickets

def on_time(t: TicketFact, now: datetime) -> bool | None:
    """Replied by its deadline? None while it is still open and not yet due (not judged)."""
    if t.due_at is None:
        return None
    if t.replied_at is not None:
        return t.replied_at <= t.due_at
    return False if now > t.due_at else None


def ticket_figures(tickets: Iterable[TicketFact], period: Period, now: datetime) -> dict[str, Any]:
    mine = [t for t in tickets if t.created_at in period]
    judged = [v for v in (on_time(t, now) for t in mine) if v is not None]
    rated = [t.satisfaction for t in mine if t.satisfaction]
    good = sum(s in ("非常满意", "满意", "基本满意") for s in rated)

    def count(key: str) -> list[dict[str, Any]]:
        tally = Counter(getattr(t, key) or "（未填）" for t in mine)
        return [{"name": k, "count": v} for k, v in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {
        "tickets": len(mine),
        "by_category": count("category"),
        "by_department": count("department"),
        "by_district": count("district"),
        "by_mode": count("handling_mode"),
        "judged": len(judged),
        "on_time": sum(judged),
        "pct_on_time": pct(sum(judged), len(judged)),
        "rated": len(rated),
        "pct_satisfied": pct(good, len(rated)),
        "satisfaction": dict(Counter(rated)),
    }


# ------------------------------------------------------------------------- the other channels

NO_INTAKE = {"received": 0, "handled": 0, "on_time": 0, "late": 0, "pct_on_time": None,
             "target_s": int(RESPOND_WITHIN.total_seconds())}


def intake_figures(figures: Mapping[str, Any] | None) -> dict[str, Any]:
    """The period's part of ``Store.intake.figures``: submissions received in it, handled within
    the 3 minutes or not (one still waiting past its mark is late). What waits *now* is the
    wallboard's, not a period's."""
    got = figures or {}
    return {k: got.get(k, empty) for k, empty in NO_INTAKE.items()}


# ----------------------------------------------------------------------- department assessment

DEDUCTIONS = {  # key → (label, points per occurrence)
    "overdue": ("超期工单", 1),
    "repeat_complaints": ("办理不力引发重复投诉", 1),
    "returned": ("退回/重办工单", 1),
    "false_reports": ("虚假办结", 1),
    "late_acceptance": ("签收超时", 1),
    "county_circulars": ("县级通报", 5),
    "city_circulars": ("市级通报", 10),
}
MANUAL = ("repeat_complaints", "false_reports", "county_circulars", "city_circulars", "county_commendations",
          "city_commendations")  # what the ticket store cannot count: the centre enters it

BONUSES = {
    "very_satisfied": ("回访非常满意", 1),
    "county_commendations": ("县级表扬", 5),
    "city_commendations": ("市级表扬", 10),
}


@dataclass(slots=True)
class DepartmentTally:
    """One department's counts over the period. Circulars, commendations and false reports are
    entered by the centre (the ticket store does not know them); the rest are counted."""

    department: str
    leadership: float = 10.0  # 组织领导, out of 10
    rules: float = 10.0  # 制度建设, out of 10
    counts: Counter[str] = field(default_factory=Counter)


def assess(tally: DepartmentTally) -> dict[str, Any]:
    """Base 100 = leadership 10 + rules 10 + results 80; −1 / −5 / −10 and +1 / +5 / +10 per item.

    The results part is floored at 0 (it cannot eat into the other two parts); bonuses may take the
    total above 100, as commendations are meant to.
    """
    deductions = [{"item": label, "count": tally.counts[key], "points": -pts * tally.counts[key]}
                  for key, (label, pts) in DEDUCTIONS.items() if tally.counts[key]]
    bonuses = [{"item": label, "count": tally.counts[key], "points": pts * tally.counts[key]}
               for key, (label, pts) in BONUSES.items() if tally.counts[key]]
    results = max(0.0, 80.0 + sum(d["points"] for d in deductions) + sum(b["points"] for b in bonuses))
    return {"department": tally.department, "leadership": tally.leadership, "rules": tally.rules,
            "results": results, "score": round(tally.leadership + tally.rules + results, 1),
            "deductions": deductions, "bonuses": bonuses}


def department_tallies(tickets: Iterable[TicketFact], period: Period, now: datetime,
                       entered: Mapping[str, Mapping[str, int]] | None = None) -> list[DepartmentTally]:
    """Counted from the tickets created in the period, plus what the centre ``entered`` by hand."""
    tallies: dict[str, DepartmentTally] = {}
    for t in tickets:
        if not t.department or t.created_at not in period:
            continue
        c = tallies.setdefault(t.department, DepartmentTally(t.department)).counts
        c["overdue"] += on_time(t, now) is False
        c["returned"] += t.returns + t.redo_count
        c["late_acceptance"] += bool(t.accept_due and ((t.accepted_at or now) > t.accept_due))
        c["very_satisfied"] += t.satisfaction == "非常满意"
    for name, extra in (entered or {}).items():
        tallies.setdefault(name, DepartmentTally(name)).counts.update(dict(extra))
    return [tallies[k] for k in sorted(tallies)]


# -------------------------------------------------------------------------------------- hotspots

_STOP = frozenset(str.split(
    "的 了 在 是 我 有 和 就 不 人 都 一 一个 上 也 很 到 说 要 去 你 会 着 没有 看 好 自己 这 那 "
    "问题 反映 市民 来电 希望 要求 请求 咨询 情况 相关 部门 处理 解决 现在 已经 没有 一直 什么 "
    "我们 他们 可以 因为 所以 这个 那个 还是 时间 今天 昨天 晚上 小区"))


def keywords(text: str) -> list[str]:
    import jieba

    return [w for w in jieba.lcut(text) if len(w) >= 2 and w not in _STOP and not re.fullmatch(r"[\W\d_]+", w)]


def hotspots(tickets: Iterable[TicketFact], period: Period, tz: ZoneInfo, top: int = 10) -> dict[str, Any]:
    """Keywords by district and by ISO week in the period; rising topics against the previous one."""
    previous = period.previous()
    now_counts: Counter[str] = Counter()
    before: Counter[str] = Counter()
    by_place: dict[str, Counter[str]] = defaultdict(Counter)
    by_week: dict[str, Counter[str]] = defaultdict(Counter)
    for t in tickets:
        in_now, in_before = t.created_at in period, t.created_at in previous
        if not (in_now or in_before):
            continue
        words = set(keywords(f"{t.title} {t.text}"))  # a ticket counts once per word
        if in_before:
            before.update(words)
            continue
        now_counts.update(words)
        by_place[t.district or "（未填）"].update(words)
        year, week, _ = t.created_at.astimezone(tz).isocalendar()
        by_week[f"{year}-W{week:02d}"].update(words)
    rising = [{"word": w, "count": n, "previous": before[w], "change": n - before[w]}
              for w, n in now_counts.items() if n >= 2 and n > before[w]]
    rising.sort(key=lambda r: (-r["change"], -r["count"], r["word"]))

    def tops(groups: dict[str, Counter[str]]) -> list[dict[str, Any]]:
        return [{"name": k, "words": [{"word": w, "count": n} for w, n in sorted(
            v.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]} for k, v in sorted(groups.items())]

    return {"top": [{"word": w, "count": n} for w, n in sorted(now_counts.items(),
                                                              key=lambda kv: (-kv[1], kv[0]))[:top]],
            "by_place": tops(by_place), "by_week": tops(by_week), "rising": rising[:top]}


# ---------------------------------------------------------------------------------- whole report

def report(calls: Sequence[Mapping[str, Any]], tickets: Sequence[TicketFact], period: Period, tz: ZoneInfo,
           now: datetime, qa_scores: Mapping[str, float] | None = None,
           entered: Mapping[str, Mapping[str, int]] | None = None,
           spells: Sequence[Mapping[str, Any]] = (),
           intake: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``intake``: :func:`load_intake`'s figures of this period and the previous one."""
    previous = period.previous()
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label},
        "previous": {"start": previous.start.isoformat(), "end": previous.end.isoformat(),
                     "label": previous.label},
        "calls": call_figures(calls, period, tz, qa_scores, spells),
        "calls_previous": call_figures(calls, previous, tz, qa_scores, spells),
        "tickets": ticket_figures(tickets, period, now),
        "tickets_previous": ticket_figures(tickets, previous, now),
        "intake": intake_figures(intake[0] if intake else None),
        "intake_previous": intake_figures(intake[1] if intake else None),
        "departments": [assess(t) for t in department_tallies(tickets, period, now, entered)],
        "hotspots": hotspots(tickets, period, tz),
    }


# ------------------------------------------------------------------------------------ the edges

def load_calls(call_log: Any, period: Period) -> list[dict[str, Any]]:
    """Both periods' calls from ticketing's call log."""
    return call_log.between(period.previous().start, period.end)


def load_intake(intake: Any, period: Period) -> tuple[dict[str, Any], dict[str, Any]]:
    """This period's and the previous one's 3-minute figures from ticketing's intake."""
    return intake.figures(period.start, period.end), intake.figures(period.previous().start, period.start)
