"""Database models."""
import functools
from dataclasses import dataclass
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .crypto import decrypt_json, encrypt_json
from .dbtypes import UTCDateTime, utcnow
from .delivery.models import Delivery, DeliveryRef, DeliveryWorker  # noqa: F401  (every table in one place, for Alembic)
from .extensions import core, db
from .sources.models import Source, source_destination  # noqa: F401


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("timing-equaliser")


def new_session_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    # Ids are never reused: a removed user's cookie must not name the next user added
    __table_args__ = {"sqlite_autoincrement": True}

    ROLES = ("admin", "viewer")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # In every session and remember cookie beside the id; a new one signs out every browser (see get_id)
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie: the id and the current session token."""
        if not self.session_token:
            self.session_token = new_session_token()
        return f"{self.id}:{self.session_token}"

    @classmethod
    def by_session_id(cls, session_id: str) -> "User | None":
        """The user a session or remember cookie names, if its token is still theirs."""
        import hmac

        user_id, _, token = (session_id or "").partition(":")
        if not user_id.isdigit() or len(user_id) > 10 or not token:
            return None
        user = db.session.get(cls, int(user_id))
        if user is None or not user.session_token or not hmac.compare_digest(user.session_token, token):
            return None
        return user

    def sign_out_everywhere(self) -> None:
        """Every session and remember cookie of this user stops working (not committed)."""
        self.session_token = new_session_token()

    def set_password(self, password: str) -> None:
        """A new password also ends every existing session: whoever knew the old one is signed out."""
        self.password_hash = generate_password_hash(password)
        self.sign_out_everywhere()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @staticmethod
    def spend_password_check_time() -> None:
        """Hash like a real check, so an unknown email answers as slowly as a wrong password."""
        check_password_hash(_dummy_hash(), "not-the-password")

    @staticmethod
    def normalize_email(email: str) -> str:
        return email.strip().lower()

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(select(cls).where(cls.email == cls.normalize_email(email)))

    @staticmethod
    def any_exist() -> bool:
        return db.session.scalar(select(func.count()).select_from(User)) > 0


class Destination(db.Model):
    """A configured alert destination: its type, its plain options and its encrypted secrets."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    encrypted_secrets: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def secrets(self) -> dict:
        return decrypt_json(self.encrypted_secrets)

    @secrets.setter
    def secrets(self, value: dict) -> None:
        self.encrypted_secrets = encrypt_json(value) if value else None

    @property
    def config(self) -> dict:
        """Every option, secrets decrypted (credentials back inside their URLs): for sending only, never for rendering."""
        return self.config_of(self.options, self.encrypted_secrets)

    @staticmethod
    def config_of(options: dict, encrypted_secrets: str | None) -> dict:
        """`config` from a row's two columns, for code that reads them without loading the object."""
        from .url_credentials import with_userinfo

        return with_userinfo(options, decrypt_json(encrypted_secrets))

    @property
    def destination_type(self):
        from .destinations import REGISTRY

        return REGISTRY.get(self.type)


alert_destination = db.Table(
    "alert_destination",
    db.Column("alert_id", ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True),
    db.Column("destination_id", ForeignKey("destination.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Alert(db.Model):
    """Something that can be triggered or ok, and the destinations to tell when it changes."""

    # Ids are never reused: deliveries, vendor references and dedup keys (herald-alert-<id>) outlive an alert.
    # An alert from a source is found again by its key there (Alertmanager's fingerprint)
    __table_args__ = (Index("uq_alert_source_key", "source_id", "source_key", unique=True),
                      {"sqlite_autoincrement": True})

    STATES = ("unknown", "ok", "triggered")
    SEVERITIES = ("critical", "error", "warning", "info")
    OPERATORS = (">", ">=", "<", "<=", "==", "!=")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), default="critical")
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    condition_op: Mapped[str | None] = mapped_column(String(2))
    condition_threshold: Mapped[float | None] = mapped_column(Float)
    rearm_seconds: Mapped[int] = mapped_column(Integer, default=0)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_value: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_state_change_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every state change and re-notification: the compare-and-set that orders concurrent changes
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # From an alert source (webapp/sources): set by what the source sends, never triggered or resolved by hand
    # No ON DELETE: deleting a source deletes its alerts first (webapp.sources.service.delete_source), with their
    # vendor references; SQLite could only add the reference to "alert" in place without one
    source_id: Mapped[int | None] = mapped_column(ForeignKey("source.id"))
    source_key: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[dict | None] = mapped_column(JSON)
    annotations: Mapped[dict | None] = mapped_column(JSON)
    generator_url: Mapped[str | None] = mapped_column(Text)
    external_url: Mapped[str | None] = mapped_column(Text)

    source = relationship("Source", backref=backref("alerts", order_by="Alert.name", passive_deletes=True))
    # For an alert from a source: extra destinations, besides those the source's routes choose
    destinations: Mapped[list[Destination]] = relationship(
        secondary=alert_destination, order_by=Destination.name, backref=backref("alerts", order_by="Alert.name"))
    history: Mapped[list["AlertStateChange"]] = relationship(
        back_populates="alert", order_by="AlertStateChange.id.desc()", cascade="all, delete-orphan",
        passive_deletes=True)

    @property
    def from_source(self) -> bool:
        return self.source_id is not None

    @property
    def condition(self) -> dict | None:
        if self.condition_op is None or self.condition_threshold is None:
            return None
        return {"op": self.condition_op, "threshold": self.condition_threshold}


class AlertStateChange(db.Model):
    """One entry of an alert's history: a state change, or a re-notification while it stayed triggered."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # ui, api, value
    actor: Mapped[str | None] = mapped_column(String(254))
    value: Mapped[float | None] = mapped_column(Float)
    notified: Mapped[int] = mapped_column(Integer, default=0)  # how many destinations were notified
    note: Mapped[str | None] = mapped_column(String(255))
    # Indexed for retention, which removes the oldest entries first (webapp/delivery/retention.py)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    alert: Mapped[Alert] = relationship(back_populates="history")


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in the list so people can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    PREFIX = "hrld_"

    @staticmethod
    def hash(token: str) -> str:
        import hashlib

        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple["ApiToken", str]:
        """A new token row and the token itself, which is shown once and never stored."""
        import secrets

        token = cls.PREFIX + secrets.token_urlsafe(32)
        return cls(user=user, name=name, token_hash=cls.hash(token), prefix=token[: len(cls.PREFIX) + 6]), token

    @classmethod
    def caller(cls, token: str) -> "ApiCaller | None":
        """Who an unrevoked token speaks for, in one statement (every API request runs it)."""
        row = core(_TOKEN_CALLER, {"token_hash": cls.hash(token)}).one_or_none()
        if row is None:
            return None
        return ApiCaller(row.token_id, row.last_used_at, row.user_id, row.email, row.role == "admin")

    @classmethod
    def mark_used(cls, token_id: int, now: datetime) -> None:
        core(_TOKEN_USED, {"token_id": token_id, "now": now})


@dataclass(frozen=True)
class ApiCaller:
    """The user an API request speaks for, as its token named them."""

    token_id: int
    last_used_at: datetime | None
    id: int
    email: str
    is_admin: bool


_TOKENS, _USERS = ApiToken.__table__, User.__table__
_TOKEN_CALLER = (
    select(_TOKENS.c.id.label("token_id"), _TOKENS.c.last_used_at, _USERS.c.id.label("user_id"), _USERS.c.email,
           _USERS.c.role)
    .join_from(_TOKENS, _USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.token_hash == bindparam("token_hash"), _TOKENS.c.revoked_at.is_(None)))
_TOKEN_USED = update(_TOKENS).where(_TOKENS.c.id == bindparam("token_id")).values(last_used_at=bindparam("now"))
