"""Deliver notifications to destinations: parallel first attempts, stored retries, a log of every attempt.

Plain Python: it needs a Flask app only for the database session and Flask-Mail, and knows nothing of views.
"""
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update

from ..crypto import SecretsUnreadable
from ..destinations import REGISTRY
from ..extensions import db
from ..metrics import DELIVERIES, DELIVERY_LATENCY, failure_reason
from ..models import Delivery, DeliveryRef, Destination
from .notification import Notification, make_test_notification
from .transport import DeliveryError, SendContext, redact

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_age: float = 3600.0  # seconds after the first attempt
    base_delay: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: the vendor's Retry-After, else exponential backoff with jitter."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter": never less than half the backoff


@dataclass(frozen=True)
class NotifierSettings:
    timeout: float = 10.0
    workers: int = 16
    policy: RetryPolicy = RetryPolicy()
    block_private: bool = False
    lease_grace: float = 30.0

    @property
    def lease(self) -> timedelta:
        # Longer than any one send can take (connect + read timeouts, SMTP's several round trips); once it
        # has passed, the sender is taken to have died and any worker may send the row
        return timedelta(seconds=self.timeout * 4 + self.lease_grace)

    @classmethod
    def from_config(cls, config) -> "NotifierSettings":
        return cls(
            timeout=float(config["HERALD_HTTP_TIMEOUT"]),
            workers=int(config["HERALD_NOTIFY_WORKERS"]),
            block_private=bool(config["HERALD_BLOCK_PRIVATE_DESTINATIONS"]),
            lease_grace=float(config["HERALD_LEASE_GRACE_SECONDS"]),
            policy=RetryPolicy(
                max_attempts=int(config["HERALD_RETRY_MAX_ATTEMPTS"]),
                max_age=float(config["HERALD_RETRY_MAX_AGE"]),
                base_delay=float(config["HERALD_RETRY_BASE_DELAY"]),
                max_delay=float(config["HERALD_RETRY_MAX_DELAY"]),
            ),
        )


class Notifier:
    def __init__(self, app, settings: NotifierSettings | None = None):
        self.app = app
        self.settings = settings or NotifierSettings.from_config(app.config)
        self.owner = f"{uuid.uuid4().hex[:12]}"

    # --- entry points -------------------------------------------------------------------------------------

    def notify(self, destinations: list[Destination], notification: Notification) -> list[dict]:
        """Record a delivery per destination, send them all in parallel, return each one's outcome.

        Every row is committed before any send starts, so a crash mid-send loses nothing: the row's lease
        expires and the retry worker sends it.
        """
        now = utcnow()
        deliveries = []
        for destination in destinations:
            delivery = Delivery(
                destination_id=destination.id,
                destination_name=destination.name,
                destination_type=destination.type,
                alert_id=notification.alert_id,
                alert_name=notification.alert_name[:255],
                event=notification.event,
                notification=notification.to_json(),
                created_at=now,
                next_attempt_at=now,
            )
            if destination.enabled:
                delivery.status = "pending"
                delivery.lease_owner, delivery.lease_until = self.owner, now + self.settings.lease
            else:
                delivery.status, delivery.detail, delivery.next_attempt_at = "skipped", "The destination is disabled.", None
                DELIVERIES.labels(destination.type, "skipped", "disabled").inc()
            deliveries.append(delivery)
        db.session.add_all(deliveries)
        db.session.commit()
        ids = [d.id for d in deliveries if d.status == "pending"]
        self._attempt_all(ids)
        db.session.expire_all()
        return [db.session.get(Delivery, d.id).to_outcome() for d in deliveries]

    def run_due(self, limit: int = 100) -> int:
        """Send every retry that is due, and every pending row whose sender died; return how many were tried."""
        now = utcnow()
        candidates = db.session.scalars(
            select(Delivery.id)
            .where(Delivery.status.in_(("pending", "retrying")))
            .where(Delivery.next_attempt_at <= now)
            .where(or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        ).all()
        claimed = [delivery_id for delivery_id in candidates if self._claim(delivery_id, now)]
        self._attempt_all(claimed)
        return len(claimed)

    def send_test(self, destination_type, config: dict, name: str, destination_id: int | None = None) -> dict:
        """Send a marked test alert with (possibly unsaved) settings, once, no retries; log it as event 'test'.

        Where the vendor opens incidents, the test incident is resolved straight after, so nothing stays open.
        """
        notification = make_test_notification(self.app.config["HERALD_BASE_URL"])
        delivery = Delivery(
            destination_id=destination_id, destination_name=name[:100] or "(unsaved)", destination_type=destination_type.type,
            alert_id=None, alert_name=notification.alert_name, event="test", status="pending",
            notification=notification.to_json(), lease_owner=self.owner, lease_until=utcnow() + self.settings.lease,
        )
        db.session.add(delivery)
        db.session.commit()
        refs = self._send_once(delivery, destination_type, config, notification, refs={}, final=True)
        if delivery.status == "sent" and destination_type.resolves:
            from dataclasses import replace

            resolve = replace(notification, state="ok", previous_state="triggered")
            self._send_once(delivery, destination_type, config, resolve, refs=refs, final=True)
            if delivery.status == "sent":
                delivery.detail = (delivery.detail or "") + " The test incident was resolved again."
        db.session.commit()
        return delivery.to_outcome()

    # --- internals ----------------------------------------------------------------------------------------

    def _claim(self, delivery_id: int, now: datetime) -> bool:
        """Take the row's lease; the conditional UPDATE makes two workers (or processes) never both win."""
        result = db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .where(Delivery.status.in_(("pending", "retrying")))
            .where(or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
            .values(lease_owner=self.owner, lease_until=now + self.settings.lease)
        )
        db.session.commit()
        return result.rowcount == 1

    def _attempt_all(self, delivery_ids: list[int]) -> None:
        if not delivery_ids:
            return
        if len(delivery_ids) == 1:
            self._attempt_in_context(delivery_ids[0])
            return
        with ThreadPoolExecutor(max_workers=min(self.settings.workers, len(delivery_ids)),
                                thread_name_prefix="herald-send") as pool:
            list(pool.map(self._attempt_in_context, delivery_ids))

    def _attempt_in_context(self, delivery_id: int) -> None:
        # Each thread has its own app context and so its own database session
        with self.app.app_context():
            try:
                self._attempt(delivery_id)
            except Exception:  # a bug must not stop the other destinations; the row stays leased and retried
                log.exception("delivery %s: unexpected error", delivery_id)
                db.session.rollback()

    def _attempt(self, delivery_id: int) -> None:
        delivery = db.session.get(Delivery, delivery_id)
        if delivery is None or delivery.status not in ("pending", "retrying") or delivery.lease_owner != self.owner:
            return
        self._attempt_delivery(delivery)
        db.session.commit()

    def _attempt_delivery(self, delivery: Delivery) -> None:
        destination = db.session.get(Destination, delivery.destination_id) if delivery.destination_id else None
        dtype = REGISTRY.get(delivery.destination_type)
        if destination is None or dtype is None:
            self._finish(delivery, "failed", error="The destination was deleted before this could be sent.")
            return
        if not destination.enabled:
            self._finish(delivery, "skipped", detail="The destination was disabled before this could be sent.")
            return
        try:
            config = destination.config
        except SecretsUnreadable:
            self._finish(delivery, "failed", error="The destination's secrets cannot be decrypted: the encryption key "
                                                   "changed. Enter them again.")
            return
        notification = Notification.from_json(delivery.notification)
        ref = db.session.get(DeliveryRef, (destination.id, notification.alert_id))
        refs = dict(ref.data) if ref else {}
        remember = self._send_once(delivery, dtype, config, notification, refs=refs, final=False)
        if delivery.status == "sent" and remember != refs:
            self._store_refs(destination.id, notification.alert_id, remember)

    def _send_once(self, delivery: Delivery, dtype, config: dict, notification: Notification, refs: dict,
                   final: bool) -> dict:
        """One attempt; updates `delivery` (uncommitted) and returns the refs merged with what the vendor gave."""
        secrets = [config.get(name) for name in dtype.secret_fields()]
        ctx = SendContext(timeout=self.settings.timeout, refs=dict(refs), block_private=self.settings.block_private)
        started = time.monotonic()
        delivery.attempts += 1
        delivery.last_attempt_at = utcnow()
        try:
            result = dtype.send(config, notification, ctx)
        except DeliveryError as exc:
            self._timed(delivery, dtype, started)
            delivery.status_code = exc.status_code
            self._failed_attempt(delivery, redact(exc.message, secrets), exc.retryable and not final, exc.retry_after)
            DELIVERIES.labels(dtype.type, delivery.status, failure_reason(dtype.type, exc.status_code, exc.retryable)).inc()
            log.warning("delivery %s to %s (%s): %s", delivery.id, delivery.destination_name, dtype.type, delivery.error)
            return refs
        except Exception as exc:  # a defect in a destination module: say so, never retry blindly
            # Not log.exception: a traceback's locals and reprs could carry the config's secrets
            log.error("delivery %s: the %s sender raised %s", delivery.id, dtype.type, type(exc).__name__)
            self._timed(delivery, dtype, started)
            self._finish(delivery, "failed", error=redact(f"Internal error in the {dtype.label} sender: {exc!r}", secrets))
            DELIVERIES.labels(dtype.type, "failed", "internal").inc()
            return refs
        finally:
            ctx.session.close()
        self._timed(delivery, dtype, started)
        delivery.status_code = result.status_code
        self._finish(delivery, "sent", detail=redact(result.detail or "", secrets) or None)
        delivery.sent_at = utcnow()
        DELIVERIES.labels(dtype.type, "sent", "").inc()
        return {**refs, **result.remember}

    @staticmethod
    def _timed(delivery: Delivery, dtype, started: float) -> None:
        elapsed = time.monotonic() - started
        delivery.duration_ms = int(elapsed * 1000)
        DELIVERY_LATENCY.labels(dtype.type).observe(elapsed)

    def _failed_attempt(self, delivery: Delivery, message: str, retryable: bool, retry_after: float | None) -> None:
        policy = self.settings.policy
        now = utcnow()
        created = delivery.created_at or now
        if retryable and delivery.attempts < policy.max_attempts:
            next_at = now + timedelta(seconds=policy.delay(delivery.attempts, retry_after))
            if (next_at - created).total_seconds() <= policy.max_age:
                delivery.status, delivery.error = "retrying", message
                delivery.next_attempt_at = next_at
                delivery.lease_owner = delivery.lease_until = None
                return
            message += f" Gave up: the next try would come more than {policy.max_age:g} s after the first."
        elif retryable:
            message += f" Gave up after {delivery.attempts} attempts."
        self._finish(delivery, "failed", error=message)

    @staticmethod
    def _finish(delivery: Delivery, status: str, error: str | None = None, detail: str | None = None) -> None:
        delivery.status = status
        delivery.error = error
        if detail is not None:
            delivery.detail = detail
        delivery.next_attempt_at = None
        delivery.lease_owner = delivery.lease_until = None

    @staticmethod
    def _store_refs(destination_id: int, alert_id: int, data: dict) -> None:
        ref = db.session.get(DeliveryRef, (destination_id, alert_id))
        if ref is None:
            db.session.add(DeliveryRef(destination_id=destination_id, alert_id=alert_id, data=data))
        else:
            ref.data = data


class RetryWorker:
    """A background thread that sends due retries every `interval` seconds, in this process."""

    def __init__(self, app, interval: float):
        self.app = app
        self.interval = interval
        self.notifier = Notifier(app)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="herald-retry-worker", daemon=True)
        self.last_run: datetime | None = None

    def start(self) -> "RetryWorker":
        self.thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    self.notifier.run_due()
            except Exception:  # keep the worker alive through a database hiccup
                log.exception("retry worker pass failed")
            self.last_run = utcnow()
            self._stop.wait(self.interval)
