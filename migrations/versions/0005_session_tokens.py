"""Users: a session token (sessions and remember cookies die with it), ids never reused; credentials written
inside destination URLs move to the encrypted secrets.

Revision ID: 0005
Revises: 0004
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

USER = sa.table("user", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
API_TOKEN_COLUMNS = ("id", "user_id", "name", "token_hash", "prefix", "created_at", "last_used_at", "revoked_at")


def _recreate_user_table(autoincrement: bool, change):
    """Batch-alter "user". On SQLite that rebuilds the table, and dropping the old one would cascade-delete every
    API token (foreign keys are on): the tokens are put back afterwards."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    tokens = []
    if sqlite:
        columns = ", ".join(API_TOKEN_COLUMNS)
        tokens = [dict(row) for row in bind.execute(sa.text(f"SELECT {columns} FROM api_token")).mappings()]
    kwargs = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": autoincrement}} if sqlite else {}
    with op.batch_alter_table("user", schema=None, **kwargs) as batch_op:
        change(batch_op)
    if sqlite and tokens:
        bind.execute(sa.text("DELETE FROM api_token"))
        placeholders = ", ".join(f":{c}" for c in API_TOKEN_COLUMNS)
        bind.execute(sa.text(f"INSERT INTO api_token ({', '.join(API_TOKEN_COLUMNS)}) VALUES ({placeholders})"), tokens)


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.text('SELECT id FROM "user"')).all():
        bind.execute(USER.update().where(USER.c.id == user_id).values(session_token=secrets.token_urlsafe(32)))
    _recreate_user_table(True, lambda b: b.alter_column("session_token", existing_type=sa.String(64), nullable=False))
    _move_url_credentials(to_secrets=True)


def downgrade():
    _move_url_credentials(to_secrets=False)
    _recreate_user_table(False, lambda b: b.drop_column("session_token"))


DESTINATION = sa.table("destination", sa.column("id", sa.Integer), sa.column("options", sa.JSON),
                       sa.column("encrypted_secrets", sa.Text))


def _move_url_credentials(to_secrets: bool):
    """`https://user:pw@host/` in a plain option → the URL without them, the credentials encrypted (and back).

    Needs the app's encryption key (Alembic runs inside the app here); rows whose secrets the key cannot
    decrypt are left alone and never show their credentials (the app strips them from what it displays).
    """
    from flask import current_app, has_app_context

    if not has_app_context() or not current_app.config.get("SECRET_KEY"):
        return
    from webapp.crypto import SecretsUnreadable, decrypt_json, encrypt_json
    from webapp.url_credentials import SUFFIX, join_userinfo, split_userinfo

    bind = op.get_bind()
    for row in bind.execute(sa.select(DESTINATION)).mappings().all():
        options = dict(row["options"] or {})
        try:
            stored = decrypt_json(row["encrypted_secrets"])
        except SecretsUnreadable:
            continue
        changed = False
        if to_secrets:
            for key, value in list(options.items()):
                if isinstance(value, str) and "://" in value:
                    bare, userinfo = split_userinfo(value)
                    if userinfo:
                        options[key], stored[key + SUFFIX] = bare, userinfo
                        changed = True
        else:
            for key in [k for k in stored if k.endswith(SUFFIX)]:
                option = key[: -len(SUFFIX)]
                userinfo = stored.pop(key)
                if isinstance(options.get(option), str):
                    options[option] = join_userinfo(options[option], userinfo)
                changed = True
        if changed:
            bind.execute(DESTINATION.update().where(DESTINATION.c.id == row["id"]).values(
                options=options, encrypted_secrets=encrypt_json(stored) if stored else None))
