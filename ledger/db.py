"""Engines for SQLite (embedded default) and PostgreSQL (production), with safe transaction modes."""

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, event, inspect, make_url, text
from sqlmodel import Session, create_engine

WRITE_OPTION = "opendom_writes"
# SQLite's busy_timeout and the process lock: how long a writer waits for its turn.
SQLITE_BUSY_SECONDS = 30
# One writer at a time per SQLite engine, queued in the process (see _serialise_sqlite_writers).
_SQLITE_WRITERS: "weakref.WeakKeyDictionary[Engine, threading.RLock]" = weakref.WeakKeyDictionary()


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _create_parent_folder(url)
        # SQLite connections are cheap; the API's threads and the worker's activity threads can
        # all read at once under WAL, so the pool must not be what they queue on.
        in_memory = make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": 20, "max_overflow": 40}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )
        _serialise_sqlite_writers(engine)
        _SQLITE_WRITERS[engine] = threading.RLock()
        return engine
    # Timestamps are stored as UTC wall-clock time; the session must agree.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        # An explicit `options` replaces PGOPTIONS, so keep what the environment asked for.
        connect_args={"options": f"-c timezone=utc {os.environ.get('PGOPTIONS', '')}".strip()},
    )


def _create_parent_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _serialise_sqlite_writers(engine: Engine) -> None:
    """Write transactions (ledger.db.transaction) begin IMMEDIATE: SQLite takes its write lock up
    front, so two writers queue on busy_timeout instead of one failing on a lock upgrade
    mid-transaction. Reads begin DEFERRED and, with WAL, never block or wait for a writer.

    Writers of one process also queue on a lock of the process (`_writer_turn`) before they
    ask SQLite: SQLite's busy handler polls by sleeping 1, 2, 5 ... 100 ms, so under load a
    waiting writer slept on while the database was free and cores stood idle (seen in the
    load benchmark's profiles, waiting in BEGIN IMMEDIATE). A process lock
    hands over at once; busy_timeout is left for writers in other processes."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class SchemaOutOfDate(RuntimeError):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "the database was created by an older OpenDOM and lacks "
            + ", ".join(missing)
            + "; migrate it, or for the embedded demo state run `make clean`"
        )


UPGRADE_COMMAND = "opendom db upgrade"


class SchemaNotMigrated(RuntimeError):
    """The database is behind this code (empty, made before migrations, or at an older
    revision) and this process may not migrate it (production mode)."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        found = "no migration revision" if current is None else f"revision {current}"
        super().__init__(
            f"the database has {found}; this OpenDOM needs {head}. "
            f"Run `{UPGRADE_COMMAND}` (the migration job) against it, then start again"
        )


class SchemaNewerThanCode(RuntimeError):
    """The database was migrated by a newer OpenDOM: its revision is not in ledger/migrations.
    Running older code on it could write rows the newer schema does not expect."""

    def __init__(self, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database is at revision {current}, which this OpenDOM (head {head}) does not "
            f"know: it was migrated by a newer version. Run that version (or newer), or restore "
            f"a backup taken before `{UPGRADE_COMMAND}` ran"
        )


@dataclass(frozen=True)
class SchemaRevision:
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def newer_than_code(self) -> bool:
        """At a revision ledger/migrations does not have: migrated by a newer OpenDOM."""
        return self.current is not None and not self.at_head and not _known(self.current)


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    from ledger import migrations

    try:
        return migrations.script().get_revision(revision) is not None
    except (CommandError, KeyError):  # alembic raises ResolutionError, a CommandError
        return False


def schema_revision(engine: Engine) -> SchemaRevision:
    """The database's migration revision and this code's head (`opendom db current`)."""
    from ledger import migrations

    with engine.connect() as connection:
        return SchemaRevision(migrations.current(connection), migrations.head())


def check_schema(engine: Engine) -> SchemaRevision:
    """Refuse a database this code cannot run on without migrating it: SchemaNotMigrated when
    it is behind (or not migrated at all), SchemaNewerThanCode when it is ahead. Writes nothing:
    production processes start on a database the migration job has already upgraded."""
    revision = schema_revision(engine)
    if revision.newer_than_code:
        raise SchemaNewerThanCode(revision.current or "", revision.head)
    if not revision.at_head:
        raise SchemaNotMigrated(revision.current, revision.head)
    return revision


def prepare_schema(engine: Engine, migrate: bool) -> None:
    """At a process's start: migrate (embedded mode, `create_schema`) or only check (production
    mode, `check_schema`); either way a database newer than this code is refused."""
    if migrate:
        create_schema(engine)
    else:
        check_schema(engine)


def create_schema(engine: Engine) -> None:
    """Migrate the database to the newest revision (ledger/migrations), once per database even
    when the API and the worker start together.

    - an empty database is upgraded to head;
    - a database made by `metadata.create_all` before migrations (OpenDOM's tables, no
      `alembic_version`) is adopted: columns the baseline has and it lacks are refused
      (SchemaOutOfDate), then it is upgraded from the start, the baseline creating only the
      tables it lacks;
    - a migrated database is upgraded, which does nothing when it is current;
    - a database at a revision this code does not know (migrated by a newer OpenDOM) is refused
      (SchemaNewerThanCode), never downgraded or written to.

    All of it runs in one transaction holding the migration lock: PostgreSQL's transaction-level
    advisory lock (per schema), SQLite's write lock (BEGIN IMMEDIATE). A second process waits,
    then finds the version at head and leaves."""
    import ledger.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
    from ledger import migrations

    with _migration_lock(engine) as connection:
        version = migrations.current(connection)
        if version == migrations.head():
            return
        if SchemaRevision(version, migrations.head()).newer_than_code:
            raise SchemaNewerThanCode(version or "", migrations.head())
        if version is None:
            _refuse_older_than_baseline(connection)
        migrations.upgrade(connection)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """One transaction, held alone against other migrations of the same database: taken before
    the version is read, so a second process reads it only after the first committed."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(
                text(
                    "select pg_advisory_xact_lock(hashtext('opendom.migrations.' || current_schema()))"
                )
            )
            yield connection
        return
    with (
        _writer_turn(engine),
        engine.execution_options(**{WRITE_OPTION: True}).begin() as connection,
    ):
        yield connection


def _refuse_older_than_baseline(connection: Connection) -> None:
    """An unversioned database's tables must have every column the baseline gave them: an older
    OpenDOM's lacking one cannot be adopted, and is refused naming them."""
    from ledger import migrations

    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    missing = [
        f"{table}.{column}"
        for table, columns in migrations.baseline_columns().items()
        if table in present
        for column in columns
        if column not in {c["name"] for c in inspector.get_columns(table)}
    ]
    if missing:
        raise SchemaOutOfDate(missing)


class WriterBusy(TimeoutError):
    """Another writer of this process held SQLite's write lock too long; the caller retries."""


@contextmanager
def _sqlite_turn(lock: threading.RLock) -> Iterator[None]:
    # Temporal cancels a sync activity by raising into its thread at any bytecode, also just
    # after `acquire` returned True and before anything could note it: a flag set on return
    # would miss that turn and leak the lock, freezing every writer of the process. The lock's
    # own count for this thread (the C RLock's, updated atomically with the grant) tells what
    # this call took, whatever happened.
    held = lock._recursion_count()
    try:
        if not lock.acquire(timeout=SQLITE_BUSY_SECONDS):
            raise WriterBusy(f"no turn at the SQLite write lock within {SQLITE_BUSY_SECONDS} s")
        yield
    finally:
        if lock._recursion_count() > held:
            lock.release()


def _writer_turn(engine: Engine) -> AbstractContextManager[object]:
    """SQLite: this process's writers one at a time, each waiting at most as long as SQLite's
    own busy timeout would. PostgreSQL locks rows, not the database."""
    lock = _SQLITE_WRITERS.get(engine)
    return _sqlite_turn(lock) if lock is not None else nullcontext()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back everything on any error."""
    with (
        _writer_turn(engine),
        Session(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        ) as session,
    ):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
