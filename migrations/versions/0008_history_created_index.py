"""An index that lets retention find an alert history's oldest entries without reading the whole history.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("alert_state_change") as batch_op:
        batch_op.create_index("ix_alert_state_change_created_at", ["created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("alert_state_change") as batch_op:
        batch_op.drop_index("ix_alert_state_change_created_at")
