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

import sqlite3
from pathlib import Path

from shared.errors import ServiceError
from shared.stores import sqlite_checkpoints
from shared.stores.predictions.sqlite_layout import OTHER_IDS_INDEX, OUTCOME_TIME_INDEX, PREDICTIONS_TABLE, is_clustered


class UpgradeRefused(ServiceError):
    """The database is in use, or holds rows the new layout cannot keep: nothing was changed."""


def upgrade_prediction_log(path: Path) -> dict:
    """{"upgraded": bool, "rows": n}; raises UpgradeRefused (nothing changed) if it cannot."""
    if not path.exists():
        raise UpgradeRefused(f"no database at {path}")
    # A running server's process holds the checkpoint lock: while this command holds it, none starts.
    lock = sqlite_checkpoints.become_the_checkpointer(path)
    if lock is None:
        raise UpgradeRefused(f"{path} is in use (a server or another command has it open): stop it first")
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
        if lock != sqlite_checkpoints.NO_LOCK:  # NO_LOCK: a file system without locks; the transaction alone guards
            sqlite_checkpoints.give_up_checkpointing(lock)


def _rebuild(connection: sqlite3.Connection) -> int:
    connection.execute("BEGIN EXCLUSIVE")
    try:
        (before,) = connection.execute("SELECT COUNT(*) FROM predictions").fetchone()
        connection.execute(PREDICTIONS_TABLE.replace("IF NOT EXISTS predictions (", "predictions_upgraded ("))
        present = {row[1] for row in connection.execute("PRAGMA table_info(predictions)")}
        columns = ", ".join(row[1] for row in connection.execute("PRAGMA table_info(predictions_upgraded)")
                            if row[1] in present)  # a very old file lacks the outcome's last two
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

