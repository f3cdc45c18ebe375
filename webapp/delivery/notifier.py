"""Deliver notifications: an outbox staged with each state change, sent by a bounded pool in this process.

- stage() adds one Delivery row per destination to the caller's transaction, so a state change and its
  deliveries commit together or not at all. dispatch() hands the committed rows to the pool.
- Deliveries of one alert to one destination are attempted in id order: a row is never claimed while an
  earlier one of the same pair is pending or retrying. A recovery supersedes an undelivered trigger at
  vendors that open incidents, so the vendor's last word is always the alert's current state.
- A row is claimed (a conditional UPDATE that takes its lease and counts the attempt) just before it is
  sent; the send holds no database connection and ends within its deadline, which is shorter than the
  lease; only the claim that still holds the lease may write the result.

Plain Python: it needs a Flask app only for the database session and Flask-Mail, and knows nothing of views.
"""
import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ..crypto import SecretsUnreadable
from ..dbtypes import utcnow
from ..destinations import REGISTRY
from .. import prepared
from ..extensions import core, db
from ..metrics import DELIVERIES, DELIVERY_LATENCY, failure_reason
from ..models import Destination, alert_destination
from ..url_credentials import split_userinfo
from .models import Delivery, DeliveryRef
from .notification import Notification, make_test_notification
from .transport import DeliveryError, SendContext, SendResult, redact

log = logging.getLogger(__name__)

ACTIVE = ("pending", "retrying")
SUPERSEDED = "Superseded: the alert recovered before this trigger was delivered, so the recovery is sent instead."
NOTHING_OPENED = ("Not sent: the trigger it would close was superseded before its first attempt, so nothing "
                  "was opened at the vendor.")


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
    timeout: float = 10.0  # each connect and read
    deadline: float = 30.0  # one whole send: DNS, connect, TLS, every read, both requests of a two-step resolve
    workers: int = 16
    policy: RetryPolicy = RetryPolicy()
    block_private: bool = False
    lease_grace: float = 30.0
    ca_bundle: str | None = None

    @property
    def lease(self) -> timedelta:
        # Longer than a send can last (its deadline): once it has passed, the sender is taken to have died
        return timedelta(seconds=self.deadline + self.lease_grace)

    @classmethod
    def from_config(cls, config) -> "NotifierSettings":
        return cls(
            timeout=float(config["HERALD_HTTP_TIMEOUT"]),
            deadline=float(config["HERALD_SEND_DEADLINE"]),
            workers=int(config["HERALD_NOTIFY_WORKERS"]),
            block_private=bool(config["HERALD_BLOCK_PRIVATE_DESTINATIONS"]),
            ca_bundle=config.get("HERALD_CA_BUNDLE") or None,
            lease_grace=float(config["HERALD_LEASE_GRACE_SECONDS"]),
            policy=RetryPolicy(
                max_attempts=int(config["HERALD_RETRY_MAX_ATTEMPTS"]),
                max_age=float(config["HERALD_RETRY_MAX_AGE"]),
                base_delay=float(config["HERALD_RETRY_BASE_DELAY"]),
                max_delay=float(config["HERALD_RETRY_MAX_DELAY"]),
            ),
        )


@dataclass(frozen=True)
class Target:
    """A destination as staging needs it, read in the state change's transaction."""

    id: int
    name: str
    type: str
    enabled: bool
    config: dict | None = None  # decrypted, for a first attempt sent straight from staging; None: unreadable
    # Whether a delivery of this alert to it was pending or retrying when it was read; None: not known
    waiting: bool | None = None

    @classmethod
    def of(cls, destination: Destination) -> "Target":
        try:
            config = destination.config if destination.enabled else None
        except SecretsUnreadable:
            config = None  # the sender reads the row again and records why it cannot send
        return cls(destination.id, destination.name, destination.type, destination.enabled, config)

    @classmethod
    def bound_to(cls, alert_id: int) -> list["Target"]:
        """The alert's destinations in one Core statement (every state change reads them), with whether a
        delivery to each still waits. Read before the change's compare-and-set: a delivery that ends meanwhile
        only holds a row back that then claims itself, and one staged meanwhile makes the compare-and-set lose."""
        return [cls.of_columns(*row) for row in core(_BOUND_DESTINATIONS, {"alert_id": alert_id})]

    @classmethod
    def of_columns(cls, id: int, name: str, type: str, enabled: bool, options, encrypted_secrets,
                   waiting: bool) -> "Target":
        """From the columns target_columns() names, in its order."""
        try:
            config = Destination.config_of(options, encrypted_secrets) if enabled else None
        except SecretsUnreadable:
            config = None
        return cls(id, name, type, enabled, config, waiting)


@dataclass(frozen=True)
class Staged:
    """A delivery as staging wrote it, kept in plain values: after the commit the ORM row would be re-read,
    and by then another worker may have claimed it under a token of its own. A row claimed at staging
    carries its whole first attempt (`job`), so that attempt needs no database read before it is sent."""

    id: int
    token: str | None
    status: str
    destination_id: int
    destination_name: str
    type: str
    event: str
    detail: str | None = None
    job: "Job | None" = None
    lease_until: datetime | None = None

    def outcome(self, status: str | None = None) -> dict:
        """The delivery as the caller may report it before its first attempt has finished."""
        return {"delivery_id": self.id, "destination_id": self.destination_id, "destination_name": self.destination_name,
                "type": self.type, "event": self.event, "status": status or self.status, "status_code": None,
                "attempts": 0 if self.job is None else 1, "error": None, "detail": self.detail,
                "next_attempt_at": None}


@dataclass
class Job:
    """Everything one attempt needs, read before the send so that no database connection is held during it."""

    delivery_id: int
    token: str
    attempt: int
    event: str
    alert_id: int | None
    destination_id: int | None
    destination_name: str
    dtype: type
    config: dict
    notification: Notification
    refs: dict
    created_at: datetime


@dataclass
class Outcome:
    status: str  # sent, retrying, failed, skipped
    status_code: int | None = None
    error: str | None = None
    detail: str | None = None
    next_attempt_at: datetime | None = None
    duration_ms: int | None = None
    remember: dict | None = None

    def as_dict(self, job: "Job") -> dict:
        """The same shape as Delivery.to_outcome(), from what this process just wrote."""
        return {"delivery_id": job.delivery_id, "destination_id": job.destination_id,
                "destination_name": job.destination_name, "type": job.dtype.type, "event": job.event,
                "status": self.status, "status_code": self.status_code, "attempts": job.attempt, "error": self.error,
                "detail": self.detail, "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at
                else None}


@dataclass(frozen=True)
class Task:
    done: Future  # the pool's: finishes with the whole run (RunResult), chained rows included
    first: Future  # the started row's outcome dict, or None


@dataclass
class RunResult:
    first: dict | None = None  # the outcome of the row the task was started for, once recorded
    attempted: int = 0


class Notifier:
    """Stages, claims, sends and records deliveries for one app, on a bounded pool of sender threads."""

    def __init__(self, app, settings: NotifierSettings | None = None):
        self.app = app
        self.settings = settings or NotifierSettings.from_config(app.config)
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool: ThreadPoolExecutor | None = None
        # Reentrant: a future that is already done runs its done-callback (which takes the lock) at once
        self._lock = threading.RLock()
        self._queued: dict[int, Future] = {}  # delivery id → its task, while queued or running
        self._busy = 0
        # (alert, destination) pairs that staging in this process held a row back for, behind one still active:
        # only these need a look for the next row once a result is written. A row held back by another process
        # is claimed by that process's dispatch, or by its worker's next pass.
        self._held_back: set[tuple[int, int]] = set()
        self._results = ResultWriter()

    # --- staging: inside the caller's transaction ---------------------------------------------------------------

    def stage(self, targets: list[Target], notification: Notification, state_change_id: int | None = None,
              now: datetime | None = None) -> list[Staged]:
        """Add one delivery per target to the current transaction (flushed, not committed); dispatch() them
        after the commit."""
        now = now or utcnow()
        alert_id = notification.alert_id
        resolving = [t.id for t in targets if t.enabled and _resolves(t.type)]
        nothing_opened: set[int] = set()
        if notification.is_recovery and resolving:
            self._supersede_triggers(alert_id, resolving, now)
            nothing_opened = self._never_attempted_episodes(alert_id, resolving)
        if any(t.waiting is None for t in targets):
            waiting = set(core(_WAITING_PAIRS, {"alert_id": alert_id,
                                                "destination_ids": [t.id for t in targets]}).scalars())
        else:
            waiting = {t.id for t in targets if t.waiting}
        payload = notification.to_json()
        idle = self._idle_workers()
        claimed: dict[int, Target] = {}  # the row's index in `rows` → its target
        rows = []
        for target in targets:
            row = dict(destination_id=target.id, destination_name=target.name, destination_type=target.type,
                       alert_id=alert_id, alert_name=notification.alert_name[:255], event=notification.event,
                       notification=payload, created_at=now, updated_at=now, next_attempt_at=now,
                       state_change_id=state_change_id, attempts=0, status="pending", detail=None, lease_owner=None,
                       lease_token=None, lease_until=None, last_attempt_at=None)
            if not target.enabled:
                self._skip(row, "The destination is disabled.")
            elif target.id in nothing_opened:
                self._skip(row, NOTHING_OPENED)
            elif target.id in waiting:
                with self._lock:
                    self._held_back.add((alert_id, target.id))
            elif idle > 0 and target.config is not None and REGISTRY.get(target.type):
                # Claimed as it is written: the first attempt needs no claim of its own
                idle -= 1
                row.update(lease_owner=self.owner, lease_token=uuid.uuid4().hex, lease_until=now + self.settings.lease,
                           attempts=1, last_attempt_at=now)
                claimed[len(rows)] = target
            rows.append(row)
        if not rows:
            return []
        # Core statements built once: the ORM's unit of work costs more than the rest of a change
        ids = _insert_deliveries(rows)
        with_refs = [t.id for t in claimed.values() if REGISTRY[t.type].uses_refs]
        refs = {destination_id: dict(data) for destination_id, data in core(
            _REFS_OF, {"alert": alert_id, "destinations": with_refs})} if with_refs else {}
        jobs = {i: Job(delivery_id=ids[i], token=rows[i]["lease_token"], attempt=1, event=notification.event,
                       alert_id=alert_id, destination_id=target.id, destination_name=target.name,
                       dtype=REGISTRY[target.type], config=target.config, notification=notification,
                       refs=refs.get(target.id, {}), created_at=now)
                for i, target in claimed.items()}
        return [Staged(ids[i], row["lease_token"], row["status"], row["destination_id"], row["destination_name"],
                       row["destination_type"], row["event"], row["detail"], jobs.get(i), row["lease_until"])
                for i, row in enumerate(rows)]

    @staticmethod
    def _skip(row: dict, why: str) -> None:
        row.update(status="skipped", detail=why, next_attempt_at=None)
        DELIVERIES.labels(row["destination_type"], "skipped", "disabled" if "disabled" in why else "superseded").inc()

    @staticmethod
    def _supersede_triggers(alert_id: int, destination_ids: list[int], now: datetime) -> None:
        """A recovery makes every undelivered, not in-flight trigger to these incident vendors pointless."""
        # bindparam names differ from the columns: an UPDATE reserves those for its SET clause
        core(_SUPERSEDE_TRIGGERS, {"alert": alert_id, "destinations": destination_ids, "moment": now, "why": SUPERSEDED})

    @staticmethod
    def _never_attempted_episodes(alert_id: int, destination_ids: list[int]) -> set[int]:
        """Destinations whose triggers since their last resolve were all superseded before any attempt."""
        rows = core(_EPISODE_ATTEMPTS, {"alert_id": alert_id, "destination_ids": destination_ids}).all()
        return {destination_id for destination_id, attempts in rows if not attempts}

    # --- dispatch: after the commit ------------------------------------------------------------------------------

    def dispatch(self, staged: list[Staged]) -> dict[int, Future]:
        """Send the committed rows that are pending; each future gets its row's first outcome (None if the row
        waits behind an earlier one) as soon as it is recorded."""
        return {row.id: self._submit(row.id, row.token, row.job, row.lease_until).first
                for row in staged if row.status == "pending"}

    def first_outcomes(self, staged: list[Staged], timeout: float | None) -> list[dict]:
        """Dispatch, wait at most `timeout` seconds, and say how each delivery stands (no database read)."""
        futures = self.dispatch(staged)
        self.wait(list(futures.values()), timeout)
        outcomes = []
        for row in staged:
            future = futures.get(row.id)
            first = future.result() if future is not None and future.done() else None
            outcomes.append(first or row.outcome())
        return outcomes

    def wait(self, futures: list[Future], timeout: float | None) -> None:
        if futures:
            wait(futures, timeout=timeout)

    def outcomes(self, delivery_ids: list[int]) -> list[dict]:
        if not delivery_ids:
            return []
        rows = db.session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))
                                  .execution_options(populate_existing=True)).all()
        by_id = {row.id: row for row in rows}
        return [by_id[i].to_outcome() for i in delivery_ids if i in by_id]

    def notify(self, destinations: list[Destination], notification: Notification,
               timeout: float | None = None) -> list[dict]:
        """Stage, commit and send one notification to `destinations` outside any state change; wait for the
        first attempts (at most `timeout` seconds) and return each delivery's outcome so far."""
        rows = self.stage([Target.of(d) for d in destinations], notification)
        db.session.commit()
        self.wait(list(self.dispatch(rows).values()), timeout)
        return self.outcomes([row.id for row in rows])

    def run_due(self, limit: int | None = None, wait_for_them: bool = True) -> int:
        """Send every due retry, and every pending row whose sender died, that nothing earlier holds up.

        Rows are only handed to the pool here; each is claimed just before it is sent. Returns how many were
        attempted (wait_for_them) or handed over.
        """
        with self._lock:
            capacity = max(0, self.settings.workers * 2 - len(self._queued))
            queued = set(self._queued)
        if limit is not None:
            capacity = min(capacity, limit)
        if capacity == 0:
            return 0
        now = utcnow()
        ids = db.session.scalars(
            select(Delivery.id).where(*_claimable(now)).order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(capacity + len(queued))).all()
        db.session.commit()
        futures = [self._submit(i, None).done for i in ids if i not in queued][:capacity]
        if not wait_for_them:
            return len(futures)
        wait(futures)
        return sum(f.result().attempted for f in futures)

    def drain(self, max_seconds: float = 300) -> int:
        """Send everything that is due until nothing is (for `deliveries retry` from cron)."""
        total, started = 0, time.monotonic()
        while time.monotonic() - started < max_seconds:
            tried = self.run_due()
            total += tried
            if not tried:
                break
        return total

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- test sends: synchronous, no retries ---------------------------------------------------------------------

    def send_test(self, destination_type, config: dict, name: str, destination_id: int | None = None) -> dict:
        """Send a marked test alert with (possibly unsaved) settings, once, no retries; log it as event 'test'.

        Where the vendor opens incidents, the test incident is resolved straight after, so nothing stays open.
        """
        notification = make_test_notification(self.app.config["HERALD_BASE_URL"])
        now = utcnow()
        token = uuid.uuid4().hex
        row = Delivery(
            destination_id=destination_id, destination_name=name[:100] or "(unsaved)",
            destination_type=destination_type.type, alert_id=None, alert_name=notification.alert_name,
            event="test", status="pending", notification=notification.to_json(), created_at=now, updated_at=now,
            attempts=1, last_attempt_at=now, lease_owner=self.owner, lease_token=token,
            lease_until=now + self.settings.lease)
        db.session.add(row)
        db.session.flush()
        job = Job(delivery_id=row.id, token=token, attempt=1, event="test", alert_id=None,
                  destination_id=destination_id, destination_name=row.destination_name, dtype=destination_type,
                  config=config, notification=notification, refs={}, created_at=now)
        db.session.commit()  # nothing of the row is read again before the send: no connection is held during it
        outcome = self._send(job, final=True)
        if outcome.status == "sent" and destination_type.resolves:
            resolve = replace(notification, state="ok", previous_state="triggered")
            second = self._send(replace(job, notification=resolve, refs=outcome.remember or {}), final=True)
            if second.status == "sent":
                second.detail = f"{outcome.detail or ''} The test incident was resolved again.".strip()
            outcome = second
        self._record(job, outcome)
        return self.outcomes([job.delivery_id])[0]

    # --- sending -------------------------------------------------------------------------------------------------

    def _pool_for_sends(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="herald-send")
            return self._pool

    def _idle_workers(self) -> int:
        with self._lock:
            return self.settings.workers - self._busy - max(0, len(self._queued) - self._busy)

    def _submit(self, delivery_id: int, token: str | None, job: "Job | None" = None,
                lease_until: datetime | None = None) -> "Task":
        pool = self._pool_for_sends()
        with self._lock:
            task = self._queued.get(delivery_id)
            if task is None:
                first: Future = Future()
                task = Task(pool.submit(self._run, delivery_id, token, job, lease_until, first), first)
                self._queued[delivery_id] = task
                task.done.add_done_callback(lambda _f, i=delivery_id: self._forget(i))
            return task

    def _forget(self, delivery_id: int) -> None:
        with self._lock:
            self._queued.pop(delivery_id, None)

    def _run(self, delivery_id: int, token: str | None, job: "Job | None", lease_until: datetime | None,
             first: Future) -> "RunResult":
        """Attempt the row, then whatever of the same alert and destination was waiting behind it. `first` gets
        the row's outcome once recorded, before the rows behind it are looked for: a waiting caller answers."""
        with self._lock:
            self._busy += 1
        result = RunResult()
        try:
            with self.app.app_context():
                if job is not None and not (lease_until and utcnow() + timedelta(seconds=self.settings.deadline)
                                            < lease_until):
                    job = None  # queued too long: the staged lease may not outlast the send, so claim again
                while delivery_id is not None:
                    try:
                        if job is None:
                            job = self._claim(delivery_id, token)
                        if job is None:
                            return result
                        result.attempted += 1
                        outcome = self._send(job, final=False)
                        if self._record(job, outcome) and result.attempted == 1:
                            result.first = outcome.as_dict(job)
                            first.set_result(result.first)
                            # Let the caller waiting for it answer now, before this thread's bookkeeping: on the
                            # one CPU Herald keeps to, the woken thread would otherwise wait for this one to block
                            os.sched_yield()
                        delivery_id, token, job = self._next_in_line(job, outcome), None, None
                    except Exception:  # a bug or a database fault must not stop the pool; the lease expires
                        log.exception("delivery %s: unexpected error", delivery_id)
                        db.session.rollback()
                        return result
        finally:
            with self._lock:
                self._busy -= 1
            if not first.done():
                first.set_result(None)
        return result

    def _claim(self, delivery_id: int, token: str | None) -> Job | None:
        """Take the row's lease and count the attempt, or use the lease staging took; None if it is not ours."""
        now = utcnow()
        columns = (Delivery.attempts, Delivery.event, Delivery.alert_id, Delivery.destination_id,
                   Delivery.destination_name, Delivery.destination_type, Delivery.notification, Delivery.created_at)
        row = None
        if token is not None:
            # Staged with our lease: sendable only while the lease outlasts a whole send
            row = db.session.execute(select(*columns).where(
                Delivery.id == delivery_id, Delivery.lease_token == token,
                Delivery.lease_until > now + timedelta(seconds=self.settings.deadline))).one_or_none()
        if row is None:
            token = uuid.uuid4().hex
            claimed = db.session.execute(
                update(Delivery).where(Delivery.id == delivery_id, *_claimable(now))
                .values(lease_owner=self.owner, lease_token=token, lease_until=now + self.settings.lease,
                        attempts=Delivery.attempts + 1, last_attempt_at=now, updated_at=now)
                .execution_options(synchronize_session=False)).rowcount
            if claimed != 1:
                db.session.rollback()
                return None
            row = db.session.execute(select(*columns).where(Delivery.id == delivery_id)).one()
        problem, dtype, config, refs = None, REGISTRY.get(row.destination_type), {}, {}
        destination = db.session.get(Destination, row.destination_id) if row.destination_id else None
        if destination is None or dtype is None:
            problem = Outcome("failed", error="The destination was deleted before this could be sent.")
        elif not destination.enabled:
            problem = Outcome("skipped", detail="The destination was disabled before this could be sent.")
        else:
            try:
                config = destination.config
            except SecretsUnreadable:
                problem = Outcome("failed", error="The destination's secrets cannot be decrypted: the encryption "
                                                  "key changed. Enter them again.")
            if row.alert_id is not None and dtype.uses_refs:
                ref = db.session.get(DeliveryRef, (destination.id, row.alert_id))
                refs = dict(ref.data) if ref else {}
        db.session.commit()  # ends the transaction: the connection goes back to the pool for the send
        job = Job(delivery_id=delivery_id, token=token, attempt=row.attempts, event=row.event, alert_id=row.alert_id,
                  destination_id=row.destination_id, destination_name=row.destination_name, dtype=dtype,
                  config=config, notification=Notification.from_json(row.notification), refs=refs,
                  created_at=row.created_at)
        if problem is not None:
            DELIVERIES.labels(row.destination_type, problem.status, "invalid").inc()
            self._record(job, problem)
            return None
        return job

    def _send(self, job: Job, final: bool) -> Outcome:
        """One attempt over the network; no database access in here."""
        dtype = job.dtype
        secrets = _redactions(dtype, job.config)
        ctx = SendContext(timeout=self.settings.timeout, deadline_seconds=self.settings.deadline, refs=dict(job.refs),
                          block_private=self.settings.block_private, attempt=job.attempt,
                          ca_bundle=self.settings.ca_bundle)
        started = time.monotonic()
        try:
            result: SendResult = dtype.send(job.config, job.notification, ctx)
        except DeliveryError as exc:
            elapsed = self._timed(dtype, started)
            message = redact(exc.message, [*secrets, *ctx.sent_credentials])
            log.warning("delivery %s to %s (%s): %s", job.delivery_id, job.destination_name, dtype.type, message)
            outcome = Outcome("failed", status_code=exc.status_code, error=message, duration_ms=elapsed)
            if exc.retryable and not final:
                self._schedule_retry(job, outcome, exc.retry_after)
            DELIVERIES.labels(dtype.type, outcome.status,
                              failure_reason(dtype.type, exc.status_code, exc.retryable)).inc()
            return outcome
        except Exception as exc:  # a defect in a destination module: say so, never retry blindly
            # Not log.exception: a traceback's locals and reprs could carry the config's secrets
            log.error("delivery %s: the %s sender raised %s", job.delivery_id, dtype.type, type(exc).__name__)
            DELIVERIES.labels(dtype.type, "failed", "internal").inc()
            return Outcome("failed", error=redact(f"Internal error in the {dtype.label} sender: {exc!r}",
                                                  [*secrets, *ctx.sent_credentials]),
                           duration_ms=self._timed(dtype, started))
        finally:
            ctx.close()
        DELIVERIES.labels(dtype.type, "sent", "").inc()
        remember = {**job.refs, **result.remember}
        return Outcome("sent", status_code=result.status_code, duration_ms=self._timed(dtype, started),
                       detail=redact(result.detail or "", [*secrets, *ctx.sent_credentials]) or None,
                       remember={k: v for k, v in remember.items() if v is not None})

    @staticmethod
    def _timed(dtype, started: float) -> int:
        elapsed = time.monotonic() - started
        DELIVERY_LATENCY.labels(dtype.type).observe(elapsed)
        return int(elapsed * 1000)

    def _schedule_retry(self, job: Job, outcome: Outcome, retry_after: float | None) -> None:
        policy = self.settings.policy
        now = utcnow()
        if job.attempt < policy.max_attempts:
            next_at = now + timedelta(seconds=policy.delay(job.attempt, retry_after))
            if (next_at - (job.created_at or now)).total_seconds() <= policy.max_age:
                outcome.status, outcome.next_attempt_at = "retrying", next_at
                return
            outcome.error += f" Gave up: the next try would come more than {policy.max_age:g} s after the first."
        else:
            outcome.error += f" Gave up after {job.attempt} attempts."

    # --- recording -----------------------------------------------------------------------------------------------

    def _record(self, job: Job, outcome: Outcome) -> bool:
        """Write the attempt's result if this claim still holds the lease; False if another worker took it."""
        return self._results.write(job, outcome)

    def _next_in_line(self, job: Job, outcome: Outcome) -> int | None:
        """The next row of the same alert and destination, once this one no longer holds it up.

        Read after the result's commit, so a row staged meanwhile is either found here or saw this one done and
        was claimed by its own sender. No commit of its own: the claim that follows, or the end of the app
        context, ends the read."""
        pair = (job.alert_id, job.destination_id)
        if job.alert_id is None or job.destination_id is None or outcome.status in ACTIVE:
            return None
        with self._lock:
            if pair not in self._held_back:
                return None  # nothing was staged behind it here (the common case: no read at all)
        following = core(_NEXT_IN_LINE, {"alert_id": job.alert_id, "destination_id": job.destination_id,
                                          "after": job.delivery_id}).scalar()
        if following is None:
            with self._lock:
                self._held_back.discard(pair)
        return following


# The hot path's statements, built once (building one costs about as much as running it)
_DELIVERY = Delivery.__table__
_WAITING_PAIRS = (select(_DELIVERY.c.destination_id).distinct()
                  .where(_DELIVERY.c.alert_id == bindparam("alert_id"),
                         _DELIVERY.c.destination_id.in_(bindparam("destination_ids", expanding=True)),
                         _DELIVERY.c.status.in_(ACTIVE)))
# A recovery's two statements (built once: they run on every recovery of an alert bound to an incident vendor)
_SUPERSEDE_TRIGGERS = (
    update(_DELIVERY)
    .where(_DELIVERY.c.alert_id == bindparam("alert"),
           _DELIVERY.c.destination_id.in_(bindparam("destinations", expanding=True)),
           _DELIVERY.c.event == "trigger", _DELIVERY.c.status.in_(ACTIVE),
           or_(_DELIVERY.c.lease_until.is_(None), _DELIVERY.c.lease_until < bindparam("moment")))
    .values(status="skipped", detail=bindparam("why"), next_attempt_at=None, lease_owner=None, lease_token=None,
            lease_until=None, updated_at=bindparam("moment")))
_LAST_RESOLVE = _DELIVERY.alias("last_resolve")
_EPISODE_ATTEMPTS = (
    select(_DELIVERY.c.destination_id, func.max(_DELIVERY.c.attempts))
    .where(_DELIVERY.c.alert_id == bindparam("alert_id"),
           _DELIVERY.c.destination_id.in_(bindparam("destination_ids", expanding=True)),
           _DELIVERY.c.event == "trigger",
           _DELIVERY.c.id > (select(func.coalesce(func.max(_LAST_RESOLVE.c.id), 0))
                             .where(_LAST_RESOLVE.c.alert_id == bindparam("alert_id"),
                                    _LAST_RESOLVE.c.destination_id == _DELIVERY.c.destination_id,
                                    _LAST_RESOLVE.c.event == "resolve")
                             .scalar_subquery()))
    .group_by(_DELIVERY.c.destination_id))
_REFS = DeliveryRef.__table__
_REFS_OF = select(_REFS.c.destination_id, _REFS.c.data).where(
    _REFS.c.alert_id == bindparam("alert"), _REFS.c.destination_id.in_(bindparam("destinations", expanding=True)))
_DESTINATION = Destination.__table__


def target_columns(alert_id) -> tuple:
    """A destination's columns as Target.of_columns takes them, with whether a delivery of the alert (`alert_id`:
    a bind or a column) to it is pending or retrying."""
    return (_DESTINATION.c.id, _DESTINATION.c.name, _DESTINATION.c.type, _DESTINATION.c.enabled,
            _DESTINATION.c.options, _DESTINATION.c.encrypted_secrets,
            # OR, not IN: a literal IN list is expanded at every run, which keeps the statement off the prepared path
            exists().where(_DELIVERY.c.alert_id == alert_id, _DELIVERY.c.destination_id == _DESTINATION.c.id,
                           or_(*(_DELIVERY.c.status == status for status in ACTIVE))).label("waiting"))


_BOUND_DESTINATIONS = (
    select(*target_columns(bindparam("alert_id")))
    .join_from(_DESTINATION, alert_destination, alert_destination.c.destination_id == _DESTINATION.c.id)
    .where(alert_destination.c.alert_id == bindparam("alert_id")).order_by(_DESTINATION.c.name))
_RESOLVE_BEHIND = select(exists().where(
    _DELIVERY.c.alert_id == bindparam("alert_id"), _DELIVERY.c.destination_id == bindparam("destination_id"),
    _DELIVERY.c.id > bindparam("after"), _DELIVERY.c.event == "resolve"))
_INSERT_DELIVERIES = insert(_DELIVERY).returning(_DELIVERY.c.id, sort_by_parameter_order=True)
ROWS_PER_INSERT = 50  # 18 columns a row: 900 bound values, inside SQLite's oldest limit (999)


def _insert_deliveries(rows: list[dict]) -> list[int]:
    """Insert the change's rows and return their ids, in the rows' order.

    A database does not promise to return the rows of a multi-row INSERT in the order given, so SQLAlchemy keeps
    the order on SQLite by inserting one row per statement: 12 statements for a fan-out to 12 destinations, 0.6 ms
    before its first send could start. Here each statement inserts up to ROWS_PER_INSERT rows and returns each id
    with its destination, which is another one for every row of a change."""
    destinations = [row["destination_id"] for row in rows]
    if len(rows) == 1 or None in destinations or len(set(destinations)) != len(rows):
        return core(_INSERT_DELIVERIES, rows).scalars().all()
    ids = {}
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        parameters = {f"{key}_{i}": value for i, row in enumerate(chunk) for key, value in row.items()}
        ids.update(core(_insert_rows(tuple(chunk[0]), len(chunk)), parameters).all())
    return [ids[destination_id] for destination_id in destinations]


@functools.lru_cache(maxsize=64)
def _insert_rows(columns: tuple[str, ...], count: int):
    """INSERT INTO delivery (columns) VALUES (…) × count RETURNING destination_id, id: a bound value per cell."""
    return (insert(_DELIVERY)
            .values([{name: bindparam(f"{name}_{i}", type_=_DELIVERY.c[name].type) for name in columns}
                     for i in range(count)])
            .returning(_DELIVERY.c.destination_id, _DELIVERY.c.id))
_NEXT_IN_LINE = (select(_DELIVERY.c.id)
                 .where(_DELIVERY.c.alert_id == bindparam("alert_id"),
                        _DELIVERY.c.destination_id == bindparam("destination_id"),
                        _DELIVERY.c.id > bindparam("after"), _DELIVERY.c.status.in_(ACTIVE))
                 .order_by(_DELIVERY.c.id).limit(1))


@functools.cache
def _write_result(columns: tuple[str, ...]):
    """UPDATE delivery SET <columns> WHERE id = :row AND lease_token = :token (one per set of columns)."""
    return (update(_DELIVERY)
            .where(_DELIVERY.c.id == bindparam("row"), _DELIVERY.c.lease_token == bindparam("token"))
            .values({name: bindparam(f"new_{name}") for name in columns}))


@dataclass
class _Result:
    job: Job
    outcome: Outcome
    done: bool = False
    written: bool = False
    error: Exception | None = None


class RecordFailed(Exception):
    """The database refused a batch of results; the rows keep their leases, which expire, and are sent again."""


class ResultWriter:
    """Writes attempts' results for every sender of a process, as a group commit: results that arrive while a write
    is under way go together into the next one, one transaction and one UPDATE per shape of result for all of
    them. Alone, a result is written at once. Each write is fenced by the row's lease token, as one by one."""

    def __init__(self):
        self._cv = threading.Condition()
        self._queue: list[_Result] = []
        self._writing = False

    def write(self, job: Job, outcome: Outcome) -> bool:
        item = _Result(job, outcome)
        with self._cv:
            self._queue.append(item)
            while not item.done:
                if self._writing:
                    self._cv.wait()
                    continue
                self._writing, batch, self._queue = True, self._queue, []
                self._cv.release()
                try:
                    _write_results(batch)
                except Exception as exc:  # a database fault: every result of the batch is left to its lease
                    for each in batch:
                        each.error = exc
                finally:
                    self._cv.acquire()
                    self._writing = False
                    for each in batch:
                        each.done = True
                    self._cv.notify_all()
        if item.error is not None:
            raise RecordFailed(f"the result of delivery {job.delivery_id} could not be written") from item.error
        if not item.written:
            log.warning("delivery %s: the lease was lost before the result was written; another worker has it",
                        job.delivery_id)
        return item.written


def _write_results(batch: list[_Result]) -> None:
    """Write a batch of results in one transaction of its own (never the calling thread's session, whose
    transaction is not ours to commit)."""
    now = utcnow()
    if len(batch) == 1 and not _remembers(batch[0]):
        _write_one_result(batch[0], now)
        return
    with db.engine.connect() as conn:
        shapes: dict[tuple[str, ...], list[tuple[_Result, dict]]] = {}
        for item in batch:
            values = _result_values(conn, item.job, item.outcome, now)
            shapes.setdefault(tuple(values), []).append((item, {
                "row": item.job.delivery_id, "token": item.job.token, **{f"new_{k}": v for k, v in values.items()}}))
        whole = all(prepared.execute(conn, _write_result(columns), [params for _, params in entries]).rowcount
                    == len(entries)
                    for columns, entries in shapes.items())
        if whole:
            for item in batch:
                item.written = True
        else:
            # A lease was lost somewhere (rare): the sum of rows does not say where, so write them one by one
            conn.rollback()
            for columns, entries in shapes.items():
                for item, params in entries:
                    item.written = prepared.execute(conn, _write_result(columns), params).rowcount == 1
        for item in batch:
            if item.written and _remembers(item):
                _upsert_refs(conn, item.job.destination_id, item.job.alert_id, item.outcome.remember, now)
        conn.commit()


def _remembers(item: _Result) -> bool:
    """Whether writing this result also stores vendor references (a second statement, in the same transaction)."""
    job, outcome = item.job, item.outcome
    return (outcome.status == "sent" and job.alert_id is not None and job.destination_id is not None
            and outcome.remember is not None and outcome.remember != job.refs)


def _write_one_result(item: _Result, now: datetime) -> None:
    """A lone result that stores no references is one UPDATE, atomic by itself: run outside a transaction it is
    one round trip to PostgreSQL, where BEGIN, UPDATE and COMMIT are three (and one fewer commit on SQLite)."""
    with db.engine.connect() as conn, prepared.autocommit(conn):
        values = _result_values(conn, item.job, item.outcome, now)
        item.written = prepared.execute(conn, _write_result(tuple(values)), {
            "row": item.job.delivery_id, "token": item.job.token,
            **{f"new_{k}": v for k, v in values.items()}}).rowcount == 1


def _result_values(conn, job: Job, outcome: Outcome, now: datetime) -> dict:
    """The columns an attempt's result writes; a trigger to retry that a recovery now follows is superseded."""
    if (outcome.status == "retrying" and job.event == "trigger" and _resolves(job.dtype.type if job.dtype else "")
            and conn.execute(_RESOLVE_BEHIND, {"alert_id": job.alert_id, "destination_id": job.destination_id,
                                               "after": job.delivery_id}).scalar()):
        outcome.status, outcome.next_attempt_at = "skipped", None
        outcome.detail = SUPERSEDED
    values = dict(status=outcome.status, status_code=outcome.status_code, error=outcome.error,
                  duration_ms=outcome.duration_ms, next_attempt_at=outcome.next_attempt_at, updated_at=now,
                  lease_owner=None, lease_token=None, lease_until=None)
    if outcome.detail is not None or outcome.status == "sent":
        values["detail"] = outcome.detail
    if outcome.status == "sent":
        values["sent_at"] = now
    return values


def _redactions(dtype, config: dict) -> list[str]:
    """Every secret a send may put on the wire: the type's secret options, and credentials inside its URLs."""
    values = [config.get(name) for name in _secret_fields(dtype)]
    for value in config.values():
        if isinstance(value, str) and "://" in value and "@" in value:
            userinfo = split_userinfo(value)[1]
            if userinfo:
                values += [userinfo, *userinfo.split(":", 1)]
    return values


@functools.cache
def _secret_fields(dtype) -> tuple[str, ...]:
    """A type's secret option names (building its form to find them costs more than a local send)."""
    return tuple(dtype.secret_fields())


def _resolves(type_key: str) -> bool:
    dtype = REGISTRY.get(type_key)
    return bool(dtype and dtype.resolves)


def _claimable(now: datetime) -> tuple:
    """Due, not leased by a live sender, and nothing of the same alert and destination ahead of it."""
    ahead = aliased(Delivery)
    return (
        Delivery.status.in_(ACTIVE),
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        ~exists().where(and_(ahead.alert_id == Delivery.alert_id, ahead.destination_id == Delivery.destination_id,
                             ahead.id < Delivery.id, ahead.status.in_(ACTIVE))),
    )


def _upsert_refs(conn, destination_id: int, alert_id: int, data: dict, now: datetime) -> None:
    """One statement, so two writers can never both insert (get-then-insert would race)."""
    prepared.execute(conn, _upsert_refs_statement(conn.dialect.name),
                     {"ref_destination": destination_id, "ref_alert": alert_id, "ref_data": data, "moment": now})


@functools.cache
def _upsert_refs_statement(dialect_name: str):
    """Built once per dialect: building it (its `excluded` alias most of all) cost more than running it."""
    insert = postgresql_insert if dialect_name == "postgresql" else sqlite_insert
    statement = insert(_REFS).values(destination_id=bindparam("ref_destination"), alert_id=bindparam("ref_alert"),
                                     data=bindparam("ref_data", type_=_REFS.c.data.type),
                                     updated_at=bindparam("moment", type_=_REFS.c.updated_at.type))
    return statement.on_conflict_do_update(
        index_elements=["destination_id", "alert_id"],
        set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at})


def get_notifier(app) -> Notifier:
    """The app's one Notifier, so every request shares one bounded pool of senders."""
    notifier = app.extensions.get("herald_notifier")
    if notifier is None:
        with _NOTIFIER_LOCK:
            notifier = app.extensions.get("herald_notifier")
            if notifier is None:
                notifier = app.extensions["herald_notifier"] = Notifier(app)
    return notifier


_NOTIFIER_LOCK = threading.Lock()

