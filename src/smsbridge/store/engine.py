"""Engine setup for SQLite and PostgreSQL, and why a database cannot be used at all."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from ..core.errors import StoreUnavailable

# The execution option the group-commit writer sets on its connections.
WRITE_OPTION = "smsbridge_write"


def _sqlite_path(url: URL) -> Path | None:
    if not url.database or url.database == ":memory:":
        return None
    # SQLite's URI form (sqlite:///file:/srv/sms.db?mode=ro&uri=true) names the file after
    # "file:"; read as a plain path it would be a folder called "file:" in the cwd.
    return Path(url.database.removeprefix("file:")).expanduser().absolute()


def _sqlite_unusable(path: Path, message: str) -> str | None:
    if "unable to open database file" not in message and "readonly database" not in message:
        return None
    folder = path.parent
    if not folder.is_dir():
        why = f"the folder {folder} does not exist"
    elif os.statvfs(folder).f_flag & os.ST_RDONLY:
        why = "read-only file system"
    elif not os.access(folder, os.W_OK):
        # WAL mode creates its -wal and -shm files beside the database.
        why = f"read-only folder {folder}"
    elif path.exists() and not os.access(path, os.W_OK):
        why = "read-only file"
    else:
        why = message
    return (f"cannot write the SQLite database at {path}: {why}; fix its permissions or "
            "server.database")


def _postgres_unusable(url: URL, message: str) -> str | None:
    place = f"{url.host or 'localhost'}:{url.port or 5432}"
    missing = re.search(r'database "([^"]+)" does not exist', message)
    if missing:
        name = missing.group(1)
        return (f'database "{name}" does not exist on {place}; create it (createdb {name}) '
                "or fix server.database")
    lowered = message.lower()
    if "connection refused" in lowered:
        return f"cannot reach PostgreSQL at {place}: connection refused; is it running?"
    if "authentication failed" in lowered or re.search(r'role "[^"]+" does not exist', message):
        return (f'PostgreSQL at {place} refused the login of user "{url.username or ""}"; '
                "fix the user or password in server.database")
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"cannot resolve the PostgreSQL host {url.host!r}; fix server.database"
    if "timeout expired" in lowered or "timed out" in lowered:
        return f"cannot reach PostgreSQL at {place}: timed out; is it running and reachable?"
    if "connection failed" in lowered or "server closed the connection" in lowered:
        first = message.strip().splitlines()[0] if message.strip() else message
        return f"cannot reach PostgreSQL at {place}: {first}"
    return None


def unusable_reason(url: URL, exc: BaseException) -> str | None:
    """One line saying why the database cannot be used at all, or None for other errors."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(orig)
    if url.get_backend_name() == "postgresql":
        return _postgres_unusable(url, message)
    path = _sqlite_path(url)
    return _sqlite_unusable(path, message) if path is not None else None


def short_reason(exc: BaseException) -> str:
    """The driver's error class and the first line of its message, for a log line."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]


def _drop_row_details(context: ExceptionContext) -> None:
    """PostgreSQL's DETAIL quotes the failing row (message text, numbers): keep it out of logs."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary or not getattr(diag, "message_detail", None):
        return
    orig.args = (primary,)  # the driver's str() and SQLAlchemy's message both come from args
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {primary}",)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite opens transactions lazily and lets a SAVEPOINT commit on its own;
    # take BEGIN over (below) so a batch is one real transaction.
    dbapi_conn.isolation_level = None
    # WAL lets readers run beside the single writer; FULL survives power loss.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # The writer takes the write lock up front: a deferred transaction that reads
    # first could not upgrade once another process has written (SQLITE_BUSY).
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_db_engine(database_url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql://...``, tuned for the gateway.

    SQL parameters never appear in error messages (``hide_parameters``): they hold message
    text and phone numbers, and errors get logged.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder {path.parent} of the SQLite database: "
                    f"{exc.strerror or exc}; fix its permissions or server.database") from exc
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8, max_overflow=8, hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               hide_parameters=True)
        event.listen(engine, "handle_error", _drop_row_details)
        return engine
    raise ValueError(f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql")
