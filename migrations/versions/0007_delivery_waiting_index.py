"""An index that finds an alert and destination's waiting deliveries without reading the pair's whole history.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.create_index("ix_delivery_waiting", ["alert_id", "destination_id", "status", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_index("ix_delivery_waiting")
