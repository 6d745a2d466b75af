"""recording files are checked on every read and by a sweep; orphans in storage are listed

Revision ID: rec0004
Revises: rec0003

Issue #14 (nothing lost): ``recording_file`` says when its bytes were last compared with their
checksum (``checked_at``, the sweep's order: oldest first), when they were found gone or changed
after they were stored (``damaged_at``), and where its checksum came from (``sha256_source``:
``catalog`` when taken as the file was stored; ``late`` when a row catalogued without one gets it
at its first check). Rows that already hold a checksum took it as they were stored; rows without
one keep ``''`` here and get theirs lazily, once — hashing every file inside a migration would
hold the upgrade for as long as the storage takes to read. ``recording_orphan`` lists the files in
storage no row refers to, as the sweep last saw them.
"""

import sqlalchemy as sa
from alembic import op

revision = "rec0004"
down_revision = "rec0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recording_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256_source", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("damaged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_recording_file_checked_at"), ["checked_at"], unique=False)
    op.execute("UPDATE recording_file SET sha256_source = 'catalog' WHERE sha256 <> ''")
    op.create_table(
        "recording_orphan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("base", sa.String(length=128), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("recording_orphan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_orphan_base"), ["base"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recording_orphan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_orphan_base"))
    op.drop_table("recording_orphan")
    with op.batch_alter_table("recording_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_file_checked_at"))
        batch_op.drop_column("damaged_at")
        batch_op.drop_column("checked_at")
        batch_op.drop_column("sha256_source")
