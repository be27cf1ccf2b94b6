"""The results database: one SQLite file per study with runs, their configs and status,
per-epoch per-class metrics and final per-class evaluations. Every write is one transaction,
so a killed run leaves no half-written rows; WAL mode lets parallel runs write safely."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import pandas as pd

from ..errors import ClasswiseError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    created REAL, started REAL, finished REAL, attempts INTEGER NOT NULL DEFAULT 0,
    host TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_acc REAL, lr REAL,
    seconds REAL, note TEXT, PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS per_class (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, split TEXT NOT NULL, attack TEXT NOT NULL,
    class_index INTEGER NOT NULL, class TEXT NOT NULL, accuracy REAL, n INTEGER,
    PRIMARY KEY (run_id, epoch, split, attack, class_index));
"""
FINAL = -1  # the epoch number of the final test-set evaluation in `per_class`


_HEADER = b"SQLite format 3\x00"
_COLUMNS = {"runs": {"id", "config", "status", "attempts", "host", "error", "created"},
            "epochs": {"run_id", "epoch"},
            "per_class": {"run_id", "epoch", "split", "attack", "class_index", "class", "accuracy", "n"}}


class Store:
    """`readonly=True` (what `classwise runs` uses) never writes to the file, not even the
    schema or the journal mode, and refuses a file that is not a study database."""

    def __init__(self, path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            self._check()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tx(lambda db: [db.execute(statement) for statement in SCHEMA.split(";") if statement.strip()])

    def _check(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                header = fh.read(len(_HEADER))
        except OSError as exc:
            raise ClasswiseError(f"{self.path} cannot be read: {exc.strerror or exc}") from exc
        if header != _HEADER:
            raise ClasswiseError(f"{self.path} is not a SQLite database (garbage, or another kind of file); "
                                 "point at the study folder that `classwise sweep` wrote")
        tables = self._read(lambda db: {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")}
                                        for t in _COLUMNS})
        lacking = [f"{t} ({', '.join(sorted(cols - tables[t]))})" for t, cols in _COLUMNS.items()
                   if not cols <= tables[t]]
        if lacking:
            raise ClasswiseError(f"{self.path} is a SQLite database but not a classwise study (it lacks "
                                 f"{'; '.join(lacking)}); point at the study folder that `classwise sweep` wrote")

    def _read(self, fn):
        """`fn(connection)`, with a damaged file as one line instead of a traceback."""
        try:
            db = self._connect()
            try:
                return fn(db)
            finally:
                db.close()
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:  # pandas wraps sqlite's errors
            raise ClasswiseError(f"{self.path} is damaged or truncated (sqlite: {exc}); restore it from a copy, "
                                 "or rerun the sweep into a new --out") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            # mode=ro would still create -wal/-shm files beside a WAL database; `immutable` reads
            # the file as it is, which is right unless a sweep is writing (then its -wal exists)
            live = self.path.with_name(self.path.name + "-wal").exists()
            uri = f"{self.path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"
            return sqlite3.connect(uri, uri=True, timeout=60)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=60000")
        return db

    def _tx(self, fn, tries: int = 4):
        """`fn(connection)` in one write transaction. A "database is locked" that outlasts the busy
        timeout is tried again: WAL returns it without waiting in a few cases (a connection
        opening while another recovers the WAL index), and two Slurm tasks start at once."""
        for attempt in range(tries):
            db = None
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE")
                out = fn(db)
                db.execute("COMMIT")
                return out
            except sqlite3.OperationalError as exc:
                if db is not None and db.in_transaction:
                    db.execute("ROLLBACK")
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == tries - 1:
                    raise
                time.sleep(0.5 * 2 ** attempt)
            except BaseException:
                if db is not None and db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                if db is not None:
                    db.close()

    def register(self, runs: dict[str, dict]) -> None:
        now = time.time()
        self._tx(lambda db: db.executemany(
            "INSERT OR IGNORE INTO runs (id, config, created) VALUES (?, ?, ?)",
            [(rid, json.dumps(cfg, sort_keys=True), now) for rid, cfg in runs.items()]))

    def status(self) -> dict[str, str]:
        return self._read(lambda db: dict(db.execute("SELECT id, status FROM runs").fetchall()))

    def config(self, run_id: str) -> dict:
        row = self._read(lambda db: db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone())
        if row is None:
            raise ClasswiseError(f"{self.path}: no run {run_id}")
        return json.loads(row[0])

    def start(self, run_id: str) -> None:
        self._tx(lambda db: db.execute(
            "UPDATE runs SET status='running', started=?, attempts=attempts+1, host=?, error=NULL WHERE id=?",
            (time.time(), socket.gethostname(), run_id)))

    def fail(self, run_id: str, error: str) -> None:
        self._tx(lambda db: db.execute("UPDATE runs SET status='failed', error=? WHERE id=?", (error, run_id)))

    @staticmethod
    def _class_rows(run_id, epoch, split, attack, classes, accuracies, counts):
        return [(run_id, epoch, split, attack, i, c, None if a != a else float(a), int(n))
                for i, (c, a, n) in enumerate(zip(classes, accuracies, counts, strict=True))]

    def record_epoch(self, run_id: str, record: dict, classes: list[str], val_counts: list[int]) -> None:
        """One epoch: its scalars and its per-class validation rows, all or nothing."""
        rows = self._class_rows(run_id, record["epoch"], "val", "none", classes, record["val_clean_per_class"],
                                val_counts)
        if "val_robust_per_class" in record:
            rows += self._class_rows(run_id, record["epoch"], "val", record.get("robust_attack", "pgd"), classes,
                                     record["val_robust_per_class"], val_counts)

        def write(db):
            db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, record["epoch"], record["train_loss"], record["train_acc"], record["lr"],
                        record["seconds"], record.get("stopped")))
            db.executemany("INSERT OR REPLACE INTO per_class VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._tx(write)

    def finish(self, run_id: str, evaluation) -> None:
        """The final per-class test evaluation and the run's status, in one transaction."""
        rows = []
        for key in evaluation.keys:
            table = evaluation.per_class(key)
            rows += self._class_rows(run_id, FINAL, "test", "none" if key == "clean" else key,
                                     table["class"], table["accuracy"], table["n"])

        def write(db):
            db.executemany("INSERT OR REPLACE INTO per_class VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE runs SET status='finished', finished=? WHERE id=?", (time.time(), run_id))
        self._tx(write)

    def runs_table(self) -> pd.DataFrame:
        df = self._read(lambda db: pd.read_sql_query(
            "SELECT id, status, attempts, config, host, error FROM runs ORDER BY created, id", db))
        try:
            cfgs = [json.loads(c) for c in df.pop("config")]
        except (TypeError, json.JSONDecodeError) as exc:
            raise ClasswiseError(f"{self.path}: a run's config is not JSON ({exc}); the database is damaged") from exc
        if not all(isinstance(c, dict) for c in cfgs):
            raise ClasswiseError(f"{self.path}: a run's config is not a JSON object; the database is damaged")
        for key in ("dataset", "arch", "method", "optimizer", "schedule", "lr", "weight_decay", "epochs", "seed"):
            df[key] = [c.get(key) for c in cfgs]
        return df

    def tidy(self) -> pd.DataFrame:
        """run, epoch, split, attack, class, accuracy, n: per-epoch validation and final test
        rows (epoch = -1 marks the final evaluation)."""
        return self._read(lambda db: pd.read_sql_query(
            "SELECT run_id AS run, epoch, split, attack, class, accuracy, n FROM per_class "
            "ORDER BY run_id, epoch, split, attack, class_index", db))
