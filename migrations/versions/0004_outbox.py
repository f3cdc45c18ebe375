"""The outbox: deliveries tied to the state change that made them, fenced leases, ordering, worker heartbeats.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_change_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key("fk_delivery_state_change_id", "alert_state_change", ["state_change_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_delivery_state_change_id", ["state_change_id"], unique=False)
        # Deliveries of one alert to one destination go out in id order: this finds the one ahead of a row
        batch_op.create_index("ix_delivery_order", ["alert_id", "destination_id", "id"], unique=False)

    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))

    op.create_table(
        "delivery_worker",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_pass_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("delivery_worker")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_order")
        batch_op.drop_index("ix_delivery_state_change_id")
        batch_op.drop_constraint("fk_delivery_state_change_id", type_="foreignkey")
        batch_op.drop_column("lease_token")
        batch_op.drop_column("state_change_id")
