"""Chinese full text behind one interface, on SQLite and PostgreSQL.

Every searchable table has a ``search_text`` column. SQLite: an FTS5 ``trigram`` index answers
terms of three characters or more. PostgreSQL: a ``pg_trgm`` GIN index answers ``LIKE '%term%'``
for three characters or more (the database must have a UTF-8 ``LC_CTYPE``, or CJK characters make
no trigrams).

Trigrams cannot answer two characters (停水), the commonest Chinese search. The ticket table, the
one that grows to millions, also has a bigram index (migration 0009): on SQLite a contentless
FTS5 table of character pairs, on PostgreSQL a GIN index on ``hotline_bigrams(search_text)``; so a
two-character word that nothing contains is an empty index lookup, not a scan of every ticket.
Other terms shorter than three characters (one character; on SQLite a pair holding punctuation
or a space) and the small tables use ``instr`` / ``strpos`` on the base table. User input is never
spliced into SQL: FTS5 phrases are quoted, LIKE wildcards escaped, everything bound as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

MAX_TERMS = 5
MAX_TERM_CHARS = 50
BIGRAM_TABLES = frozenset({"ticket"})  # tables with the bigram index of migration 0009


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
    pairs = [t for t in short_terms if _indexed_pair(dialect, table, t)]
    scanned = [t for t in short_terms if t not in pairs]
    if dialect == "sqlite":
        if long_terms:
            clauses.append(table.c.id.in_(_fts_rowids(f"{table.name}_fts", long_terms)))
        if pairs:
            clauses.append(table.c.id.in_(_fts_rowids(f"{table.name}_bigram", pairs)))
        clauses += [sa.func.instr(col, t) > 0 for t in scanned]
    else:
        clauses += [col.like(like_pattern(t)) for t in long_terms]
        # the containment picks the GIN index; strpos keeps the match exact whatever the planner does
        clauses += [sa.and_(sa.func.hotline_bigrams(col).op("@>")(sa.literal([t], ARRAY(sa.Text))),
                            sa.func.strpos(col, t) > 0) for t in pairs]
        clauses += [sa.func.strpos(col, t) > 0 for t in scanned]
    return sa.and_(*clauses)


def _indexed_pair(dialect: str, table: sa.Table, term: str) -> bool:
    """Whether a term shorter than three characters is answered by the bigram index.

    On SQLite the FTS5 ``unicode61`` tokeniser keeps a pair as one token only when both are
    word characters (letters, digits, ideographs); PostgreSQL indexes every pair.

    >>> import sqlalchemy as sa; t = sa.table("ticket")
    >>> [_indexed_pair("sqlite", t, w) for w in ("停水", "停", "A1", "水，")]
    [True, False, True, False]
    """
    if table.name not in BIGRAM_TABLES or len(term) != 2:
        return False
    return dialect != "sqlite" or term.isalnum()


def _fts_rowids(fts_name: str, ts: list[str]) -> sa.Select:
    fts = sa.table(fts_name, sa.column("rowid"))
    return sa.select(fts.c.rowid).where(sa.literal_column(fts_name).op("MATCH")(sa.literal(_all_of(ts))))


def _all_of(ts: list[str]) -> str:
    return " AND ".join(fts5_phrase(t) for t in ts)


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
    pairs = [t for t in ts if len(t) < 3 and _indexed_pair(dialect, table, t)]
    if dialect == "sqlite" and (long_terms or pairs):
        # walk one index newest-first; with a longer term that is the trigram one, and the pairs are
        # checked on the rows it yields (an IN over a common pair's doclist would collect them all)
        joined = long_terms or pairs
        name = f"{table.name}_fts" if long_terms else f"{table.name}_bigram"
        out.fts = sa.table(name, sa.column("rowid"))
        out.where.append(sa.literal_column(name).op("MATCH")(sa.literal(_all_of(joined))))
        out.where += [sa.func.instr(table.c.search_text, t) > 0 for t in ts if t not in joined]
    elif ts:
        cond = text_condition(dialect, table, q)
        if cond is not None:
            out.where.append(cond)
    return out


def build_text(*parts: str | None, limit: int = 20000) -> str:
    """The ``search_text`` of a row: its searchable fields, one per line."""
    return "\n".join(p for p in parts if p)[:limit]
