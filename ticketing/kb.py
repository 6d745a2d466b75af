"""The knowledge base (知识库): what operators answer from, and the gaps they report (查无信息)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing import search
from ticketing.context import StoreContext, role_of
from ticketing.directory import Directory
from ticketing.models import Article, MissingInfo
from ticketing.schemas import (
    Actor,
    ArticleCreate,
    ArticleRead,
    Forbidden,
    MissingCreate,
    MissingRead,
    NotFound,
    parse,
)


class KnowledgeBase:
    def __init__(self, ctx: StoreContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory

    def search(self, q: str = "", topic: str = "", limit: int = 20) -> list[ArticleRead]:
        stmt = select(Article)
        cond = search.text_condition(self.ctx.dialect, Article.__table__, q)
        if cond is not None:
            stmt = stmt.where(cond)
        if topic:
            stmt = stmt.where(Article.topic == topic)
        with Session(self.ctx.engine) as s:
            return [
                ArticleRead.model_validate(a, from_attributes=True)
                for a in s.exec(
                    stmt.order_by(Article.updated_at.desc(), Article.id.desc()).limit(max(1, min(limit, 100)))
                )
            ]

    def get(self, article_id: int) -> ArticleRead:
        with Session(self.ctx.engine) as s:
            a = s.get(Article, article_id)
            if a is None:
                raise NotFound("知识条目不存在")
            return ArticleRead.model_validate(a, from_attributes=True)

    def save(
        self,
        data: ArticleCreate | Mapping[str, Any] | bytes | str,
        actor: Actor,
        article_id: int | None = None,
    ) -> ArticleRead:
        """Write an article; ``resolves`` closes the 查无信息 requests it answers."""
        if role_of(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以编辑知识库")
        body = data if isinstance(data, ArticleCreate) else parse(ArticleCreate, data)
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            if body.department_id is not None:
                self.directory.require_active(s, [body.department_id])
            fields = body.model_dump(exclude={"resolves"})
            if article_id is None:
                a = Article(**fields)
                s.add(a)
            else:
                a = s.get(Article, article_id)
                if a is None:
                    raise NotFound("知识条目不存在")
                for k, v in fields.items():
                    setattr(a, k, v)
            a.search_text = search.build_text(a.title, a.topic, a.tags, a.body)
            a.updated_at, a.updated_by = now, actor.username
            s.flush()
            for mid in body.resolves:
                m = s.get(MissingInfo, mid)
                if m is None:
                    raise NotFound(f"查无信息记录{mid}不存在")
                m.article_id, m.resolved_at = a.id, now
            return ArticleRead.model_validate(a, from_attributes=True)

    def report_missing(self, data: MissingCreate | Mapping[str, Any] | bytes | str, actor: Actor) -> MissingRead:
        """查无信息: the operator found nothing; an editor will fill the gap."""
        body = data if isinstance(data, MissingCreate) else parse(MissingCreate, data)
        with session_scope(self.ctx.engine) as s:
            m = MissingInfo(query=body.query, note=body.note, asked_by=actor.username, asked_at=self.ctx.clock())
            s.add(m)
            s.flush()
            return MissingRead.model_validate(m, from_attributes=True)

    def missing(self, open_only: bool = True) -> list[MissingRead]:
        stmt = select(MissingInfo)
        if open_only:
            stmt = stmt.where(MissingInfo.resolved_at.is_(None))
        with Session(self.ctx.engine) as s:
            return [
                MissingRead.model_validate(m, from_attributes=True)
                for m in s.exec(stmt.order_by(MissingInfo.id.desc()))
            ]
