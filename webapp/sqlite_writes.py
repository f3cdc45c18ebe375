"""One writer at a time per SQLite file in this process, handed on at once rather than by SQLite's busy sleeps.

SQLite lets one connection write at a time. A connection that finds the write lock taken calls its busy
handler, which sleeps 1, 2, 5, 10, 15... ms between tries, however soon the holder is done. Under 16 API
clients a state change met about six such sleeps, 3.4 ms each on average (strace of the served process),
where the holder needed well under a millisecond, and Herald's threads sat idle while clients waited.

Here the connections of this process queue on a lock of their own before the statement that opens a write
transaction (an INSERT, UPDATE, DELETE or REPLACE: the statements before which the sqlite3 module begins
one), and the next in the queue goes the moment the holder commits, rolls back or closes. The lock is
per database file. Other processes (a `flask` command, a second server) still meet SQLite's own lock and
its busy timeout, as before.
"""
import os
import sqlite3
import threading

BUSY_TIMEOUT_SECONDS = 30  # PRAGMA busy_timeout, and the longest wait for this process's turn to write

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_QUEUES: "dict[str, threading.Lock]" = {}
_QUEUES_GUARD = threading.Lock()


def _queue_for(database) -> "threading.Lock | None":
    """The write queue of a database file; None for an in-memory database (one connection: nothing to queue)."""
    name = os.fsdecode(database) if isinstance(database, (bytes, os.PathLike)) else str(database)
    if name in ("", ":memory:") or "mode=memory" in name:
        return None
    key = name if name.startswith("file:") else os.path.realpath(name)
    with _QUEUES_GUARD:
        return _QUEUES.setdefault(key, threading.Lock())


def _opens_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class QueuedWriteCursor(sqlite3.Cursor):
    """A cursor whose writes wait for their connection's turn (QueuedWriteConnection)."""

    def execute(self, sql, parameters=()):
        self.connection.take_write_turn(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.release_write_turn_if_done()

    def executemany(self, sql, seq_of_parameters):
        self.connection.take_write_turn(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.release_write_turn_if_done()


class QueuedWriteConnection(sqlite3.Connection):
    """sqlite3.connect(..., factory=QueuedWriteConnection): holds its file's write queue from its first write
    until the transaction ends."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._queue = _queue_for(database)
        self._holds_turn = False

    def cursor(self, factory=QueuedWriteCursor):
        return super().cursor(factory)

    def take_write_turn(self, sql: str) -> None:
        if self._queue is None or self._holds_turn or not _opens_write(sql):
            return
        if not self._queue.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            # What SQLite's own busy handler says once its timeout is spent
            raise sqlite3.OperationalError("database is locked")
        self._holds_turn = True

    def release_write_turn_if_done(self) -> None:
        # A statement that ended its transaction (an autocommit write, or an error SQLite rolled back) is done
        if self._holds_turn and not self.in_transaction:
            self._release()

    def commit(self):
        try:
            super().commit()
        finally:
            self.release_write_turn_if_done()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.release_write_turn_if_done()

    def close(self):
        try:
            super().close()
        finally:
            if self._holds_turn:
                self._release()

    def _release(self) -> None:
        self._holds_turn = False
        self._queue.release()
