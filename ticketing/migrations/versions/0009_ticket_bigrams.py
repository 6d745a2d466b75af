"""two-character words (停水, 路灯) answered from an index: a bigram index beside the trigram one

The trigram indexes (FTS5 ``trigram``, ``pg_trgm``) cannot answer a term shorter than three
characters, and Chinese hotline searches are mostly two-character words. Until now those scanned
every ticket: fast while a common word fills the first page early, a full scan of a million rows
for a word nothing contains. Both indexes are maintained by the database itself (triggers on
SQLite, an expression index on PostgreSQL), so no writer can forget them.

SQLite: a contentless FTS5 table (``detail=none``: which tickets, not where) whose tokens are
every overlapping pair of characters, made by the triggers with ``text_offset`` (1 … 20 000) as
the series; FTS5 ``unicode61`` keeps a pair of letters/digits/ideographs as one token.
PostgreSQL: an immutable function giving the distinct pairs of a text, and a GIN index on it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MAX_TEXT = 20000  # ticketing.search.build_text's limit


def _pairs(row: str) -> str:
    # every overlapping pair, space-separated: FTS5 tokenises each pair of word characters as one token
    return (f"(SELECT group_concat(substr({row}.search_text, i, 2), ' ') FROM text_offset "
            f"WHERE i < length({row}.search_text))")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.create_table("text_offset", sa.Column("i", sa.Integer(), primary_key=True))
        op.execute(f"WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {MAX_TEXT}) "
                   "INSERT INTO text_offset(i) SELECT i FROM k")
        op.execute("CREATE VIRTUAL TABLE ticket_bigram USING fts5(b, content='', detail=none, "
                   "tokenize='unicode61 remove_diacritics 0')")
        insert = f"INSERT INTO ticket_bigram(rowid, b) VALUES (new.id, {_pairs('new')});"
        delete = f"INSERT INTO ticket_bigram(ticket_bigram, rowid, b) VALUES ('delete', old.id, {_pairs('old')});"
        op.execute(f"CREATE TRIGGER ticket_bigram_ai AFTER INSERT ON ticket BEGIN {insert} END")
        op.execute(f"CREATE TRIGGER ticket_bigram_ad AFTER DELETE ON ticket BEGIN {delete} END")
        op.execute(f"CREATE TRIGGER ticket_bigram_au AFTER UPDATE OF search_text ON ticket BEGIN {delete} {insert} END")
        op.execute(f"INSERT INTO ticket_bigram(rowid, b) SELECT id, {_pairs('ticket')} FROM ticket")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION hotline_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
            "AS $$ SELECT coalesce(array_agg(DISTINCT substr(t, i, 2)), '{}') "
            "FROM generate_series(1, length(t) - 1) AS i $$"
        )
        # a small pending list: GIN's fast-update list is read in full by every search, and at the default
        # 4 MB that was up to 7 ms per search at 100 000 tickets (intake adds to it all day long)
        op.execute("CREATE INDEX ix_ticket_search_bigram ON ticket USING gin (hotline_bigrams(search_text)) "
                   "WITH (gin_pending_list_limit = 256)")
        op.execute("ALTER INDEX ix_ticket_search_trgm SET (gin_pending_list_limit = 256)")
        # Estimates: a pair missing from the statistics' most common pairs is guessed at half the rarest
        # one's share; with the default 1 000 pairs kept, that guess made PostgreSQL walk a million tickets
        # by date for a pair nothing contains (400 ms) instead of asking the index. 10 000 pairs kept
        # put the guess where it belongs.
        op.execute("ALTER INDEX ix_ticket_search_bigram ALTER COLUMN 1 SET STATISTICS 1000")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_bigram_{suffix}")
        op.execute("DROP TABLE IF EXISTS ticket_bigram")
        op.drop_table("text_offset")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_ticket_search_bigram")
        op.execute("ALTER INDEX ix_ticket_search_trgm RESET (gin_pending_list_limit)")
        op.execute("DROP FUNCTION IF EXISTS hotline_bigrams(text)")
