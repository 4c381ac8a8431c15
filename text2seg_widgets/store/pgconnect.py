"""Reaching a PostgreSQL server: URL forms, one clear message per way a connection fails, and
creating the database of a new team project.

Credentials come from the URL, from ``PGPASSFILE`` (``~/.pgpass``) or from the ``PG*``
environment (libpq reads them); no password is ever written to a log, a message, a manifest or
the project: messages name the URL as :func:`~.db.redact` prints it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from text2seg_widgets.errors import InputError

__all__ = ["engine_url", "connect_error", "create_database", "database_name", "is_url", "redact",
           "URL_SCHEMES", "MissingDatabaseError"]

log = logging.getLogger(__name__)


#: The URL schemes that mean a PostgreSQL project.
URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_url(location: str | Path) -> bool:
    """True when ``location`` names a PostgreSQL project rather than a folder."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """``url`` without its password (for logs, messages and manifests)."""
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        return "<an unreadable database URL>"
    bare = sa.URL.create(parsed.drivername, username=parsed.username, host=parsed.host,
                         port=parsed.port, database=parsed.database,
                         query={k: v for k, v in parsed.query.items() if k != "password"})
    return bare.render_as_string(hide_password=False)


def engine_url(url: str) -> sa.URL:
    """``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` as the psycopg 3 dialect;
    :class:`InputError` for anything else."""
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise InputError(f"cannot read the database URL ({exc}); write it as "
                         "postgresql://USER@HOST:PORT/DATABASE") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise InputError(f"{parsed.drivername}:// is not a PostgreSQL URL; write "
                         "postgresql://USER@HOST:PORT/DATABASE, or give a folder for a "
                         "one-person (SQLite) project")
    if not parsed.database:
        raise InputError("the database URL names no database; write "
                         "postgresql://USER@HOST:PORT/DATABASE")
    return parsed.set(drivername="postgresql+psycopg")


def database_name(url: str) -> str:
    return str(engine_url(url).database)


class MissingDatabaseError(InputError):
    """The server is there, the database is not (``Project.create`` makes it)."""


def connect_error(url: str, exc: sa_exc.DBAPIError) -> InputError:
    """One line saying why connecting to ``url`` failed and what to do (no password in it)."""
    where = redact(url)
    parsed = engine_url(url)
    text = str(exc.orig).strip()
    first = text.splitlines()[0] if text else type(exc.orig).__name__
    if "password authentication failed" in text or "no password supplied" in text:
        return InputError(f"the server refused the login of user {parsed.username!r} at {where}: "
                          "wrong or missing password. Put it in PGPASSFILE (~/.pgpass), PGPASSWORD "
                          "or the URL")
    if "does not exist" in text and "database" in text:
        return MissingDatabaseError(f"the database {parsed.database!r} does not exist on {where}; create "
                          "the project there with Project.create(URL, classes=[...]) (or "
                          "`text2seg-widgets project create URL`), or check the name")
    if "role" in text and "does not exist" in text:
        return InputError(f"the server at {where} has no user {parsed.username!r}; ask its "
                          "administrator for an account, or give another user in the URL")
    if ("Connection refused" in text or "could not connect" in text or "timeout" in text.lower()
            or "No such file or directory" in text or "could not translate host" in text):
        return InputError(f"cannot reach a PostgreSQL server at {where} ({first}); is it running "
                          "and is the host/port right? For a local trial, start one with "
                          "`text2seg-widgets pg start`")
    return InputError(f"cannot connect to {where}: {first}")


def create_database(url: str) -> bool:
    """Create the database ``url`` names (through the server's ``postgres`` database); False when
    it already exists. :class:`InputError` when the server refuses."""
    target = engine_url(url)
    admin = sa.create_engine(target.set(database="postgres"), poolclass=NullPool,
                             isolation_level="AUTOCOMMIT")
    name = str(target.database)
    try:
        with admin.connect() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s",
                                    (name,)).first():
                return False
            quoted = '"' + name.replace('"', '""') + '"'
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
            log.info("created the database %s", name)
            return True
    except sa_exc.DBAPIError as exc:
        if "permission denied" in str(exc.orig):
            raise InputError(f"the user {target.username!r} may not create databases; ask the "
                             f"server's administrator to create {name!r} (createdb {name})") from None
        raise connect_error(url, exc) from None
    finally:
        admin.dispose()
