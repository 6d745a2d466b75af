"""Chinese full text behind one interface, on SQLite and PostgreSQL.

Every searchable table has a ``search_text`` column. SQLite: an FTS5 ``trigram`` index answers
terms of three characters or more; it cannot match shorter ones (停水), so those go to
``instr`` on the base table. PostgreSQL: a ``pg_trgm`` GIN index answers ``LIKE '%term%'`` for
three characters or more (the database must have a UTF-8 ``LC_CTYPE``, or CJK characters make
no trigrams); shorter terms use ``strpos``, which the planner pairs with an ordered index scan
and a LIMIT instead of a useless full-index trigram scan. User input is never spliced into SQL:
FTS5 phrases are quoted, LIKE wildcards escaped, everything bound as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

MAX_TERMS = 5
MAX_TERM_CHARS = 50


def terms(q: str) -> list[str]:
    """Whitespace-separated terms, all of which must match (at most ``MAX_TERMS``)."""
    return [t[:MAX_TERM_CHARS] for t in (q or "").split()][:MAX_TERMS]


def fts5_phrase(term: str) -> str:
    """An FTS5 string literal: the term is a phrase, never query syntax.

    >>> fts5_phrase('噪音 "AND" x')
    '"噪音 ""AND"" x"'
    """
    return '"' + term.replace('"', '""') + '"'


def like_pattern(term: str) -> str:
    r"""``%term%`` with LIKE's wildcards escaped (backslash is PostgreSQL's default escape).

    >>> like_pattern('100%_x')
    '%100\\%\\_x%'
    """
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_condition(dialect: str, table: sa.Table, q: str) -> sa.ColumnElement[bool] | None:
    """A WHERE clause matching rows of ``table`` whose ``search_text`` contains every term of ``q``.

    None when ``q`` has no terms.
    """
    ts = terms(q)
    if not ts:
        return None
    col = table.c.search_text
    clauses: list[sa.ColumnElement[bool]] = []
    long_terms = [t for t in ts if len(t) >= 3]
    short_terms = [t for t in ts if len(t) < 3]
    if dialect == "sqlite":
        if long_terms:
            fts_name = f"{table.name}_fts"
            fts = sa.table(fts_name, sa.column("rowid"))
            match = " AND ".join(fts5_phrase(t) for t in long_terms)
            sub = sa.select(fts.c.rowid).where(sa.literal_column(fts_name).op("MATCH")(sa.literal(match)))
            clauses.append(table.c.id.in_(sub))
        clauses += [sa.func.instr(col, t) > 0 for t in short_terms]
    else:
        clauses += [col.like(like_pattern(t)) for t in long_terms]
        clauses += [sa.func.strpos(col, t) > 0 for t in short_terms]
    return sa.and_(*clauses)


@dataclass
class TextMatch:
    """A full-text filter for a large table: WHERE clauses, and on SQLite the FTS5 table to join.

    Joining (``fts.rowid = table.id``) and ordering by ``fts.rowid`` lets SQLite walk the FTS5
    doclist newest-first and stop after a page; an ``IN (subquery)`` would first collect every
    match (150 000 rows for 噪音扰民 in a million tickets) and sort them.
    """

    where: list[sa.ColumnElement[bool]] = field(default_factory=list)
    fts: sa.TableClause | None = None


def text_match(dialect: str, table: sa.Table, q: str) -> TextMatch:
    ts = terms(q)
    out = TextMatch()
    long_terms = [t for t in ts if len(t) >= 3]
    if dialect == "sqlite" and long_terms:
        name = f"{table.name}_fts"
        out.fts = sa.table(name, sa.column("rowid"))
        match = " AND ".join(fts5_phrase(t) for t in long_terms)
        out.where.append(sa.literal_column(name).op("MATCH")(sa.literal(match)))
        short = [t for t in ts if len(t) < 3]
        out.where += [sa.func.instr(table.c.search_text, t) > 0 for t in short]
    elif ts:
        cond = text_condition(dialect, table, q)
        if cond is not None:
            out.where.append(cond)
    return out


def build_text(*parts: str | None, limit: int = 20000) -> str:
    """The ``search_text`` of a row: its searchable fields, one per line."""
    return "\n".join(p for p in parts if p)[:limit]
