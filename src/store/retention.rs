//! The retention policy of build logs (`[history] keep_logs_per_cell`, `keep_logs_days`)
//! and the prune that applies it: finished logs are compressed, logs past the policy are
//! removed, and their history rows stay, marked pruned.
//!
//! Always kept, whatever the policy: a log being written (a running build of a live
//! process), each cell's last success and last failure, pinned baselines, and each cell's
//! newest published build (the one its public tags point to: a build publish pushed, known
//! by its registry size).
//!
//! Crash safety: the rows are marked pruned (one transaction) before their files go; a file
//! goes by one `unlink` (whole or gone), and compression is atomic (see [`super::logfile`]).
//! A kill in between leaves files of pruned rows, which the next prune removes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::{logfile, process_alive, Store, StoreError};
use crate::model::status::BuildStatus;

/// How many logs to keep. A log goes when it is past either limit (and not always kept,
/// see the module doc); None is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LogPolicy {
    /// Keep the newest N logs of each cell.
    pub keep_per_cell: Option<usize>,
    /// Keep logs of builds started within the last D days.
    pub keep_days: Option<u32>,
}

/// One build's log as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub id: i64,
    pub cell: String,
    /// RFC 3339.
    pub started_at: String,
    /// Already marked pruned.
    pub pruned: bool,
    /// Still being written (a running build of a live process).
    pub writing: bool,
}

/// The ids whose logs the policy removes now: rows not yet pruned, not being written, not
/// in `protected`, past `keep_per_cell` of their cell (newest first) or started before
/// `now - keep_days`. `rows` in any order.
pub fn decide(
    rows: &[LogRow],
    protected: &HashSet<i64>,
    policy: LogPolicy,
    now: time::OffsetDateTime,
) -> Vec<i64> {
    let cutoff = policy
        .keep_days
        .map(|d| now - time::Duration::days(i64::from(d)));
    let mut by_cell: HashMap<&str, Vec<&LogRow>> = HashMap::new();
    for r in rows {
        by_cell.entry(&r.cell).or_default().push(r);
    }
    let mut out = Vec::new();
    for (_, mut v) in by_cell {
        v.sort_by_key(|r| std::cmp::Reverse(r.id));
        for (rank, r) in v.into_iter().enumerate() {
            if r.pruned || r.writing || protected.contains(&r.id) {
                continue;
            }
            let too_many = policy.keep_per_cell.is_some_and(|n| rank >= n);
            let too_old =
                cutoff.is_some_and(|c| super::parse_time(&r.started_at).is_some_and(|t| t < c));
            if too_many || too_old {
                out.push(r.id);
            }
        }
    }
    out.sort_unstable();
    out
}

/// A log removed (or that a dry run would remove).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrunedLog {
    pub build: i64,
    pub cell: String,
    /// Bytes on disk it held.
    pub bytes: u64,
}

/// What a prune of the logs did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogPruneReport {
    pub dry_run: bool,
    pub policy: LogPolicy,
    /// Logs removed by the policy (their rows stay, marked pruned).
    pub pruned: Vec<PrunedLog>,
    /// Bytes those logs held.
    pub pruned_bytes: u64,
    /// Finished logs compressed now (dry: that would be).
    pub compressed: usize,
    /// Their bytes before compression.
    pub compressed_from_bytes: u64,
    /// Their bytes after (0 on a dry run: not computed).
    pub compressed_to_bytes: u64,
    /// Files of earlier interrupted prunes removed: partial compressions, plain copies
    /// beside their compressed log, files of rows already marked pruned.
    pub leftovers_removed: usize,
    /// Bytes those held.
    pub leftover_bytes: u64,
    /// Logs kept, and the bytes they hold after this prune.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Files that could not be handled (path: error); the rest went on.
    pub errors: Vec<String>,
    /// Dockerfile texts no kept row names any more, removed (dry: that would be), and the
    /// bytes they held (compressed, as stored).
    pub texts_removed: usize,
    pub texts_bytes: u64,
}

impl LogPruneReport {
    /// Bytes freed (or, dry, that pruning would free; compression not counted then).
    pub fn freed_bytes(&self) -> u64 {
        self.pruned_bytes
            + self.leftover_bytes
            + self.compressed_from_bytes.saturating_sub(if self.dry_run {
                self.compressed_from_bytes
            } else {
                self.compressed_to_bytes
            })
    }
}

impl Store {
    /// Every build that ran (has a log, now or once), for [`decide`].
    pub fn log_rows(&self) -> Result<Vec<LogRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, cell, started_at, log_pruned_at IS NOT NULL, status, pid
                 FROM builds WHERE engine != ''",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let status = BuildStatus::from_db(&r.get::<_, String>(4)?);
                Ok(LogRow {
                    id: r.get(0)?,
                    cell: r.get(1)?,
                    started_at: r.get(2)?,
                    pruned: r.get(3)?,
                    writing: status == BuildStatus::Running && process_alive(r.get(5)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Builds whose logs the policy always keeps: each cell's last success, last failure and
    /// newest published build, and every pinned baseline.
    pub fn protected_logs(&self) -> Result<HashSet<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT MAX(id) FROM builds WHERE status = 'succeeded' GROUP BY cell
                 UNION SELECT MAX(id) FROM builds WHERE status = 'failed' GROUP BY cell
                 UNION SELECT MAX(id) FROM builds WHERE compressed_size IS NOT NULL GROUP BY cell
                 UNION SELECT build_id FROM baselines",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<HashSet<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Mark these builds' logs pruned, in one transaction.
    pub fn mark_logs_pruned(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let t = super::now();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| classify_tx(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare("UPDATE builds SET log_pruned_at = ?2 WHERE id = ?1")
                .map_err(|e| classify_tx(&self.path, e))?;
            for id in ids {
                stmt.execute(rusqlite::params![id, t])
                    .map_err(|e| classify_tx(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| classify_tx(&self.path, e))
    }

    /// What the policy decides now: (rows, ids to prune).
    pub fn plan_log_prune(&self, policy: LogPolicy) -> Result<(Vec<LogRow>, Vec<i64>), StoreError> {
        let rows = self.log_rows()?;
        let protected = self.protected_logs()?;
        let ids = decide(&rows, &protected, policy, time::OffsetDateTime::now_utc());
        Ok((rows, ids))
    }
}

fn classify_tx(path: &str, e: rusqlite::Error) -> StoreError {
    super::classify(Path::new(path), e)
}

/// The log files in `logs/` by build id (`<id>.log`, `.log.zst`, `.log.zst.partial`);
/// other files (publish logs) are not build logs.
pub fn log_files(logs: &Path) -> std::io::Result<BTreeMap<i64, Vec<(std::path::PathBuf, u64)>>> {
    let mut out: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for e in std::fs::read_dir(logs)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name.strip_suffix(logfile::PARTIAL).unwrap_or(name);
        let Some(id) = logfile::id_of(Path::new(stem)) else {
            continue;
        };
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        out.entry(id).or_default().push((e.path(), len));
    }
    Ok(out)
}

/// Apply a decided prune to the files of `dir/logs` (rows in `to_prune` must already be
/// marked pruned, unless `dry_run`): remove pruned logs and leftovers, compress the other
/// finished logs. Never touches a log being written, nor files of builds not in `rows`
/// (another history's, or made by hand).
pub fn apply(
    dir: &Path,
    rows: &[LogRow],
    to_prune: &[i64],
    policy: LogPolicy,
    dry_run: bool,
) -> LogPruneReport {
    let mut report = LogPruneReport {
        dry_run,
        policy,
        ..Default::default()
    };
    let logs = dir.join("logs");
    let files = match log_files(&logs) {
        Ok(f) => f,
        Err(e) => {
            report.errors.push(format!("{}: {e}", logs.display()));
            return report;
        }
    };
    let rows: HashMap<i64, &LogRow> = rows.iter().map(|r| (r.id, r)).collect();
    let prune: HashSet<i64> = to_prune.iter().copied().collect();
    for (id, present) in files {
        let Some(row) = rows.get(&id) else { continue };
        if row.writing {
            continue;
        }
        let plain = super::log_path_in(dir, id);
        let bytes: u64 = present.iter().map(|(_, n)| n).sum();
        let fail = |report: &mut LogPruneReport, e: std::io::Error| {
            report.errors.push(format!("{}: {e}", plain.display()))
        };
        if prune.contains(&id) || row.pruned {
            if prune.contains(&id) {
                report.pruned.push(PrunedLog {
                    build: id,
                    cell: row.cell.clone(),
                    bytes,
                });
                report.pruned_bytes += bytes;
            } else {
                report.leftovers_removed += present.len();
                report.leftover_bytes += bytes;
            }
            if !dry_run {
                if let Err(e) = logfile::remove(&plain) {
                    fail(&mut report, e);
                }
            }
            continue;
        }
        // Kept: leftovers of an interrupted compression go, a plain log is compressed.
        let zst = logfile::compressed(&plain);
        let has = |p: &Path| present.iter().any(|(q, _)| q == p);
        let size_of = |p: &Path| {
            present
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        let mut partial = zst.as_os_str().to_owned();
        partial.push(logfile::PARTIAL);
        let partial = std::path::PathBuf::from(partial);
        if has(&partial) {
            report.leftovers_removed += 1;
            report.leftover_bytes += size_of(&partial);
            if !dry_run {
                if let Err(e) = std::fs::remove_file(&partial) {
                    fail(&mut report, e);
                }
            }
        }
        report.kept += 1;
        if has(&plain) && has(&zst) {
            report.leftovers_removed += 1;
            report.leftover_bytes += size_of(&plain);
            report.kept_bytes += size_of(&zst);
            if !dry_run {
                if let Err(e) = std::fs::remove_file(&plain) {
                    fail(&mut report, e);
                }
            }
        } else if has(&plain) {
            report.compressed += 1;
            report.compressed_from_bytes += size_of(&plain);
            if dry_run {
                report.kept_bytes += size_of(&plain);
            } else {
                match logfile::compress(&plain) {
                    Ok((_, after)) => {
                        report.compressed_to_bytes += after;
                        report.kept_bytes += after;
                    }
                    Err(e) => {
                        report.kept_bytes += size_of(&plain);
                        fail(&mut report, e);
                    }
                }
            }
        } else {
            report.kept_bytes += size_of(&zst);
        }
    }
    report
}

/// Decide and apply the policy on `store` (see the module doc for the order that keeps a
/// crash harmless). A dry run changes nothing.
/// Errors: the store's; file errors are listed in the report and do not stop it.
pub fn prune_logs(
    store: &mut Store,
    policy: LogPolicy,
    dry_run: bool,
) -> Result<LogPruneReport, StoreError> {
    let (rows, ids) = store.plan_log_prune(policy)?;
    if !dry_run {
        store.mark_logs_pruned(&ids)?;
    }
    let texts = store.prune_texts(&ids, dry_run)?;
    let mut report = apply(store.dir(), &rows, &ids, policy, dry_run);
    (report.texts_removed, report.texts_bytes) = texts;
    Ok(report)
}

impl Store {
    /// Remove the texts no kept row names once `pruning` (the rows this prune marks) are
    /// pruned (a dry run removes nothing). Returns how many, and their stored bytes.
    pub fn prune_texts(&self, pruning: &[i64], dry_run: bool) -> Result<(usize, u64), StoreError> {
        let gone = self.unreferenced_texts(&pruning.iter().copied().collect())?;
        if !dry_run {
            self.remove_texts(&gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>())?;
        }
        Ok((gone.len(), gone.iter().map(|g| g.1.max(0) as u64).sum()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, cell: &str, days_ago: i64) -> LogRow {
        let t = time::OffsetDateTime::now_utc() - time::Duration::days(days_ago);
        LogRow {
            id,
            cell: cell.into(),
            started_at: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            pruned: false,
            writing: false,
        }
    }

    #[test]
    fn the_policy_keeps_the_newest_the_recent_and_the_protected() {
        // Cell a: builds 1..=6, one a week, build 6 the newest; cell b: 7, 8.
        let mut rows: Vec<LogRow> = (1..=6).map(|i| row(i, "a", (6 - i) * 7)).collect();
        rows.push(row(7, "b", 100));
        rows.push(row(8, "b", 0));
        let now = time::OffsetDateTime::now_utc();
        let per_cell = LogPolicy {
            keep_per_cell: Some(2),
            keep_days: None,
        };
        assert_eq!(
            decide(&rows, &HashSet::new(), per_cell, now),
            vec![1, 2, 3, 4]
        );
        // Protected builds stay; already pruned and running ones are not pruned again.
        rows[1].pruned = true;
        rows[2].writing = true;
        assert_eq!(decide(&rows, &HashSet::from([1]), per_cell, now), vec![4]);
        let days = LogPolicy {
            keep_per_cell: None,
            keep_days: Some(20),
        };
        assert_eq!(decide(&rows, &HashSet::new(), days, now), vec![1, 7]);
        // Either limit prunes.
        let both = LogPolicy {
            keep_per_cell: Some(5),
            keep_days: Some(20),
        };
        assert_eq!(decide(&rows, &HashSet::new(), both, now), vec![1, 7]);
        assert!(decide(&rows, &HashSet::new(), LogPolicy::default(), now).is_empty());
    }
}
