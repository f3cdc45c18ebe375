"""The background worker: every poll interval it re-notifies, hands due retries to the pool and says it is alive."""
import logging
import os
import socket
import threading
import time
from typing import Callable

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..dbtypes import utcnow
from ..extensions import db
from .models import DeliveryWorker
from .notifier import Notifier

log = logging.getLogger(__name__)


class Worker:
    """A daemon thread in this process. `periodic` jobs (the alert re-notifier) run at the start of each pass."""

    def __init__(self, app, notifier: Notifier, interval: float, periodic: tuple[Callable, ...] = ()):
        self.app = app
        self.notifier = notifier
        self.interval = interval
        self.periodic = periodic
        self.name = notifier.owner
        self.started_at = utcnow()
        self.last_pass_completed: float | None = None  # time.monotonic() of the last pass that finished
        self._started_monotonic = time.monotonic()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="herald-delivery-worker", daemon=True)

    def start(self) -> "Worker":
        self.thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def seconds_since_last_pass(self) -> float | None:
        return None if self.last_pass_completed is None else time.monotonic() - self.last_pass_completed

    def is_stalled(self) -> bool:
        """No pass has completed for three poll intervals (or the thread is gone)."""
        limit = 3 * self.interval
        if not self.is_alive():
            return True
        if self.last_pass_completed is None:
            return time.monotonic() - self._started_monotonic > limit
        return self.seconds_since_last_pass() > limit

    def run_pass(self) -> None:
        with self.app.app_context():
            self._heartbeat()
            for job in self.periodic:
                job(self.app)
            self.notifier.run_due(wait_for_them=False)
        self.last_pass_completed = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except Exception:  # keep the worker alive through a database hiccup; /healthz shows the stall
                log.exception("delivery worker pass failed")
                with self.app.app_context():
                    db.session.rollback()
            self._stop.wait(self.interval)

    def _heartbeat(self) -> None:
        now = utcnow()
        dialect = db.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(DeliveryWorker).values(name=self.name, host=socket.gethostname()[:255], pid=os.getpid(),
                                                  started_at=self.started_at, last_pass_at=now)
        db.session.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                           set_={"last_pass_at": statement.excluded.last_pass_at}))
        db.session.commit()
