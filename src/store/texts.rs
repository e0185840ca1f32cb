//! The texts builds were made from (schema 7): each Dockerfile stored once, by its sha256,
//! zstd-compressed (a Dockerfile is a few KiB, and a matrix repeats a handful of texts
//! over many builds, so the table stays small whatever the number of builds); and the
//! recorded inputs of each build ([`Recorded`]), which name their text.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::model::recorded::Recorded;

/// zstd level of stored texts.
const LEVEL: i32 = 3;

/// The id of a text: its sha256, hex (64 chars).
pub fn text_id(text: &str) -> String {
    crate::util::digest::sha256_hex(text.as_bytes())
}

impl Store {
    /// Store `text` once (a text already stored is not written again); returns its id
    /// ([`text_id`]).
    pub fn put_text(&self, text: &str) -> Result<String, StoreError> {
        let id = text_id(text);
        let body = zstd::encode_all(text.as_bytes(), LEVEL).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO texts (hash, body, bytes) VALUES (?1, ?2, ?3)",
                params![id, body, text.len() as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// The text stored under `id`, if any.
    pub fn text(&self, id: &str) -> Result<Option<String>, StoreError> {
        let body: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT body FROM texts WHERE hash = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(body) = body else { return Ok(None) };
        let bytes = zstd::decode_all(&body[..]).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Record what build `id` was made from: `text` (stored once) and `record` (its
    /// `dockerfile` key set to the text's id).
    pub fn set_recorded(
        &self,
        id: i64,
        text: Option<&str>,
        record: &Recorded,
    ) -> Result<(), StoreError> {
        let mut record = record.clone();
        if let Some(t) = text {
            record.dockerfile = Some(self.put_text(t)?);
        }
        self.write_record(id, &record)
    }

    /// Add to build `id`'s record the upstream image it was built from (known after the
    /// build: the digest the engine pulled or holds).
    pub fn set_upstream(
        &self,
        id: i64,
        upstream: &crate::model::recorded::Upstream,
    ) -> Result<(), StoreError> {
        let mut record = self.recorded(id)?.unwrap_or_default();
        record.upstream = Some(upstream.clone());
        self.write_record(id, &record)
    }

    /// What build `id` was recorded as made from (None: no such build, or built before
    /// schema 6; a schema-6 record has pins only).
    pub fn recorded(&self, id: i64) -> Result<Option<Recorded>, StoreError> {
        self.read_record(id)
    }

    /// The texts no kept history row names, with their stored (compressed) bytes: a row
    /// is kept while its log is (not marked pruned, and not in `pruning`, the rows a prune
    /// is about to mark). A text a kept row names is never listed.
    pub fn unreferenced_texts(
        &self,
        pruning: &std::collections::HashSet<i64>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, inputs_record FROM builds WHERE log_pruned_at IS NULL AND inputs_record IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut named = std::collections::HashSet::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            if pruning.contains(&id) {
                continue;
            }
            if let Some(t) = serde_json::from_str::<Recorded>(&json)
                .ok()
                .and_then(|r| r.dockerfile)
            {
                named.insert(t);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT hash, LENGTH(body) FROM texts ORDER BY hash")
            .map_err(|e| self.err(e))?;
        let all = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for t in all {
            let t = t.map_err(|e| self.err(e))?;
            if !named.contains(&t.0) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Remove these texts (ids as [`text_id`]).
    pub fn remove_texts(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            self.conn
                .execute("DELETE FROM texts WHERE hash = ?1", params![id])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Bytes the table of texts holds (compressed) and the number of texts.
    pub fn texts_size(&self) -> Result<(i64, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*) FROM texts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::recorded::Recorded;
    use crate::store::{NewBuild, Store};

    #[test]
    fn a_text_is_stored_once_and_a_build_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let text = "FROM debian:13\nRUN apt-get update\n".repeat(50);
        let mut ids = vec![];
        for _ in 0..3 {
            let id = s
                .start(&NewBuild {
                    cell: "debian-13/opam/amd64",
                    engine: "a",
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })
                .unwrap();
            let rec = Recorded {
                platform: Some("linux/amd64".into()),
                ..Recorded::default()
            };
            s.set_recorded(id, Some(&text), &rec).unwrap();
            ids.push(id);
        }
        let (bytes, count) = s.texts_size().unwrap();
        assert_eq!(count, 1, "three builds of one text store it once");
        assert!(bytes < text.len() as i64 / 4, "compressed: {bytes} bytes");
        let rec = s.recorded(ids[2]).unwrap().unwrap();
        assert_eq!(rec.platform.as_deref(), Some("linux/amd64"));
        let tid = rec.dockerfile.unwrap();
        assert_eq!(tid, super::text_id(&text));
        assert_eq!(s.text(&tid).unwrap().as_deref(), Some(text.as_str()));
        assert_eq!(s.text("nope").unwrap(), None);
        // The schema-6 reader still reads the pins of a schema-7 record.
        assert_eq!(s.inputs_record(ids[0]).unwrap(), Some(Default::default()));
    }

    #[test]
    fn a_text_goes_only_when_no_kept_row_names_it() {
        use std::collections::HashSet;
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let build = |s: &Store, text: &str| {
            let id = s
                .start(&NewBuild {
                    cell: "debian-13/opam/amd64",
                    engine: "a",
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })
                .unwrap();
            s.set_recorded(id, Some(text), &Recorded::default())
                .unwrap();
            id
        };
        let (old, shared, new) = ("FROM a\n", "FROM b\n", "FROM c\n");
        let b1 = build(&s, old);
        let b2 = build(&s, shared);
        let b3 = build(&s, shared);
        let b4 = build(&s, new);
        assert!(s.unreferenced_texts(&HashSet::new()).unwrap().is_empty());
        // Pruning b1 and b2 (as a dry run sees it): the old text goes; the shared one stays,
        // b3 names it.
        let gone = s.unreferenced_texts(&HashSet::from([b1, b2])).unwrap();
        assert_eq!(
            gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
            [super::text_id(old)]
        );
        assert!(gone[0].1 > 0, "its stored bytes");
        s.mark_logs_pruned(&[b1, b2]).unwrap();
        let gone = s.unreferenced_texts(&HashSet::new()).unwrap();
        s.remove_texts(&gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(s.text(&super::text_id(old)).unwrap(), None);
        assert_eq!(
            s.text(&super::text_id(shared)).unwrap().as_deref(),
            Some(shared)
        );
        assert_eq!(s.texts_size().unwrap().1, 2);
        // b3 pruned too: the shared text goes; b4's stays.
        s.mark_logs_pruned(&[b3]).unwrap();
        let gone = s.unreferenced_texts(&HashSet::new()).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, super::text_id(shared));
        assert_eq!(
            s.recorded(b4).unwrap().unwrap().dockerfile,
            Some(super::text_id(new))
        );
    }
}
