"""The study database, STUDY/study.sqlite: its schema, migrations and the vote transaction.

Tables (schema version SCHEMA_VERSION, kept in ``PRAGMA user_version``; ``PRAGMA
application_id`` = APPLICATION_ID marks a segan study):

    studies       one row: the design (evaluation, methods, seed, pairs per baseline)
    items         what a participant is asked: kind "pair" (ours against a baseline on one
                  object) or "check" (the ground-truth appearance against a broken painting);
                  which method is shown left and right, and the image files
    participants  a random token each (no personal data) and the seed of their item order
    votes         (participant, item) -> "left" | "right", at most one per pair (UNIQUE)

Every connection runs in WAL mode with synchronous=FULL and a busy timeout, so concurrent
requests serialise on the write lock and a vote is on disk once its request answered: a killed
server loses none. Migrations run in one transaction each; a database of a newer schema, or
not a study, is refused with a clear message.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

APPLICATION_ID = 0x5E6A5701  # "segan study", in the file header
DB_NAME = "study.sqlite"

# MIGRATIONS[i] takes a database of schema version i to i + 1 (statements split at ";": no
# ";" inside a comment or string).
MIGRATIONS: tuple[str, ...] = (
    # 1: the design, participants and votes
    """
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        eval_dir TEXT NOT NULL,
        eval_results_sha256 TEXT NOT NULL,
        ours TEXT NOT NULL,
        baselines TEXT NOT NULL,            -- JSON list
        pairs_per_baseline INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        question TEXT NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL REFERENCES studies(id),
        kind TEXT NOT NULL CHECK (kind IN ('pair', 'check')),
        object_key TEXT NOT NULL,
        baseline TEXT,                      -- the pair's other method (NULL for a check)
        left_method TEXT NOT NULL,
        right_method TEXT NOT NULL,
        left_image TEXT NOT NULL,
        right_image TEXT NOT NULL,
        input_image TEXT NOT NULL
    );
    CREATE TABLE participants (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        order_seed INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY,
        participant_id INTEGER NOT NULL REFERENCES participants(id),
        item_id INTEGER NOT NULL REFERENCES items(id),
        choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
        created_at TEXT NOT NULL,
        UNIQUE (participant_id, item_id)
    );
    """,
    # 2: how long each answer took (to screen answers faster than looking) and when a
    # participant finished
    """
    ALTER TABLE votes ADD COLUMN response_ms INTEGER;
    ALTER TABLE participants ADD COLUMN finished_at TEXT;
    CREATE INDEX votes_by_item ON votes (item_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StudyError(ValueError):
    """A study folder, database or request that cannot be used; the message says why."""


def _configure(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA foreign_keys = ON")
    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StudyError(f"the study database cannot use WAL mode (got {mode!r})")
    con.execute("PRAGMA synchronous = FULL")


def migrate(con: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring `con`'s database to schema `target`, one transaction per migration; returns the
    version it had. Refuses a database of a newer schema than this segan knows."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StudyError(f"the study database has schema version {version}, newer than this "
                         f"segan reads ({SCHEMA_VERSION}): update segan")
    for v in range(version, target):
        con.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, MIGRATIONS[v].split(";")):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {v + 1}")
            if v == 0:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return version


def connect(path: str | os.PathLike, create: bool = False,
            upgrade: bool = True) -> sqlite3.Connection:
    """A connection to the study database at `path` (a STUDY folder or its study.sqlite),
    migrated to SCHEMA_VERSION (upgrade=False: refused unless it is at that version).
    create: make a new database (the file must not exist); else it must exist and be a study.
    The connection is in autocommit mode: use `transaction`."""
    path = Path(path)
    if path.is_dir():
        path = path / DB_NAME
    if create and path.exists():
        raise FileExistsError(f"{path} exists already")
    if not create and not path.is_file():
        raise FileNotFoundError(f"no study database {path}: make one with `segan study create`")
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StudyError(f"{path} is not a study database ({e})") from e
        if not create and app_id != APPLICATION_ID:
            raise StudyError(f"{path} is not a segan study database (application id "
                             f"{app_id:#x})")
        _configure(con)
        if version != SCHEMA_VERSION and not (create or upgrade):
            raise StudyError(f"{path} has schema version {version}, this segan reads "
                             f"{SCHEMA_VERSION}")
        migrate(con)
    except BaseException:
        con.close()
        raise
    con.row_factory = sqlite3.Row
    return con


class transaction:
    """`with transaction(con):` BEGIN IMMEDIATE (the write lock first, so two writers never
    deadlock on an upgrade) ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        self.con.execute("ROLLBACK" if exc_type is not None else "COMMIT")
