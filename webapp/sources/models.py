"""A Source: where alerts come from, how to read them, and where they go."""
import hashlib
import secrets
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import decrypt_json, encrypt_json
from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

source_destination = db.Table(
    "source_destination",
    db.Column("source_id", ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
    db.Column("destination_id", ForeignKey("destination.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Source(db.Model):
    """An inbound URL (/inbound/<token>, only the token's SHA-256 stored) and what arrives there becomes alerts."""

    # Ids are never reused: an alert's source_id must not come to name another source
    __table_args__ = {"sqlite_autoincrement": True}

    KINDS = {"alertmanager": "Prometheus Alertmanager", "grafana": "Grafana alerting",
             "webhook": "Generic webhook (JSON)", "heartbeat": "Heartbeat (dead man's switch)"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Alertmanager's http_config.authorization: the secret a request must present, encrypted like destination secrets
    encrypted_bearer: Mapped[str | None] = mapped_column(Text)
    period_seconds: Mapped[int | None] = mapped_column(Integer)
    grace_seconds: Mapped[int | None] = mapped_column(Integer)
    mapping: Mapped[dict | None] = mapped_column(JSON)  # webhook: dot paths to key, name, state...
    # Ordered: [{"matchers": ["severity=~\"critical|page\""], "destination_ids": [1], "continue": false}]
    routes: Mapped[list] = mapped_column(JSON, default=list)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ping_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # heartbeat
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    destinations = relationship("Destination", secondary=source_destination, order_by="Destination.name")

    @property
    def kind_label(self) -> str:
        return self.KINDS.get(self.kind, self.kind)

    @property
    def bearer_token(self) -> str | None:
        """The secret a request must present (decrypted; SecretsUnreadable after a key change)."""
        return decrypt_json(self.encrypted_bearer).get("token") if self.encrypted_bearer else None

    @bearer_token.setter
    def bearer_token(self, value: str | None) -> None:
        self.encrypted_bearer = encrypt_json({"token": value}) if value else None

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def new_token(self) -> str:
        """Give the source a new inbound token (the old URL stops working) and return it: shown once, never stored."""
        token = secrets.token_urlsafe(32)
        self.token_hash = self.hash(token)
        return token

    @classmethod
    def by_token(cls, token: str) -> "Source | None":
        return db.session.scalar(select(cls).where(cls.token_hash == cls.hash(token)))
