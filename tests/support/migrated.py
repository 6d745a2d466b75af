"""A fresh database for each test, already migrated: a copy of one migrated once per session.

Migrating an empty database costs a tenth to half a second (Alembic, every revision); a store test
wants a new database, not the migrations run again. The first test that asks for ``migrations``
(a tuple of ``migrate(engine)`` functions) builds the template from an empty database with exactly
those functions, so a broken migration still fails every test that uses it; later tests get a copy:
SQLite's file copied, PostgreSQL's ``CREATE DATABASE … TEMPLATE``. The tests of the migrations
themselves (down and up again, the schema against the models) run on such a copy as they did on a
newly migrated database: it is one, byte for byte (SQLite) or catalog for catalog (PostgreSQL).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from hotline.db import make_engine
from testkit.postgres import PostgresServer

Migration = Callable[[sa.Engine], object]

_lock = threading.Lock()
_files: dict[tuple[str, ...], Path] = {}
_databases: dict[tuple[int, tuple[str, ...]], str] = {}
_folder: list[Path] = []


def _key(migrations: Sequence[Migration]) -> tuple[str, ...]:
    return tuple(f"{m.__module__}.{m.__qualname__}" for m in migrations)


def _migrate(url: str, migrations: Sequence[Migration]) -> None:
    engine = make_engine(url)
    try:
        for migrate in migrations:
            migrate(engine)
        if engine.dialect.name == "sqlite":  # everything in the file itself, none of it in the WAL beside it
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


def _scratch() -> Path:
    if not _folder:
        _folder.append(Path(tempfile.mkdtemp(prefix="hotline-migrated-")))
        atexit.register(shutil.rmtree, _folder[0], True)
    return _folder[0]


def sqlite_url(path: Path, *migrations: Migration) -> str:
    """``path`` made a migrated SQLite database (a copy of the session's template); its URL."""
    key = _key(migrations)
    with _lock:
        if key not in _files:
            template = _scratch() / f"template-{len(_files)}.db"
            _migrate(f"sqlite:///{template}", migrations)
            _files[key] = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_files[key], path)
    return f"sqlite:///{path}"


def postgres_url(server: PostgresServer, *migrations: Migration) -> str:
    """A new database on ``server``, migrated (``CREATE DATABASE … TEMPLATE`` the session's template)."""
    import psycopg

    key = (server.port, _key(migrations))
    with _lock:
        if key not in _databases:
            url = server.create_database()
            _migrate(url, migrations)  # disposed: nobody is connected to a template while it is copied
            _databases[key] = url.rsplit("/", 1)[-1]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_databases[key]}"')
    return server.url(name)
