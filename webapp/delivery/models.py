"""The outbox: one Delivery row per notification and destination, and what vendors gave back for later events."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db


class Delivery(db.Model):
    """One notification to one destination: every attempt's outcome, and when to try again."""

    STATUSES = ("pending", "sent", "retrying", "failed", "skipped")
    EVENTS = ("trigger", "resolve", "test")
    # Deliveries of one alert to one destination go out in id order: the first index walks a pair's history in
    # that order; the second finds its waiting (pending, retrying) rows in as many steps whether the pair has sent
    # ten deliveries or a million, which staging, the next in line and the worker's pass ask at every change
    __table_args__ = (Index("ix_delivery_order", "alert_id", "destination_id", "id"),
                      Index("ix_delivery_waiting", "alert_id", "destination_id", "status", "id"))

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
    # A new token with every claim: only the claim that still holds the lease may write the attempt's result
    lease_token: Mapped[str | None] = mapped_column(String(32))
    # The alert's state change (or re-notification) that caused this delivery; None for tests
    state_change_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_state_change.id", name="fk_delivery_state_change_id", ondelete="SET NULL"),
        index=True)

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


class DeliveryWorker(db.Model):
    """A process's delivery worker: when its last pass over the queue completed (for /healthz and /metrics)."""

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_pass_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
