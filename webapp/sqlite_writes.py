"""One writer at a time on SQLite, queued in this process instead of in SQLite's busy handler.

SQLite lets one transaction write at a time. A connection that finds the lock taken sleeps in its busy
handler (1, 2, 5, 10, 15, 20, 25 … ms) and looks again, so under contention the lock mostly sits free
while the writers waiting for it sleep: with 8 web threads and 16 senders that capped Herald at about half
the state changes per second it manages with a queue. The gate is taken just before a transaction's first
write and handed on the moment it commits or rolls back, so the next writer starts at once. Readers never
take it (WAL lets them read beside the writer). Writers in other processes (`flask` commands, a second
server) still meet SQLite's own lock and busy timeout, as before.
"""
import threading
import time

STALE_AFTER = 1.0  # seconds a holder may stay outside any transaction before the gate is taken from it
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")  # the statements before which sqlite3 opens a transaction


class WriteGate:
    def __init__(self, wait_seconds: float):
        self.wait_seconds = wait_seconds  # then the writer goes on and meets SQLite's busy timeout instead
        self._lock = threading.Lock()
        self._holder = None  # the DBAPI connection whose transaction holds the gate
        self._since = 0.0

    def before_write(self, dbapi_connection) -> None:
        if self._holder is dbapi_connection:
            return
        give_up = time.monotonic() + self.wait_seconds
        while not self._lock.acquire(timeout=0.05):
            self._take_back_if_stale()
            if time.monotonic() > give_up:
                return
        self._holder, self._since = dbapi_connection, time.monotonic()

    def after_end(self, dbapi_connection) -> None:
        """The connection committed or rolled back: its write lock is gone, hand the gate on."""
        if self._holder is dbapi_connection:
            self._holder = None
            self._lock.release()

    def _take_back_if_stale(self) -> None:
        # A connection closed or dropped without commit or rollback would hold the gate for ever. Between
        # taking the gate and sqlite3's BEGIN there are microseconds, so a holder out of any transaction for a
        # whole second has finished without telling us.
        holder = self._holder
        if holder is None or time.monotonic() - self._since < STALE_AFTER:
            return
        try:
            finished = not holder.in_transaction
        except Exception:  # closed
            finished = True
        if finished:
            self.after_end(holder)


def install(engine, wait_seconds: float) -> WriteGate:
    """Queue this engine's writers on one gate (an engine serves one process)."""
    from sqlalchemy import event

    gate = WriteGate(wait_seconds)
    dialect = engine.dialect

    @event.listens_for(engine, "before_cursor_execute")
    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip()[:7].upper().startswith(WRITES):
            gate.before_write(conn.connection.dbapi_connection)

    def ending(original):
        def end(dbapi_connection, *args, **kwargs):
            try:
                return original(dbapi_connection, *args, **kwargs)
            finally:
                gate.after_end(getattr(dbapi_connection, "dbapi_connection", dbapi_connection))
        return end

    # The dialect's own hooks, not the engine's commit/rollback events: those fire before the DBAPI call,
    # and the pool's reset-on-return rolls back through the dialect without any engine event
    dialect.do_commit = ending(dialect.do_commit)
    dialect.do_rollback = ending(dialect.do_rollback)
    return gate
