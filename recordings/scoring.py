"""QA scoring forms: the check items (weights set by admins), filed scores that are never edited
(a correction is a new version with its reason), and per-operator / per-team results.

The arithmetic is pure (:func:`total`); the rest is thin database code.

>>> items = [Item("opening", "开头语", 10), Item("closing", "结束语", 10)]
>>> total(items, {"opening": {"points": 8}, "closing": {"points": 10}})
(18.0, 20.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from recordings.models import QaCheckItem, QaScore, Recording, utcnow

# The check items of the seeds (000: 应答/查询准确度, 受理规范度, 投诉处理效果; 002: the 11 work
# standards). Weights sum to 100; admins change them.
DEFAULT_ITEMS: list[tuple[str, str, int, str]] = [
    ("opening", "开头语", 8, "报读“您好！XX热线，XX号话务员为您服务”，清晰、准确，体现良好精神面貌"),
    ("closing", "结束语", 6, "适时礼貌报读“感谢您的来电，再见”，精神状态与开头语一致"),
    ("polite", "文明规范用语", 8, "适时使用“您”“您好”“请问”“请讲”，不口语化、不使用网络语言"),
    ("tone", "语气语调语速", 6, "语气、语调亲和，语速适中"),
    ("clarity", "吐字清晰、普通话", 4, "吐字、音量以满足来电人需要为宜"),
    ("answer_accuracy", "应答准确度", 12, "对来电人的问题作出清晰准确的解答，不提供错误答案"),
    ("lookup_accuracy", "查询准确度", 8, "及时正确查询知识库并规范解释"),
    ("intake", "受理规范度", 10, "按规范受理，工单分类正确，重复诉求不重复建单"),
    ("complaint_outcome", "投诉处理效果", 6, "执行首问负责制，无法当场答复的留下联系方式并跟进"),
    ("process", "执行流程", 6, "按照规定流程解答处理来话问题"),
    ("communication", "沟通技巧", 8, "准确理解诉求、有效提问、耐心倾听、正确引导；不抢话"),
    ("attitude", "服务态度", 6, "态度积极，及时接话；杜绝生、冷、硬、顶"),
    ("ticket_writing", "工单书写", 6, "客观记录姓名、时间、地点、事件详细内容，分类准确"),
    ("taboo", "通话禁忌", 6, "不使用禁用语（喂、哦、我不知道、这是规定我没办法、你自己去XX部门问吧、说完了没有）"),
]


class ScoreError(ValueError):
    """A form that cannot be filed; the message is for the QA user (Chinese)."""


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    name: str
    weight: int


def total(items: list[Item], marks: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """(points, maximum) of a form. Every item must be marked, 0 ≤ points ≤ its weight."""
    known = {i.code for i in items}
    unknown = sorted(set(marks) - known)
    if unknown:
        raise ScoreError(f"未知的检查项：{'、'.join(unknown)}")
    points = 0.0
    for item in items:
        mark = marks.get(item.code)
        if mark is None or mark.get("points") is None:
            raise ScoreError(f"“{item.name}”未评分")
        try:
            p = float(mark["points"])
        except (TypeError, ValueError):
            raise ScoreError(f"“{item.name}”的分数不是数字") from None
        if not 0 <= p <= item.weight:
            raise ScoreError(f"“{item.name}”的分数应在 0 到 {item.weight} 之间")
        points += p
    return round(points, 2), float(sum(i.weight for i in items))


# ------------------------------------------------------------------ database


def ensure_items(session: Session) -> None:
    """The default check items, once (admins edit weights afterwards)."""
    if session.exec(select(QaCheckItem)).first() is None:
        for pos, (code, name, weight, guidance) in enumerate(DEFAULT_ITEMS):
            session.add(QaCheckItem(code=code, name=name, weight=weight, guidance=guidance, position=pos))
        session.commit()


def items(session: Session) -> list[QaCheckItem]:
    ensure_items(session)
    return list(session.exec(select(QaCheckItem).where(QaCheckItem.active).order_by(QaCheckItem.position)))


def set_weights(session: Session, weights: dict[str, int]) -> list[QaCheckItem]:
    """Admins: new weights (filed scores keep the weights they were filed with, in ``marks``)."""
    current = {i.code: i for i in items(session)}
    for code, w in weights.items():
        if code not in current:
            raise ScoreError(f"未知的检查项：{code}")
        if not 0 <= int(w) <= 100:
            raise ScoreError("权重应在 0 到 100 之间")
        current[code].weight = int(w)
        session.add(current[code])
    session.commit()
    return items(session)


def file_score(session: Session, *, recording_id: int, scorer: str, marks: dict[str, dict[str, Any]],
               comment: str = "", team: str = "", supersedes: int | None = None, reason: str = "") -> QaScore:
    """File a form. A recording already scored takes only a correction: ``supersedes`` names the
    current version and ``reason`` says why; the old version stays, marked superseded."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        raise ScoreError("录音不存在")
    form = [Item(i.code, i.name, i.weight) for i in items(session)]
    points, maximum = total(form, marks)
    current = session.exec(select(QaScore).where(QaScore.recording_id == recording_id,
                                                 sa.not_(QaScore.superseded))).first()
    version = 1
    if current is not None:
        if supersedes != current.id:
            raise ScoreError(f"该录音已评分（第 {current.version} 版），更正请基于当前版本提交")
        if not reason.strip():
            raise ScoreError("更正评分须填写原因")
        # the only change ever made to a filed score: pointing it at its successor, guarded so
        # two correctors cannot both supersede the same version
        n = session.execute(sa.update(QaScore).where(QaScore.id == current.id, sa.not_(QaScore.superseded))
                            .values(superseded=True)).rowcount
        if n != 1:
            raise ScoreError("该评分刚被他人更正，请刷新后重试")
        version = current.version + 1
    elif supersedes is not None:
        raise ScoreError("要更正的评分不存在")
    weights = {i.code: i.weight for i in form}
    stored = {code: {"points": float(m["points"]), "weight": weights[code], "comment": str(m.get("comment", ""))}
              for code, m in marks.items()}
    score = QaScore(recording_id=recording_id, version=version, supersedes_id=current.id if current else None,
                    reason=reason.strip(), operator=rec.operator, team=team, scorer=scorer, filed_at=utcnow(),
                    total=points, max_total=maximum, marks=stored, comment=comment)
    session.add(score)
    session.commit()
    session.refresh(score)
    return score


def history(session: Session, recording_id: int) -> list[QaScore]:
    return list(session.exec(select(QaScore).where(QaScore.recording_id == recording_id).order_by(QaScore.version)))


def results(engine: sa.Engine, by: str = "operator", since: datetime | None = None,
            until: datetime | None = None) -> list[dict[str, Any]]:
    """Current scores (latest versions) grouped per operator or per team: count, average and
    lowest score in percent, for the lead's reports."""
    key = {"operator": QaScore.operator, "team": QaScore.team}.get(by)
    if key is None:
        raise ScoreError("分组只能是 operator 或 team")
    pct = QaScore.total * 100.0 / sa.func.nullif(QaScore.max_total, 0)
    q = (sa.select(key.label("key"), sa.func.count().label("scored"), sa.func.avg(pct).label("average"),
                   sa.func.min(pct).label("lowest"))
         .where(sa.not_(QaScore.superseded)).group_by(key).order_by(key))
    if since is not None:
        q = q.where(QaScore.filed_at >= since)
    if until is not None:
        q = q.where(QaScore.filed_at < until)
    with engine.connect() as conn:
        return [{by: r.key, "scored": r.scored, "average": round(float(r.average or 0), 1),
                 "lowest": round(float(r.lowest or 0), 1)} for r in conn.execute(q)]
