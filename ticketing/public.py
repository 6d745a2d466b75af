"""What a citizen may learn of their own ticket without an account (公众查询): its state in plain
words, the department's reply and the dates, with the ticket number and the query code given at
intake. Nothing else: no names, numbers, addresses or the history's internals.

A wrong code and an unknown number are the same answer (None), and the code is compared in
constant time, so trying codes tells nothing but "no". Rate limits are the web room's.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing import steps
from ticketing.context import StoreContext
from ticketing.models import Satisfaction, Status, Ticket
from ticketing.schemas import InvalidInput, SystemActor

# the state as a citizen would say it
PLAIN = {
    Status.DRAFT: "正在受理",
    Status.REGISTERED: "已受理，正在分派承办单位",
    Status.TRANSFERRED: "已转交承办单位",
    Status.RETURNED: "正在重新分派承办单位",
    Status.ACCEPTED: "承办单位已签收，正在办理",
    Status.IN_PROGRESS: "承办单位正在办理",
    Status.EXTENSION_REQUESTED: "承办单位正在办理",
    Status.REPLIED: "承办单位已答复，等待回访",
    Status.SATISFIED: "已回访",
    Status.UNSATISFIED: "已回访，正在重新办理",
    Status.CLOSED: "已办结",
    Status.ARCHIVED: "已办结",
}
RATINGS = (Satisfaction.SATISFIED.value, Satisfaction.BASIC.value, Satisfaction.UNSATISFIED.value)
RATABLE = (Status.REPLIED, Status.SATISFIED, Status.UNSATISFIED, Status.CLOSED)


@dataclass(frozen=True, slots=True)
class PublicStatus:
    number: str
    title: str
    state: str  # plain words
    received: datetime
    due: datetime | None  # when the department is to finish, while it is with them
    reply: str  # the department's reply, once given
    replied: datetime | None
    closed: datetime | None
    rating: str  # the citizen's own rating, once given
    may_rate: bool


class PublicDesk:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def status(self, number: str, code: str) -> PublicStatus | None:
        with Session(self.ctx.engine) as s:
            t = self._find(s, number, code)
            return _public(t) if t is not None else None

    def rate(self, number: str, code: str, rating: str) -> PublicStatus | None:
        """The citizen rates the reply (满意 / 基本满意 / 不满意): kept on the ticket and in its history."""
        if rating not in RATINGS:
            raise InvalidInput(["评价须为：" + "、".join(RATINGS)])
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            t = self._find(s, number, code)
            if t is None:
                return None
            if Status(t.status) not in RATABLE:
                raise InvalidInput(["承办单位答复后才能评价"])
            t.citizen_rating = rating
            steps.record_event(s, t, SystemActor("citizen", "citizen"), "citizen_rating", t.status, t.status, now,
                               f"市民在公众查询页评价：{rating}")
            return _public(t)

    def _find(self, s: Session, number: str, code: str) -> Ticket | None:
        number, code = number.strip(), code.strip()
        if not (number.isdigit() and code.isdigit() and len(number) <= 20 and len(code) <= 16):
            return None
        t = s.exec(select(Ticket).where(Ticket.number == number)).first()
        # compared in constant time even when there is no such ticket: the answer's time says nothing
        expected = t.query_code if t is not None and t.query_code else "\0" * 6
        return t if hmac.compare_digest(expected.encode(), code.encode()) and t is not None else None


def _public(t: Ticket) -> PublicStatus:
    with_department = t.status in (Status.TRANSFERRED, Status.ACCEPTED, Status.IN_PROGRESS,
                                   Status.EXTENSION_REQUESTED)
    return PublicStatus(number=t.number or "", title=t.title, state=PLAIN[Status(t.status)], received=t.created_at,
                        due=t.due_at if with_department else None, reply=t.reply_text if t.replied_at else "",
                        replied=t.replied_at, closed=t.closed_at, rating=t.citizen_rating,
                        may_rate=Status(t.status) in RATABLE and not t.citizen_rating)
