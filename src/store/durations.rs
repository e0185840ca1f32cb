//! The durations of recent successful builds, for expected durations
//! (`scheduler::durations`): a lean query over the history, not whole records.

use super::{parse_time, Store, StoreError};

/// One successful build's duration.
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessDuration {
    pub cell: String,
    pub engine: String,
    /// Seconds from start to finish.
    pub secs: f64,
}

impl Store {
    /// The last `per_engine` successes of every cell on every engine, oldest first, with
    /// their durations (rows whose times do not parse are left out).
    pub fn recent_success_durations(
        &self,
        per_engine: usize,
    ) -> Result<Vec<SuccessDuration>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT cell, engine, started_at, finished_at FROM (
                    SELECT id, cell, engine, started_at, finished_at,
                           ROW_NUMBER() OVER (PARTITION BY cell, engine ORDER BY id DESC) AS n
                    FROM builds WHERE status = 'succeeded' AND finished_at IS NOT NULL
                 ) WHERE n <= ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([per_engine as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (cell, engine, start, end) = row.map_err(|e| self.err(e))?;
            if let (Some(s), Some(e)) = (parse_time(&start), parse_time(&end)) {
                out.push(SuccessDuration {
                    cell,
                    engine,
                    secs: (e - s).as_seconds_f64(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BuildStatus, Finish, NewBuild};
    use super::*;

    #[test]
    fn the_last_n_per_cell_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for (engine, status) in [
            ("a", BuildStatus::Succeeded),
            ("a", BuildStatus::Failed),
            ("a", BuildStatus::Succeeded),
            ("b", BuildStatus::Succeeded),
            ("a", BuildStatus::Succeeded),
        ] {
            let id = s
                .start(&NewBuild {
                    cell: "debian-13/opam/amd64",
                    engine,
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })
                .unwrap();
            s.finish(id, status, &Finish::default()).unwrap();
            ids.push(id);
        }
        // Set known times: build k took k+1 seconds.
        for (k, id) in ids.iter().enumerate() {
            s.conn
                .execute(
                    "UPDATE builds SET started_at = '2026-01-01T00:00:00Z', finished_at = ?2 WHERE id = ?1",
                    rusqlite::params![id, format!("2026-01-01T00:00:0{}Z", k + 1)],
                )
                .unwrap();
        }
        let got: Vec<(String, f64)> = s
            .recent_success_durations(2)
            .unwrap()
            .into_iter()
            .map(|d| (d.engine, d.secs))
            .collect();
        assert_eq!(
            got,
            [("a".into(), 3.0), ("b".into(), 4.0), ("a".into(), 5.0)],
            "the last two successes on a, oldest first, and b's one"
        );
    }
}
