"""Writers of one process queue for an SQLite file (webapp/sqlite_writes.py) instead of meeting SQLite's busy
handler, which sleeps 1, 2, 5, 10... ms between tries however soon the holder is done.

Each test gives the waiting connection a busy timeout of 0: without the queue its write fails at once with
"database is locked" while the other connection holds the write lock; with it, the write waits for its turn and
lands the moment the holder's transaction ends.
"""
import sqlite3
import threading

import pytest
from sqlalchemy import text

from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def engine(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/h.sqlite3",
                      "HERALD_HTMX_CDN": False})
    with app.app_context():
        with db.engine.connect() as conn:
            conn.execute(text("CREATE TABLE scratch (n INTEGER PRIMARY KEY)"))
            conn.commit()
        yield db.engine
        db.engine.dispose()


def impatient(engine):
    """A pooled connection that would fail at once on a taken write lock, as SQLite's busy handler is off."""
    connection = engine.raw_connection()
    connection.driver_connection.execute("PRAGMA busy_timeout=0")
    return connection


class Writer(threading.Thread):
    """Writes one row on `connection` in a thread and commits; `error` says what SQLite answered, if not ok."""

    def __init__(self, connection, n: int):
        super().__init__(daemon=True)
        self.connection, self.n, self.error = connection, n, None

    def run(self):
        try:
            self.connection.cursor().execute("INSERT INTO scratch (n) VALUES (?)", (self.n,))
            self.connection.commit()
        except sqlite3.Error as exc:
            self.error = exc


def rows(engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT n FROM scratch ORDER BY rowid")).scalars())


def test_a_second_writer_waits_its_turn_and_lands_when_the_first_commits(engine):
    holder, waiter = engine.raw_connection(), impatient(engine)
    holder.cursor().execute("INSERT INTO scratch (n) VALUES (1)")  # holds the write lock until it commits

    second = Writer(waiter, 2)
    second.start()
    second.join(0.5)
    assert second.is_alive() and second.error is None, f"the second writer did not wait: {second.error}"
    assert rows(engine) == []  # neither is visible yet

    holder.commit()
    second.join(5)
    assert not second.is_alive() and second.error is None
    assert rows(engine) == [1, 2]
    holder.close(), waiter.close()


@pytest.mark.parametrize("ending", ["rollback", "failed statement, then rollback", "back to the pool"])
def test_every_way_a_transaction_ends_hands_the_turn_on(engine, ending):
    holder, waiter = engine.raw_connection(), impatient(engine)
    cursor = holder.cursor()
    cursor.execute("INSERT INTO scratch (n) VALUES (1)")
    second = Writer(waiter, 2)
    second.start()
    second.join(0.3)
    assert second.is_alive() and second.error is None, f"the second writer did not wait: {second.error}"

    if ending == "rollback":
        holder.rollback()
    elif ending == "failed statement, then rollback":
        with pytest.raises(sqlite3.IntegrityError):
            cursor.execute("INSERT INTO scratch (n) VALUES (1)")  # the same key: the transaction stays open
        second.join(0.3)
        assert second.is_alive(), "the turn went on while the first transaction was still open"
        holder.rollback()
    else:
        holder.close()  # SQLAlchemy's pool rolls a returned connection back

    second.join(5)
    assert not second.is_alive() and second.error is None
    assert rows(engine) == [2]
    waiter.close()


def test_an_autocommit_write_gives_the_turn_back_when_it_is_done(engine):
    holder = engine.raw_connection()
    holder.driver_connection.isolation_level = None  # every statement is its own transaction
    holder.cursor().execute("INSERT INTO scratch (n) VALUES (1)")
    waiter = impatient(engine)
    second = Writer(waiter, 2)
    second.start()
    second.join(5)
    assert not second.is_alive() and second.error is None
    assert rows(engine) == [1, 2]
    holder.close(), waiter.close()


def test_another_process_still_meets_sqlites_own_lock(engine, tmp_path):
    """A writer outside this process's queue (a `flask` command, another server) is held off by SQLite itself."""
    outsider = sqlite3.connect(engine.url.database, isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    waiter = impatient(engine)
    second = Writer(waiter, 2)
    second.run()
    assert isinstance(second.error, sqlite3.OperationalError) and "locked" in str(second.error)
    outsider.execute("ROLLBACK")
    outsider.close()
    waiter.rollback()  # the failed write left its transaction open, and with it this process's turn
    second = Writer(waiter, 3)
    second.run()
    assert second.error is None and rows(engine) == [3]
    waiter.close()
