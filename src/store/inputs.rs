//! The pinned inputs recorded with each build (schema 6: the `inputs_record` column, a JSON
//! object, see [`crate::model::inputs`]). Later records may carry more keys (issue 13: the
//! Dockerfile text id, base image id and upstream digest); this reads what it knows.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::model::inputs::Pins;

impl Store {
    /// Record the pinned inputs build `id` was started with.
    pub fn set_inputs_record(&self, id: i64, record: &Pins) -> Result<(), StoreError> {
        self.write_record(id, record)
    }

    /// Write build `id`'s `inputs_record` column: `record` as JSON (a [`Pins`], or the
    /// schema-7 [`crate::model::recorded::Recorded`] that extends it).
    pub(super) fn write_record<T: serde::Serialize>(
        &self,
        id: i64,
        record: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "UPDATE builds SET inputs_record = ?2 WHERE id = ?1",
                params![id, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Read build `id`'s `inputs_record` column as a `T` (None: no such build, no record, or
    /// one that does not read as a `T`).
    pub(super) fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        id: i64,
    ) -> Result<Option<T>, StoreError> {
        let text: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT inputs_record FROM builds WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The pinned inputs recorded with build `id` (None: no such build, or built before
    /// schema 6).
    pub fn inputs_record(&self, id: i64) -> Result<Option<Pins>, StoreError> {
        self.read_record(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::inputs::{Pins, ResolvedRef};
    use crate::store::{NewBuild, Store};

    #[test]
    fn a_build_keeps_its_inputs_record_and_an_old_store_migrates() {
        let dir = tempfile::tempdir().unwrap();
        // A schema-3 store, as the previous imagegrid left it.
        {
            let conn = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE builds (id INTEGER PRIMARY KEY AUTOINCREMENT, cell TEXT NOT NULL,
                 engine TEXT NOT NULL, inputs TEXT NOT NULL, status TEXT NOT NULL,
                 started_at TEXT NOT NULL, finished_at TEXT, image_id TEXT, size INTEGER,
                 compressed_size INTEGER, layers TEXT NOT NULL DEFAULT '[]', failure TEXT,
                 log_path TEXT, tag TEXT, base_image TEXT, pid INTEGER NOT NULL,
                 failure_record TEXT);
                 CREATE TABLE baselines (cell TEXT PRIMARY KEY, build_id INTEGER NOT NULL,
                 pinned_at TEXT NOT NULL);
                 INSERT INTO builds (cell, engine, inputs, status, started_at, pid)
                 VALUES ('a/opam/amd64', 'e', 'h', 'succeeded', '2026-01-01T00:00:00Z', 1);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.inputs_record(1).unwrap(),
            None,
            "an old build recorded none"
        );
        let id = s
            .start(&NewBuild {
                cell: "a/opam/amd64",
                engine: "e",
                inputs: "h2",
                tag: "t",
                base_image: None,
            })
            .unwrap();
        let pins = Pins {
            opam_repository: Some(ResolvedRef {
                url: "file:///r".into(),
                git_ref: "master".into(),
                commit: "c".repeat(40),
                tag: None,
                resolved_at: "2026-01-01T00:00:00Z".into(),
            }),
            ..Pins::default()
        };
        s.set_inputs_record(id, &pins).unwrap();
        assert_eq!(s.inputs_record(id).unwrap(), Some(pins));
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, crate::store::SCHEMA_VERSION);
    }
}
