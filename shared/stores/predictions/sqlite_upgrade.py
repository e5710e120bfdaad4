"""Rebuild a previous release's prediction log (`.local/mlops.sqlite3`) into
the (time, id) layout of `sqlite_layout`, in place and in one transaction.

Opening an old database never changes its table: a rebuild copies every row,
which takes time in proportion to the file, and must not race a server's
writes. So it is a command (`tools.cli upgrade-prediction-log`), run with the
server stopped. Every row, its outcome and history included, is copied in
(time, id) order; the other tables (experiments, drift reports, leases in
`documents`; outcome rate counters) are not touched. Either all of it happens
or, on any error, none: the old table is dropped only inside the transaction
that has already filled the new one and counted its rows.

The file keeps its page size (4 KB for an old file: SQLite changes it only by
a VACUUM, which WAL mode refuses); at 4 KB pages a one-prediction commit writes
7.4 KB of WAL instead of 15.2 (bench/prediction_log.py), against 5.3 KB for a
new file at 2 KB pages.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from shared.errors import ServiceError
from shared.stores.predictions.sqlite_layout import OTHER_IDS_INDEX, OUTCOME_TIME_INDEX, PREDICTIONS_TABLE, is_clustered

_COLUMNS = ("prediction_id", "created_us", "temperature", "heart_rate", "blood_pressure", "prediction",
            "probabilities", "model_version", "outcome_label", "outcome_recorded_us", "outcome_updated_us",
            "outcome_caller", "outcome_history")


class UpgradeRefused(ServiceError):
    """The database is in use, or holds rows the new layout cannot keep: nothing was changed."""


def upgrade_prediction_log(path: Path) -> dict:
    """{"upgraded": bool, "rows": n}; raises UpgradeRefused (nothing changed) if it cannot."""
    if not path.exists():
        raise UpgradeRefused(f"no database at {path}")
    lock = _checkpoint_lock(path)  # a running server's process holds it
    try:
        connection = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        try:
            if is_clustered(connection):
                (rows,) = connection.execute("SELECT COUNT(*) FROM predictions").fetchone()
                return {"upgraded": False, "rows": rows}
            return {"upgraded": True, "rows": _rebuild(connection)}
        finally:
            connection.close()
    finally:
        if lock is not None:
            os.close(lock)


def _rebuild(connection: sqlite3.Connection) -> int:
    present = [row[1] for row in connection.execute("PRAGMA table_info(predictions)")]
    columns = ", ".join(name for name in _COLUMNS if name in present)  # a very old file lacks the last two
    connection.execute("BEGIN EXCLUSIVE")
    try:
        (before,) = connection.execute("SELECT COUNT(*) FROM predictions").fetchone()
        connection.execute(PREDICTIONS_TABLE.replace("IF NOT EXISTS predictions (", "predictions_upgraded ("))
        connection.execute(f"INSERT INTO predictions_upgraded ({columns}) SELECT {columns} FROM predictions"
                           " ORDER BY created_us, prediction_id")
        (after,) = connection.execute("SELECT COUNT(*) FROM predictions_upgraded").fetchone()
        if after != before:
            raise UpgradeRefused(f"copied {after} rows of {before}")
        connection.execute("DROP TABLE predictions")  # its indexes with it
        connection.execute("ALTER TABLE predictions_upgraded RENAME TO predictions")
        connection.execute(OTHER_IDS_INDEX)
        connection.execute(OUTCOME_TIME_INDEX)
        connection.execute("COMMIT")
    except sqlite3.IntegrityError as error:  # an id carrying a time that is not its row's
        connection.execute("ROLLBACK")
        raise UpgradeRefused(f"a row cannot be kept in the new layout ({error}); nothing was changed") from None
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return after


def _checkpoint_lock(path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # Windows: no lock file to ask; the transaction still waits for writers
        return None
    descriptor = os.open(path.with_name(path.name + ".checkpoint-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise UpgradeRefused(f"{path} is in use (a server or another command has it open): stop it first") from None
    except OSError:  # no locks on this file system: rely on the transaction
        pass
    return descriptor
