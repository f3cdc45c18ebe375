"""Alert sources (Alertmanager, Grafana, webhooks, heartbeats) and the source fields of alerts.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("encrypted_bearer", sa.Text(), nullable=True),
        sa.Column("period_seconds", sa.Integer(), nullable=True),
        sa.Column("grace_seconds", sa.Integer(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=True),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("last_received_at", sa.DateTime(), nullable=True),
        sa.Column("last_ping_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "source_destination",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["destination_id"], ["destination.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id", "destination_id"),
    )
    with op.batch_alter_table("source_destination", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_destination_destination_id"), ["destination_id"], unique=False)

    # Columns added in place, never by rebuilding "alert": on SQLite dropping the old table would cascade-delete
    # every binding and history entry (foreign keys are on), and SQLite can add a column with its reference
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE alert ADD COLUMN source_id INTEGER REFERENCES source (id)")
    else:
        op.add_column("alert", sa.Column("source_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_alert_source_id", "alert", "source", ["source_id"], ["id"])
    op.add_column("alert", sa.Column("source_key", sa.String(length=255), nullable=True))
    op.add_column("alert", sa.Column("labels", sa.JSON(), nullable=True))
    op.add_column("alert", sa.Column("annotations", sa.JSON(), nullable=True))
    op.add_column("alert", sa.Column("generator_url", sa.Text(), nullable=True))
    op.add_column("alert", sa.Column("external_url", sa.Text(), nullable=True))
    op.create_index("uq_alert_source_key", "alert", ["source_id", "source_key"], unique=True)


def downgrade():
    op.drop_index("uq_alert_source_key", table_name="alert")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops a plain column in place. It cannot drop the referencing source_id, and rebuilding
        # "alert" would cascade-delete its history: source_id and the source table stay, unused
        for column in ("external_url", "generator_url", "annotations", "labels", "source_key"):
            op.execute(f"ALTER TABLE alert DROP COLUMN {column}")
    else:
        op.drop_constraint("fk_alert_source_id", "alert", type_="foreignkey")
        for column in ("external_url", "generator_url", "annotations", "labels", "source_key", "source_id"):
            op.drop_column("alert", column)
    with op.batch_alter_table("source_destination", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_destination_destination_id"))
    op.drop_table("source_destination")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_table("source")
