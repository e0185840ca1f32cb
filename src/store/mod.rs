//! Build history: one SQLite database (WAL) in the data directory, full logs as files beside it.
//!
//! Crash safety: every state change is one short transaction; WAL with synchronous=NORMAL
//! survives a killed process (only an OS crash can lose the last commits). Builds left
//! "running" by a process that no longer exists are marked interrupted on open.

mod durations;
pub mod handle;
pub mod images;
mod inputs;
mod texts;
pub mod logfile;
pub mod retention;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::image::Layer;
pub use crate::model::status::BuildStatus;
pub use durations::SuccessDuration;
pub use handle::StoreHandle;

/// Schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 7;
/// Why a build whose imagegrid process ended without recording its end is interrupted:
/// killed while the build ran, or unable to write the end down (a full disk).
const INTERRUPTED: &str = "imagegrid stopped before recording how this build ended";
/// The database file name inside the data directory.
pub const DB_FILE: &str = "history.sqlite";

/// A store problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("history database {path}: {message}")]
    Db { path: String, message: String },
    /// The file is not a database or its pages are corrupt. It is never reset: the
    /// operator decides, with a copy kept beside it.
    #[error("history database {path} is damaged ({message}); {backup}; imagegrid does not reset it: move it away to start a new history, or put back a good copy")]
    Damaged {
        path: String,
        message: String,
        /// Where the copy is (or why none could be made), as a phrase.
        backup: String,
    },
    #[error("history database {path} has schema version {found}, newer than this imagegrid understands ({SCHEMA_VERSION}); {backup}; upgrade imagegrid or point `paths.data_dir` elsewhere")]
    NewerSchema {
        path: String,
        found: i64,
        /// Where the copy is (or why none could be made), as a phrase.
        backup: String,
    },
    /// The store's thread is gone, or the call panicked on it (see [`StoreHandle`]).
    #[error("history database {path} is unavailable (its thread stopped, or a call on it failed)")]
    Unavailable { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One build as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub id: i64,
    pub cell: String,
    pub engine: String,
    pub inputs: String,
    pub status: BuildStatus,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub image_id: Option<String>,
    pub size: Option<i64>,
    pub compressed_size: Option<i64>,
    pub layers: Vec<Layer>,
    pub failure: Option<String>,
    /// The failure field by field, for builds recorded since schema 3.
    #[serde(default)]
    pub failure_record: Option<crate::model::failure::Failure>,
    /// The failure's cause (a failure rule's name and hint, or `unclassified`), for failed
    /// builds recorded since schema 4.
    #[serde(default)]
    pub cause: Option<crate::model::cause::Cause>,
    pub log_path: Option<String>,
    pub tag: Option<String>,
    /// The base image id a compiler cell was built FROM.
    pub base_image: Option<String>,
    /// When the retention policy removed this build's log (RFC 3339); the row stays.
    #[serde(default)]
    pub log_pruned_at: Option<String>,
}

impl BuildRecord {
    /// Seconds from start to finish.
    pub fn duration_secs(&self) -> Option<f64> {
        let s = parse_time(&self.started_at)?;
        let e = parse_time(self.finished_at.as_deref()?)?;
        Some((e - s).as_seconds_f64())
    }
}

/// What a new build row starts with.
#[derive(Debug, Clone)]
pub struct NewBuild<'a> {
    pub cell: &'a str,
    pub engine: &'a str,
    pub inputs: &'a str,
    pub tag: &'a str,
    pub base_image: Option<&'a str>,
}

/// How a build ended.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    pub image_id: Option<String>,
    pub size: Option<i64>,
    pub layers: Vec<Layer>,
    pub failure: Option<String>,
    pub failure_record: Option<crate::model::failure::Failure>,
    /// Why it failed, in a word (failed builds only).
    pub cause: Option<crate::model::cause::Cause>,
}

/// The history store.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    path: String,
    /// This history's own id (a UUID made when it was created or migrated to schema 5):
    /// images carry it, so that a prune never judges another history's images.
    history_id: String,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl Store {
    /// Open (creating if needed) the store in `dir`, and mark builds of dead processes interrupted.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir.join("logs")).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db_path = dir.join(DB_FILE);
        let path = db_path.display().to_string();
        let db_err = |e: rusqlite::Error| classify(&db_path, e);
        let conn = Connection::open(&db_path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        // Before anything writes (switching to WAL rewrites the header): a file from a newer
        // imagegrid, or one that is not a database at all, is kept exactly as found.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                backup: keep_copy(&db_path, &format!("schema{version}")),
                path,
                found: version,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        let store = Store {
            conn,
            dir: dir.to_path_buf(),
            path,
            history_id: String::new(),
        };
        let mut store = store;
        store.migrate()?;
        store.history_id = store.load_history_id()?;
        // Damage is the operator's to decide about: say so. Any other failure is one to write
        // (a full disk, a read-only mount): history must still be readable, reads already show
        // such builds as interrupted (see `row`), and the next open that can write records it.
        if let Err(e @ StoreError::Damaged { .. }) = store.mark_interrupted() {
            return Err(e);
        }
        Ok(store)
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        // Damage can surface on any query (a corrupt page deep in the file), not only on open.
        classify(Path::new(&self.path), e)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        // An existing history is copied beside itself before any step changes it
        // (`history.sqlite.schema<N>-<hash>`).
        if (1..SCHEMA_VERSION).contains(&version) {
            let _ = keep_copy(Path::new(&self.path), &format!("schema{version}"));
        }
        if version < 1 {
            self.conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS builds (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        cell TEXT NOT NULL,
                        engine TEXT NOT NULL,
                        inputs TEXT NOT NULL,
                        status TEXT NOT NULL,
                        started_at TEXT NOT NULL,
                        finished_at TEXT,
                        image_id TEXT,
                        size INTEGER,
                        compressed_size INTEGER,
                        layers TEXT NOT NULL DEFAULT '[]',
                        failure TEXT,
                        log_path TEXT,
                        tag TEXT,
                        base_image TEXT,
                        pid INTEGER NOT NULL
                     );
                     CREATE INDEX IF NOT EXISTS builds_by_cell ON builds(cell, id);
                     CREATE INDEX IF NOT EXISTS builds_by_status ON builds(status);
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 2 {
            // v2: a pinned baseline build per cell, for size regressions.
            self.conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS baselines (
                        cell TEXT PRIMARY KEY,
                        build_id INTEGER NOT NULL REFERENCES builds(id),
                        pinned_at TEXT NOT NULL
                     );
                     PRAGMA user_version = 2;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 3 {
            // v3: the failure as a record (JSON), beside the one-line summary.
            self.conn
                .execute_batch(
                    "BEGIN;
                     ALTER TABLE builds ADD COLUMN failure_record TEXT;
                     PRAGMA user_version = 3;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 4 {
            // v4: the failure's cause (a failure rule's name) and its hint.
            self.conn
                .execute_batch(
                    "BEGIN;
                     ALTER TABLE builds ADD COLUMN cause TEXT;
                     ALTER TABLE builds ADD COLUMN cause_hint TEXT;
                     PRAGMA user_version = 4;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 5 {
            // v5: retention and history at scale. When a log was pruned (the row stays), and
            // indexes for per-cell queries by status (last success, last two sizes, a cell's
            // successes) and for the grid's latest-per-cell.
            self.conn
                .execute_batch(
                    "BEGIN;
                     ALTER TABLE builds ADD COLUMN log_pruned_at TEXT;
                     CREATE INDEX IF NOT EXISTS builds_by_cell_status ON builds(cell, status, id);
                     CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                     PRAGMA user_version = 5;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 6 {
            // v6: the pinned inputs of each build, a JSON record (see `model::inputs`).
            self.conn
                .execute_batch(
                    "BEGIN;
                     ALTER TABLE builds ADD COLUMN inputs_record TEXT;
                     PRAGMA user_version = 6;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        if version < 7 {
            // v7: the texts builds were made from (Dockerfiles), each stored once by its
            // sha256, zstd-compressed; a build's `inputs_record` names its text (see
            // `model::recorded`).
            self.conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS texts (
                        hash TEXT PRIMARY KEY,
                        body BLOB NOT NULL,
                        bytes INTEGER NOT NULL
                     );
                     PRAGMA user_version = 7;
                     COMMIT;",
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The history's id from `meta`, made on first use.
    fn load_history_id(&self) -> Result<String, StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('history_id', ?1)",
                params![uuid::Uuid::new_v4().to_string()],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'history_id'", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// This history's id (see the field); images imagegrid builds carry it as a label.
    pub fn history_id(&self) -> &str {
        &self.history_id
    }

    /// Builds still "running" whose process is gone were interrupted.
    fn mark_interrupted(&self) -> Result<usize, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pid FROM builds WHERE status = 'running'")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for (id, pid) in rows {
            if !process_alive(pid) {
                n += self
                    .conn
                    .execute(
                        "UPDATE builds SET status = 'interrupted', finished_at = ?2,
                         failure = COALESCE(failure, ?3) WHERE id = ?1",
                        params![id, now(), INTERRUPTED],
                    )
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(n)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Record a build that is starting; returns its id. The log file is `logs/<id>.log`.
    pub fn start(&self, b: &NewBuild) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO builds (cell, engine, inputs, status, started_at, tag, base_image, pid)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
                params![b.cell, b.engine, b.inputs, now(), b.tag, b.base_image, std::process::id() as i64],
            )
            .map_err(|e| self.err(e))?;
        let id = self.conn.last_insert_rowid();
        let log = self.log_path(id);
        self.conn
            .execute(
                "UPDATE builds SET log_path = ?2 WHERE id = ?1",
                params![id, log.display().to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Record a cell that ended without being built (skipped, or cancelled while queued).
    /// `cause` is the failure's (failed cells only).
    pub fn record_unbuilt(
        &self,
        cell: &str,
        inputs: &str,
        status: BuildStatus,
        reason: &str,
        cause: Option<&crate::model::cause::Cause>,
    ) -> Result<i64, StoreError> {
        let t = now();
        self.conn
            .execute(
                "INSERT INTO builds (cell, engine, inputs, status, started_at, finished_at, failure, pid,
                 cause, cause_hint)
                 VALUES (?1, '', ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
                params![cell, inputs, status.as_str(), t, reason, std::process::id() as i64,
                    cause.map(|c| c.name.as_str()), cause.map(|c| c.hint.as_str())],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record how a build ended.
    pub fn finish(&self, id: i64, status: BuildStatus, f: &Finish) -> Result<(), StoreError> {
        let layers = serde_json::to_string(&f.layers).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "UPDATE builds SET status = ?2, finished_at = ?3, image_id = ?4, size = ?5, layers = ?6, failure = ?7,
                 failure_record = ?8, cause = ?9, cause_hint = ?10 WHERE id = ?1",
                params![
                    id,
                    status.as_str(),
                    now(),
                    f.image_id,
                    f.size,
                    layers,
                    f.failure,
                    f.failure_record
                        .as_ref()
                        .and_then(|r| serde_json::to_string(r).ok()),
                    f.cause.as_ref().map(|c| c.name.as_str()),
                    f.cause.as_ref().map(|c| c.hint.as_str()),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Set the compressed (registry) size of a build.
    pub fn set_compressed_size(&self, id: i64, bytes: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE builds SET compressed_size = ?2 WHERE id = ?1",
                params![id, bytes],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Where build `id`'s log lives.
    pub fn log_path(&self, id: i64) -> PathBuf {
        log_path_in(&self.dir, id)
    }

    /// An appending writer for build `id`'s log.
    pub fn log_writer(&self, id: i64) -> Result<LogWriter, StoreError> {
        let path = self.log_path(id);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(LogWriter {
            out: file,
            path,
            buf: Vec::new(),
        })
    }

    const COLUMNS: &'static str =
        "id, cell, engine, inputs, status, started_at, finished_at, image_id, size,
        compressed_size, layers, failure, log_path, tag, base_image, pid, failure_record,
        cause, cause_hint, log_pruned_at";

    fn row(r: &rusqlite::Row) -> rusqlite::Result<BuildRecord> {
        let layers: String = r.get(10)?;
        let mut status = BuildStatus::from_db(&r.get::<_, String>(4)?);
        let mut failure: Option<String> = r.get(11)?;
        // A "running" row whose process is gone was interrupted, whether or not that could be
        // written down yet (see `open`).
        if status == BuildStatus::Running && !process_alive(r.get(15)?) {
            status = BuildStatus::Interrupted;
            failure.get_or_insert_with(|| INTERRUPTED.to_string());
        }
        Ok(BuildRecord {
            id: r.get(0)?,
            cell: r.get(1)?,
            engine: r.get(2)?,
            inputs: r.get(3)?,
            status,
            started_at: r.get(5)?,
            finished_at: r.get(6)?,
            image_id: r.get(7)?,
            size: r.get(8)?,
            compressed_size: r.get(9)?,
            layers: serde_json::from_str(&layers).unwrap_or_default(),
            failure,
            failure_record: r
                .get::<_, Option<String>>(16)?
                .and_then(|t| serde_json::from_str(&t).ok()),
            cause: r
                .get::<_, Option<String>>(17)?
                .map(|name| crate::model::cause::Cause {
                    name,
                    hint: r
                        .get::<_, Option<String>>(18)
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                }),
            log_path: r.get(12)?,
            tag: r.get(13)?,
            base_image: r.get(14)?,
            log_pruned_at: r.get(19)?,
        })
    }

    fn query(
        &self,
        sql_tail: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let sql = format!("SELECT {} FROM builds {sql_tail}", Self::COLUMNS);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(p, Self::row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Stream builds to `f`, one row at a time (nothing else is held), until it returns
    /// false. `sql_tail` follows `SELECT <columns> FROM builds`.
    fn each(
        &self,
        sql_tail: &str,
        p: &[&dyn rusqlite::ToSql],
        f: &mut dyn FnMut(BuildRecord) -> bool,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {} FROM builds {sql_tail}", Self::COLUMNS);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(p).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if !f(Self::row(r).map_err(|e| self.err(e))?) {
                break;
            }
        }
        Ok(())
    }

    /// Every build, oldest first, streamed to `f` until it returns false (see `each`): for
    /// reports over the whole history that must not hold it.
    pub fn each_build(&self, f: &mut dyn FnMut(BuildRecord) -> bool) -> Result<(), StoreError> {
        self.each("ORDER BY id", &[], f)
    }

    /// The newest `limit` builds of one cell (all when None), oldest first. Uses the
    /// `(cell, id)` index: milliseconds whatever the size of the history.
    pub fn cell_history(
        &self,
        cell: &str,
        limit: Option<usize>,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let n = limit.map(|n| n as i64).unwrap_or(-1);
        let mut v = self.query("WHERE cell = ?1 ORDER BY id DESC LIMIT ?2", &[&cell, &n])?;
        v.reverse();
        Ok(v)
    }

    /// Successful builds of one cell, oldest first (the inspector's list).
    pub fn successes_of(&self, cell: &str) -> Result<Vec<BuildRecord>, StoreError> {
        self.query(
            "WHERE cell = ?1 AND status = 'succeeded' ORDER BY id",
            &[&cell],
        )
    }

    /// Every cell the history has a build of, sorted.
    pub fn cells(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT cell FROM builds ORDER BY cell")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// For each cell, its newest `n` successful builds that have a size (started at or after
    /// `since`, RFC 3339, when given), oldest first, cells in id order of their newest:
    /// what size reports compare. One index lookup per cell; nothing else is read.
    pub fn last_sized_successes(
        &self,
        since: Option<&str>,
        n: usize,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let since = since.unwrap_or("");
        let n = n as i64;
        let mut out = Vec::new();
        for cell in self.cells()? {
            let mut v = self.query(
                "WHERE cell = ?1 AND status = 'succeeded' AND size IS NOT NULL
                 AND started_at >= ?2 ORDER BY id DESC LIMIT ?3",
                &[&cell, &since, &n],
            )?;
            v.reverse();
            out.extend(v);
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// One build.
    pub fn build(&self, id: i64) -> Result<Option<BuildRecord>, StoreError> {
        Ok(self.query("WHERE id = ?1", &[&id])?.into_iter().next())
    }

    /// Every build, oldest first.
    pub fn all(&self) -> Result<Vec<BuildRecord>, StoreError> {
        self.query("ORDER BY id", &[])
    }

    /// Builds on `engine` that never recorded an end: interrupted, or still running (in a
    /// live process, or shown interrupted when their process is gone), oldest first.
    pub fn unfinished_on(&self, engine: &str) -> Result<Vec<BuildRecord>, StoreError> {
        self.query(
            "WHERE engine = ?1 AND status IN ('running', 'interrupted') ORDER BY id",
            &[&engine],
        )
    }

    /// Builds of one cell, oldest first.
    pub fn for_cell(&self, cell: &str) -> Result<Vec<BuildRecord>, StoreError> {
        self.query("WHERE cell = ?1 ORDER BY id", &[&cell])
    }

    /// The newest build of each cell (skips excluded), for the grid's last known state.
    pub fn latest_per_cell(&self) -> Result<HashMap<String, BuildRecord>, StoreError> {
        let rows = self.query(
            "WHERE id IN (SELECT MAX(id) FROM builds GROUP BY cell) ORDER BY id",
            &[],
        )?;
        Ok(rows.into_iter().map(|r| (r.cell.clone(), r)).collect())
    }

    /// The newest successful build of each cell.
    pub fn last_success_per_cell(&self) -> Result<HashMap<String, BuildRecord>, StoreError> {
        let rows = self.query(
            "WHERE id IN (SELECT MAX(id) FROM builds WHERE status = 'succeeded' GROUP BY cell) ORDER BY id",
            &[],
        )?;
        Ok(rows.into_iter().map(|r| (r.cell.clone(), r)).collect())
    }

    /// The successful build before `before_id` of a cell (for size deltas).
    pub fn previous_success(
        &self,
        cell: &str,
        before_id: i64,
    ) -> Result<Option<BuildRecord>, StoreError> {
        Ok(self
            .query(
                "WHERE cell = ?1 AND status = 'succeeded' AND id < ?2 ORDER BY id DESC LIMIT 1",
                &[&cell, &before_id],
            )?
            .into_iter()
            .next())
    }

    /// Pin `build_id` as the size baseline of its cell.
    pub fn set_baseline(&self, cell: &str, build_id: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO baselines (cell, build_id, pinned_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(cell) DO UPDATE SET build_id = ?2, pinned_at = ?3",
                params![cell, build_id, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every pinned baseline: cell -> its build.
    pub fn baselines(&self) -> Result<HashMap<String, BuildRecord>, StoreError> {
        let rows = self.query(
            "WHERE id IN (SELECT build_id FROM baselines) ORDER BY id",
            &[],
        )?;
        let mut stmt = self
            .conn
            .prepare("SELECT cell, build_id FROM baselines")
            .map_err(|e| self.err(e))?;
        let pins: HashMap<i64, String> = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, String>(0)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| pins.get(&r.id).map(|c| (c.clone(), r)))
            .collect())
    }

    /// Successful builds of every cell, oldest first, optionally since an RFC 3339 time.
    pub fn successes(&self, since: Option<&str>) -> Result<Vec<BuildRecord>, StoreError> {
        match since {
            Some(t) => self.query(
                "WHERE status = 'succeeded' AND started_at >= ?1 ORDER BY id",
                &[&t],
            ),
            None => self.query("WHERE status = 'succeeded' ORDER BY id", &[]),
        }
    }

    /// The newest build id of a cell.
    pub fn latest_id(&self, cell: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(id) FROM builds WHERE cell = ?1",
                params![cell],
                |r| r.get(0),
            )
            .optional()
            .map(|o| o.flatten())
            .map_err(|e| self.err(e))
    }
}

/// Where build `id`'s log lives in data directory `dir`.
fn log_path_in(dir: &Path, id: i64) -> PathBuf {
    dir.join("logs").join(format!("{id}.log"))
}

/// Appends sanitised lines to a build's log file.
///
/// One write per line, unbuffered in this process: a killed imagegrid loses no line it
/// has seen (the kernel has it), at the cost of a syscall per line.
pub struct LogWriter {
    out: std::fs::File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Append one line (already sanitised).
    pub fn line(&mut self, line: &str) -> Result<(), StoreError> {
        self.buf.clear();
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.out
            .write_all(&self.buf)
            .map_err(|source| StoreError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }
}

/// A SQLite error as a [`StoreError`]: damage (not a database, corrupt pages) gets a copy of
/// the file kept beside it, so that nothing the operator had is lost whatever they do next.
fn classify(db: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let path = db.display().to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
            backup: keep_copy(db, "damaged"),
            path,
            message: e.to_string(),
        },
        _ => StoreError::Db {
            path,
            message: e.to_string(),
        },
    }
}

/// Copy the database (and its WAL, which holds commits not yet in the main file) to
/// `<db>.<tag>-<content hash>` beside it; returns a phrase saying where, or why not.
/// Named by content, so running imagegrid again on the same file makes no second copy.
fn keep_copy(db: &Path, tag: &str) -> String {
    let data = match std::fs::read(db) {
        Ok(d) => d,
        Err(e) => return format!("no copy could be made (cannot read it: {e})"),
    };
    let hash = crate::util::digest::hex(&Sha256::digest(&data)[..6]);
    let name = format!(
        "{}.{tag}-{hash}",
        db.file_name().unwrap_or_default().to_string_lossy()
    );
    let backup = db.with_file_name(name);
    let wal_of = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("-wal");
        PathBuf::from(s)
    };
    let copy = || -> std::io::Result<()> {
        if !backup.exists() {
            // Write to a temporary name first: a full disk must not leave a half copy that
            // looks like a complete one.
            let mut tmp = backup.as_os_str().to_owned();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, &data)?;
            std::fs::rename(&tmp, &backup)?;
        }
        let wal = wal_of(db);
        if wal.exists() && !wal_of(&backup).exists() {
            std::fs::copy(&wal, wal_of(&backup))?;
        }
        Ok(())
    };
    match copy() {
        Ok(()) => format!("a copy is kept at {}", backup.display()),
        Err(e) => format!("no copy could be made at {}: {e}", backup.display()),
    }
}

/// Is process `pid` alive on this machine?
fn process_alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid == std::process::id() as i64 {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let id = s
            .start(&NewBuild {
                cell: "debian-13/opam/amd64",
                engine: "a",
                inputs: "h1",
                tag: "t",
                base_image: None,
            })
            .unwrap();
        let mut w = s.log_writer(id).unwrap();
        w.line("hello").unwrap();
        s.finish(
            id,
            BuildStatus::Succeeded,
            &Finish {
                image_id: Some("sha256:x".into()),
                size: Some(10),
                layers: vec![Layer {
                    size: 10,
                    created_by: "RUN x".into(),
                }],
                failure: None,
                failure_record: None,
                cause: None,
            },
        )
        .unwrap();
        let r = s.build(id).unwrap().unwrap();
        assert_eq!(r.status, BuildStatus::Succeeded);
        assert_eq!(r.layers.len(), 1);
        assert_eq!(std::fs::read_to_string(s.log_path(id)).unwrap(), "hello\n");
        // A running row from a dead process becomes interrupted on the next open.
        s.conn.execute("INSERT INTO builds (cell, engine, inputs, status, started_at, pid) VALUES ('c', 'a', 'h', 'running', '2026-01-01T00:00:00Z', 999999999)", []).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let latest = s.latest_per_cell().unwrap();
        assert_eq!(latest["c"].status, BuildStatus::Interrupted);
        assert_eq!(
            s.last_success_per_cell().unwrap()["debian-13/opam/amd64"].id,
            id
        );
    }

    /// Undo every step after schema 3 (causes, retention, pinned inputs), as an older
    /// imagegrid left the file.
    fn back_to_schema_3(conn: &Connection) {
        conn.execute_batch(
            "ALTER TABLE builds DROP COLUMN cause;
             ALTER TABLE builds DROP COLUMN cause_hint;
             ALTER TABLE builds DROP COLUMN log_pruned_at;
             ALTER TABLE builds DROP COLUMN inputs_record;
             DROP INDEX builds_by_cell_status;
             DROP TABLE meta;
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }

    #[test]
    fn schema_3_gains_causes_and_keeps_its_builds() {
        let dir = tempfile::tempdir().unwrap();
        let nb = NewBuild {
            cell: "debian-13/4.14/amd64",
            engine: "a",
            inputs: "h",
            tag: "t",
            base_image: None,
        };
        let old = {
            let s = Store::open(dir.path()).unwrap();
            let id = s.start(&nb).unwrap();
            s.finish(id, BuildStatus::Failed, &Finish::default())
                .unwrap();
            // Back to schema 3, as an older imagegrid left it.
            back_to_schema_3(&s.conn);
            id
        };
        let s = Store::open(dir.path()).unwrap();
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let r = s.build(old).unwrap().unwrap();
        assert_eq!((r.status, r.cause), (BuildStatus::Failed, None));
        let id = s.start(&nb).unwrap();
        let cause = crate::model::cause::Cause {
            name: "gcc-15".into(),
            hint: "add the overlay".into(),
        };
        s.finish(
            id,
            BuildStatus::Failed,
            &Finish {
                cause: Some(cause.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.build(id).unwrap().unwrap().cause, Some(cause.clone()));
        let u = s
            .record_unbuilt("c", "h", BuildStatus::Failed, "no engine", Some(&cause))
            .unwrap();
        assert_eq!(s.build(u).unwrap().unwrap().cause, Some(cause));
    }

    #[test]
    fn newer_schema_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        {
            let c = Connection::open(&db).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let before = std::fs::read(&db).unwrap();
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
        assert!(e.contains(&db.display().to_string()), "names the file: {e}");
        let copies = copies_of(dir.path(), "history.sqlite.schema99-");
        assert_eq!(copies.len(), 1, "{e}");
        assert!(e.contains(&copies[0].display().to_string()), "{e}");
        assert_eq!(std::fs::read(&copies[0]).unwrap(), before);
        assert_eq!(std::fs::read(&db).unwrap(), before, "left as it was");
    }

    #[test]
    fn a_schema_3_history_migrates_with_a_copy_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(dir.path()).unwrap();
            let id = s
                .start(&NewBuild {
                    cell: "debian-13/opam/amd64",
                    engine: "a",
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })
                .unwrap();
            s.finish(id, BuildStatus::Succeeded, &Finish::default())
                .unwrap();
            back_to_schema_3(&s.conn);
            s.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
            id
        };
        let s = Store::open(dir.path()).unwrap();
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let r = s.build(id).unwrap().unwrap();
        assert_eq!(r.status, BuildStatus::Succeeded);
        assert_eq!(r.log_pruned_at, None);
        assert!(!s.history_id().is_empty());
        let plan: String = s
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM builds WHERE cell = 'x' AND status = 'succeeded' ORDER BY id DESC LIMIT 2",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("builds_by_cell_status"), "{plan}");
        let copies = copies_of(dir.path(), "history.sqlite.schema3-");
        assert_eq!(copies.len(), 1, "a copy of the schema-3 file is kept");
        let old = Connection::open(&copies[0]).unwrap();
        let v: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 3);
        // The history id stays across opens.
        let hid = s.history_id().to_string();
        drop(s);
        assert_eq!(Store::open(dir.path()).unwrap().history_id(), hid);
    }

    fn copies_of(dir: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(prefix) && !name.ends_with("-wal")
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn garbage_is_refused_kept_and_never_reset() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&db, &garbage).unwrap();
        for _ in 0..2 {
            let e = Store::open(dir.path()).err().unwrap().to_string();
            assert!(
                e.contains(&format!("history database {} is damaged", db.display())),
                "{e}"
            );
            assert!(e.contains("file is not a database"), "{e}");
            assert!(e.contains("does not reset it"), "{e}");
        }
        // One copy however often it is opened, identical to the damaged file, which stays.
        let copies = copies_of(dir.path(), "history.sqlite.damaged-");
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert_eq!(std::fs::read(&copies[0]).unwrap(), garbage);
        assert_eq!(std::fs::read(&db).unwrap(), garbage);
    }

    #[test]
    fn corrupt_pages_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        {
            let s = Store::open(dir.path()).unwrap();
            for i in 0..500 {
                let id = s
                    .start(&NewBuild {
                        cell: &format!("debian-13/opam/amd64-{i}"),
                        engine: "a",
                        inputs: &"h".repeat(200),
                        tag: "t",
                        base_image: None,
                    })
                    .unwrap();
                s.finish(id, BuildStatus::Failed, &Finish::default())
                    .unwrap();
            }
            s.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
        }
        // Scribble over every page but the first (the header and schema stay readable).
        let mut bytes = std::fs::read(&db).unwrap();
        assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
        for b in bytes[4096..].iter_mut().step_by(3) {
            *b = 0xA5;
        }
        std::fs::write(&db, &bytes).unwrap();
        let e = match Store::open(dir.path()) {
            Err(e) => e.to_string(),
            // Open touches few pages; a full read must still say so, not return junk.
            Ok(s) => s.all().expect_err("corruption noticed").to_string(),
        };
        assert!(e.contains("is damaged"), "{e}");
        assert_eq!(copies_of(dir.path(), "history.sqlite.damaged-").len(), 1);
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "never reset");
    }
}
