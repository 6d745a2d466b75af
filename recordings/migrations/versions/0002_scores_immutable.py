"""filed QA scores are immutable in the database itself

Revision ID: rec0002
Revises: rec0001

A filed score changes only once, and only in one way: ``superseded`` goes from false to true
when a correction (a new version) is filed. Anything else — editing points, totals, the scorer,
or deleting a score — is refused by a trigger, whoever connects.
"""

from alembic import op

revision = "rec0002"
down_revision = "rec0001"
branch_labels = None
depends_on = None

FROZEN = ("recording_id", "version", "supersedes_id", "reason", "operator", "team", "scorer", "filed_at", "total",
          "max_total", "marks", "comment")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN)
        op.execute(f"""CREATE TRIGGER qa_score_frozen BEFORE UPDATE ON qa_score
            WHEN {changed} OR (OLD.superseded AND NOT NEW.superseded)
            BEGIN SELECT RAISE(ABORT, 'qa_score rows are immutable: file a new version'); END""")
        op.execute("""CREATE TRIGGER qa_score_kept BEFORE DELETE ON qa_score
            BEGIN SELECT RAISE(ABORT, 'qa_score rows are immutable: file a new version'); END""")
        return
    changed = " OR ".join(f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in FROZEN)
    op.execute(f"""CREATE FUNCTION qa_score_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' OR {changed} OR (OLD.superseded AND NOT NEW.superseded) THEN
            RAISE EXCEPTION 'qa_score rows are immutable: file a new version';
          END IF;
          RETURN NEW;
        END $$""")
    op.execute("CREATE TRIGGER qa_score_frozen BEFORE UPDATE OR DELETE ON qa_score "
               "FOR EACH ROW EXECUTE FUNCTION qa_score_frozen()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER qa_score_frozen")
        op.execute("DROP TRIGGER qa_score_kept")
        return
    op.execute("DROP TRIGGER qa_score_frozen ON qa_score")
    op.execute("DROP FUNCTION qa_score_frozen()")
