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
        let json = serde_json::to_string(&record).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "UPDATE builds SET inputs_record = ?2 WHERE id = ?1",
                params![id, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
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
        let json = serde_json::to_string(&record).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "UPDATE builds SET inputs_record = ?2 WHERE id = ?1",
                params![id, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// What build `id` was recorded as made from (None: no such build, or built before
    /// schema 6; a schema-6 record has pins only).
    pub fn recorded(&self, id: i64) -> Result<Option<Recorded>, StoreError> {
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
}
