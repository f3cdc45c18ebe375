"""The delivery hot path's Core statements, compiled once per dialect and run on the DBAPI cursor.

A state change runs about eight small statements. Through `Connection.execute` each one costs several times
what the database spends on it: a cache key, an execution context, parameter processing and a result object,
every time. Here a statement is compiled once for the dialect (and, for an INSERT or UPDATE, for the set of
keys it is given, as SQLAlchemy itself compiles it) and its bind and result processors are looked up once;
each run then only processes the values and calls the cursor. The SQL is SQLAlchemy's own, so both
dialects get what `Connection.execute` would have sent.

Anything outside that narrow case (expanding IN lists, Python-side column defaults, several parameter
sets, escaped bind names) goes through `Connection.execute` unchanged, and so does any statement on an
engine with cursor events, which this path would not fire.
"""
from collections import namedtuple
from contextlib import contextmanager

from sqlalchemy import exc
from sqlalchemy.engine import Connection

_FALLBACK = object()  # a cache entry: this statement, with these keys, goes through Connection.execute


class PreparedStatement:
    """One statement compiled for one dialect and one set of parameter keys."""

    __slots__ = ("sql", "binds", "positional", "columns", "row", "result_processors")

    def __init__(self, compiled, dialect, columns):
        self.sql = compiled.string
        self.positional = compiled.positional
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names = compiled.positiontup if self.positional else list(by_name)
        # (name on the wire, key in the caller's parameters, the bind's own value, its processor)
        self.binds = [(name, by_name[name].key, by_name[name], by_name[name].type.dialect_impl(dialect)
                       .bind_processor(dialect)) for name in names]
        self.columns = columns
        self.row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
        self.result_processors = None  # looked up on the first run, from the cursor's column types

    def parameters(self, given: dict):
        values = [] if self.positional else {}
        for name, key, bind, processor in self.binds:
            if key in given:
                value = given[key]
            elif bind.callable is not None:
                value = bind.callable()
            elif bind.required:
                raise KeyError(key)  # let Connection.execute say which value is missing, in its words
            else:
                value = bind.value
            if processor is not None:
                value = processor(value)
            if self.positional:
                values.append(value)
            else:
                values[name] = value
        return values


class PreparedResult:
    """What the hot path reads of a CursorResult: rows as named tuples, scalars, the row count."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list, rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def __iter__(self):
        return iter(self.rows)

    def all(self) -> list:
        return list(self.rows)

    def first(self):
        return self.rows[0] if self.rows else None

    def one_or_none(self):
        if len(self.rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self):
        if len(self.rows) != 1:
            raise (exc.NoResultFound("No row was found when one was required") if not self.rows
                   else exc.MultipleResultsFound("Multiple rows were found when exactly one was required"))
        return self.rows[0]

    def scalar(self):
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> "PreparedResult":
        """The first column of every row (all(), first(), one_or_none() and iteration then give values)."""
        return PreparedResult([row[0] for row in self.rows], self.rowcount)


# Statements are module constants (or cached per set of columns), so the cache stays small; the cap only keeps a
# statement built afresh at every call from growing it without end (such a one is compiled at each run)
MAX_PREPARED = 512
_CACHE: dict = {}


def execute(conn: Connection, statement, parameters=None):
    """`conn.execute(statement, parameters)`, through a statement prepared once when it can be."""
    if isinstance(parameters, list):
        if len(parameters) != 1:
            return conn.execute(statement, parameters)  # several rows: SQLAlchemy's executemany and its batching
        parameters = parameters[0]
    parameters = parameters or {}
    dialect = conn.dialect
    cache_key = (statement, dialect.name, tuple(sorted(parameters)))
    prepared = _CACHE.get(cache_key)
    if prepared is None:
        prepared = _prepare(statement, dialect, cache_key[2])
        if len(_CACHE) < MAX_PREPARED:
            _CACHE[cache_key] = prepared
    if prepared is _FALLBACK or conn._has_events or conn.engine._has_events:
        return conn.execute(statement, parameters)
    try:
        values = prepared.parameters(parameters)
    except KeyError:
        return conn.execute(statement, parameters)
    if not conn.in_transaction():
        conn.begin()  # so that conn.commit() commits what the cursor writes
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(prepared.sql, values)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else []
        rowcount = cursor.rowcount
    except dialect.loaded_dbapi.Error as error:
        invalidated = dialect.is_disconnect(error, dbapi_connection, cursor)
        if invalidated:
            conn.invalidate(error)
        raise exc.DBAPIError.instance(prepared.sql, values, error, dialect.loaded_dbapi.Error,
                                      connection_invalidated=invalidated, dialect=dialect) from error
    finally:
        cursor.close()
    if description is not None:
        rows = _processed(prepared, dialect, description, rows)
    return PreparedResult(rows, rowcount)


@contextmanager
def autocommit(conn: Connection):
    """Each statement run on `conn` inside the block commits by itself (the DBAPI's own autocommit).

    SQLAlchemy's `isolation_level="AUTOCOMMIT"` does the same, and resets the connection's isolation level at its
    return to the pool: on the sender's hot path that cost more than the two round trips it saves."""
    dbapi_connection = conn.connection.dbapi_connection
    # sqlite3: no isolation level means no implicit BEGIN; psycopg and most others have an `autocommit` flag
    flag, on = ("isolation_level", None) if conn.dialect.name == "sqlite" else ("autocommit", True)
    before = getattr(dbapi_connection, flag)
    setattr(dbapi_connection, flag, on)
    try:
        yield conn
    finally:
        setattr(dbapi_connection, flag, before)


def _processed(prepared: PreparedStatement, dialect, description, rows: list) -> list:
    if prepared.result_processors is None:
        if len(description) != len(prepared.columns):
            raise exc.InvalidRequestError(f"{prepared.sql!r} returned {len(description)} columns, "
                                          f"{len(prepared.columns)} expected")
        prepared.result_processors = [column.type.dialect_impl(dialect).result_processor(dialect, entry[1])
                                      for column, entry in zip(prepared.columns, description)]
    processors, make = prepared.result_processors, prepared.row._make
    if not any(processors):
        return [make(row) for row in rows]
    return [make([value if processor is None else processor(value) for processor, value in zip(processors, row)])
            for row in rows]


def _prepare(statement, dialect, keys: tuple):
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if (any(bind.expanding or bind.literal_execute for bind in compiled.binds.values())
            or compiled.insert_prefetch or compiled.update_prefetch or compiled.escaped_bind_names
            or compiled.literal_execute_params or compiled.post_compile_params):
        return _FALLBACK
    columns = list(getattr(statement, "exported_columns", ()))  # a SELECT's columns, or what it RETURNS
    if compiled.returning and len(compiled.returning) != len(columns):
        return _FALLBACK  # a RETURNING SQLAlchemy added on its own (a primary key), read by its own result
    return PreparedStatement(compiled, dialect, columns)
