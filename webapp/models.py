"""Database models."""
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
from werkzeug.security import check_password_hash, generate_password_hash

from .crypto import decrypt_json, encrypt_json
from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, whatever the database keeps (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class User(UserMixin, db.Model):
    ROLES = ("admin", "viewer")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

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
        """Every option, secrets decrypted: for sending only, never for rendering."""
        return {**self.options, **self.secrets}

    @property
    def destination_type(self):
        from .destinations import REGISTRY

        return REGISTRY.get(self.type)


class Delivery(db.Model):
    """One notification to one destination: every attempt's outcome, and when to try again."""

    STATUSES = ("pending", "sent", "retrying", "failed", "skipped")
    EVENTS = ("trigger", "resolve", "test")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The destination may be deleted later; its name and type stay on the record
    destination_id: Mapped[int | None] = mapped_column(ForeignKey("destination.id", ondelete="SET NULL"), index=True)
    destination_name: Mapped[str] = mapped_column(String(100))
    destination_type: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(Integer, index=True)
    alert_name: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # the vendor's words, secrets redacted
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    notification: Mapped[dict] = mapped_column(JSON)  # enough to send again after a restart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Whoever holds an unexpired lease is sending this row; an expired lease means its sender died
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def destination_type_class(self):
        from .destinations import REGISTRY

        return REGISTRY.get(self.destination_type)

    def to_outcome(self) -> dict:
        return {
            "delivery_id": self.id,
            "destination_id": self.destination_id,
            "destination_name": self.destination_name,
            "type": self.destination_type,
            "event": self.event,
            "status": self.status,
            "status_code": self.status_code,
            "attempts": self.attempts,
            "error": self.error,
            "detail": self.detail,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
        }


class DeliveryRef(db.Model):
    """What a vendor gave back for one alert at one destination (ticket id, sys_id, Message-ID), for the resolve."""

    destination_id: Mapped[int] = mapped_column(ForeignKey("destination.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
