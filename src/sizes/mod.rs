//! Size regressions: deltas against the previous success and a pinned baseline, thresholds
//! in bytes and percent, layer-by-layer diffs between builds, gates, and report formats.
//! Pure functions over stored builds; no engine, no terminal.

pub mod plot;
pub mod wasted;

use serde::Serialize;

use crate::engine::build::Layer;
use crate::store::BuildRecord;

/// A size limit: absolute bytes or a percentage of the reference size.
/// A size or growth limit that does not parse; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Limit {
    Bytes(u64),
    Percent(f64),
}

/// Parse `500MB`, `1.5G`, `2GiB`, `123456`, or (when allowed) `5%`.
pub fn parse_limit(text: &str, allow_percent: bool) -> Result<Limit, LimitError> {
    parse_limit_text(text, allow_percent).map_err(LimitError)
}

fn parse_limit_text(text: &str, allow_percent: bool) -> Result<Limit, String> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        if !allow_percent {
            return Err(format!(
                "`{text}`: a percentage is not allowed here; give a size like 500MB"
            ));
        }
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: not a percentage"))?;
        if v.is_nan() || v < 0.0 {
            return Err(format!("`{text}`: a percentage must be >= 0"));
        }
        return Ok(Limit::Percent(v));
    }
    parse_size_text(t).map(Limit::Bytes)
}

/// Parse a size: decimal units (k, M, G, T, with optional B) or binary (KiB, MiB, GiB, TiB).
pub fn parse_size(text: &str) -> Result<u64, LimitError> {
    parse_size_text(text).map_err(LimitError)
}

fn parse_size_text(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{text}`: not a size (e.g. 500MB, 1.5G, 2GiB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    Ok((v * mult).round() as u64)
}

/// Growth thresholds: a build regresses when it grows past either.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub bytes: u64,
    pub percent: f64,
}

/// The change from `reference` to `size`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    pub bytes: i64,
    /// None when the reference is 0.
    pub percent: Option<f64>,
}

impl Delta {
    pub fn between(reference: i64, size: i64) -> Delta {
        let bytes = size - reference;
        let percent = (reference > 0).then(|| bytes as f64 * 100.0 / reference as f64);
        Delta { bytes, percent }
    }

    /// Grew past either threshold (both apply, since percentages swing wildly on small images
    /// and bytes hide growth on big ones).
    pub fn regresses(&self, t: &Thresholds) -> bool {
        self.bytes > 0
            && (self.bytes as u64 > t.bytes || self.percent.is_some_and(|p| p > t.percent))
    }

    /// Does it breach a `--max-growth` limit?
    pub fn exceeds(&self, limit: Limit) -> bool {
        match limit {
            Limit::Bytes(b) => self.bytes > 0 && self.bytes as u64 > b,
            Limit::Percent(p) => self.bytes > 0 && self.percent.is_some_and(|x| x > p),
        }
    }
}

/// One cell's size situation, as the `sizes` report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeRow {
    pub cell: String,
    pub build_id: i64,
    pub started_at: String,
    pub size: i64,
    pub compressed_size: Option<i64>,
    pub previous_build: Option<i64>,
    pub previous_size: Option<i64>,
    pub delta: Option<Delta>,
    pub baseline_build: Option<i64>,
    pub baseline_size: Option<i64>,
    pub vs_baseline: Option<Delta>,
    /// Grew past the thresholds against the previous success or the baseline.
    pub regressed: bool,
}

/// Build the report rows: for each cell, its newest success against the one before it and
/// against its baseline. `history` is every success, oldest first.
pub fn rows(
    history: &[BuildRecord],
    baselines: &std::collections::HashMap<String, BuildRecord>,
    t: &Thresholds,
) -> Vec<SizeRow> {
    let mut by_cell: std::collections::BTreeMap<&str, Vec<&BuildRecord>> = Default::default();
    for r in history.iter().filter(|r| r.size.is_some()) {
        by_cell.entry(&r.cell).or_default().push(r);
    }
    by_cell
        .into_iter()
        .filter_map(|(cell, builds)| {
            let last = *builds.last()?;
            let prev = builds.len().checked_sub(2).map(|i| builds[i]);
            let size = last.size?;
            let delta = prev.and_then(|p| p.size).map(|p| Delta::between(p, size));
            let base = baselines.get(cell);
            let vs_baseline = base.and_then(|b| b.size).map(|b| Delta::between(b, size));
            let regressed = delta.is_some_and(|d| d.regresses(t))
                || vs_baseline.is_some_and(|d| d.regresses(t));
            Some(SizeRow {
                cell: cell.to_string(),
                build_id: last.id,
                started_at: last.started_at.clone(),
                size,
                compressed_size: last.compressed_size,
                previous_build: prev.map(|p| p.id),
                previous_size: prev.and_then(|p| p.size),
                delta,
                baseline_build: base.map(|b| b.id),
                baseline_size: base.and_then(|b| b.size),
                vs_baseline,
                regressed,
            })
        })
        .collect()
}

/// How a layer changed between two builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Grown,
    Shrunk,
    Same,
}

/// One row of a layer diff, oldest layer first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerChange {
    pub change: Change,
    /// The instruction, as the engine recorded it (normalised).
    pub instruction: String,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

impl LayerChange {
    pub fn delta(&self) -> i64 {
        self.after.unwrap_or(0) - self.before.unwrap_or(0)
    }
}

/// The instruction of a layer without builder noise: classic `/bin/sh -c #(nop) ` and
/// BuildKit's ` # buildkit` suffix, so both builders' layers compare.
pub fn instruction(created_by: &str) -> String {
    let s = created_by.trim();
    let s = s.strip_suffix("# buildkit").unwrap_or(s).trim();
    let s = s
        .strip_prefix("/bin/sh -c #(nop)")
        .map(str::trim)
        .unwrap_or(s);
    // Classic records `/bin/sh -c CMD`, BuildKit `RUN /bin/sh -c CMD`: both become `RUN CMD`.
    let s = match s
        .strip_prefix("/bin/sh -c ")
        .or_else(|| s.strip_prefix("RUN /bin/sh -c "))
    {
        Some(rest) => format!("RUN {rest}"),
        None => s.to_string(),
    };
    // Classic COPY records a content hash instead of paths; keep the destination.
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Diff two builds' layers (each newest first, as image history lists them) by aligning
/// instructions (longest common subsequence), oldest first.
pub fn layer_diff(before: &[Layer], after: &[Layer]) -> Vec<LayerChange> {
    let a: Vec<(String, i64)> = before
        .iter()
        .rev()
        .map(|l| (instruction(&l.created_by), l.size))
        .collect();
    let b: Vec<(String, i64)> = after
        .iter()
        .rev()
        .map(|l| (instruction(&l.created_by), l.size))
        .collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i].0 == b[j].0 {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i].0 == b[j].0 {
            let change = match b[j].1.cmp(&a[i].1) {
                std::cmp::Ordering::Greater => Change::Grown,
                std::cmp::Ordering::Less => Change::Shrunk,
                std::cmp::Ordering::Equal => Change::Same,
            };
            out.push(LayerChange {
                change,
                instruction: b[j].0.clone(),
                before: Some(a[i].1),
                after: Some(b[j].1),
            });
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(LayerChange {
                change: Change::Added,
                instruction: b[j].0.clone(),
                before: None,
                after: Some(b[j].1),
            });
            j += 1;
        } else {
            out.push(LayerChange {
                change: Change::Removed,
                instruction: a[i].0.clone(),
                before: Some(a[i].1),
                after: None,
            });
            i += 1;
        }
    }
    out
}

/// Output formats of `imagegrid sizes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

fn signed(d: Option<Delta>) -> String {
    match d {
        Some(d) => {
            let pct = d
                .percent
                .map(|p| format!(" ({p:+.1}%)"))
                .unwrap_or_default();
            format!(
                "{}{}{pct}",
                if d.bytes > 0 {
                    "+"
                } else if d.bytes < 0 {
                    "-"
                } else {
                    "±"
                },
                crate::util::units::human_size(d.bytes.abs())
            )
        }
        None => String::new(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Render report rows.
pub fn render(rows: &[SizeRow], format: Format) -> String {
    let hs = crate::util::units::human_size;
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut s = String::from("cell,build,started_at,size,compressed_size,previous_size,delta_bytes,delta_percent,baseline_size,vs_baseline_bytes,regressed\n");
            for r in rows {
                let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&r.cell),
                    r.build_id,
                    r.started_at,
                    r.size,
                    opt(r.compressed_size),
                    opt(r.previous_size),
                    opt(r.delta.map(|d| d.bytes)),
                    r.delta
                        .and_then(|d| d.percent)
                        .map(|p| format!("{p:.2}"))
                        .unwrap_or_default(),
                    opt(r.baseline_size),
                    opt(r.vs_baseline.map(|d| d.bytes)),
                    r.regressed
                ));
            }
            s
        }
        Format::Markdown => {
            let mut s = String::from("| cell | build | size | compressed | change | vs baseline | |\n|---|---:|---:|---:|---:|---:|---|\n");
            for r in rows {
                s.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                    r.cell,
                    r.build_id,
                    hs(r.size),
                    r.compressed_size.map(hs).unwrap_or_default(),
                    signed(r.delta),
                    signed(r.vs_baseline),
                    if r.regressed { "⚠ regressed" } else { "" }
                ));
            }
            s
        }
        Format::Table => {
            let w = rows.iter().map(|r| r.cell.len()).max().unwrap_or(4).max(4);
            let mut s = format!(
                "{:w$}  {:>6}  {:>9}  {:>10}  {:>22}  {:>22}\n",
                "CELL", "BUILD", "SIZE", "COMPRESSED", "CHANGE", "VS BASELINE"
            );
            for r in rows {
                s.push_str(&format!(
                    "{:w$}  {:>6}  {:>9}  {:>10}  {:>22}  {:>22}{}\n",
                    r.cell,
                    r.build_id,
                    hs(r.size),
                    r.compressed_size.map(hs).unwrap_or_default(),
                    signed(r.delta),
                    signed(r.vs_baseline),
                    if r.regressed { "  REGRESSED" } else { "" }
                ));
            }
            s
        }
    }
}

/// Turn a multi-stage Dockerfile into one stage: the builder's steps, then the final stage's
/// without its FROM, each `COPY --from=STAGE src dst` becoming a copy inside the one
/// filesystem. What the builder left behind stays: the size multi-stage builds avoid.
pub fn single_stage(dockerfile: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let mut froms = 0;
    for line in dockerfile.lines() {
        let t = line.trim_start();
        if t.starts_with("FROM ") {
            froms += 1;
            if froms == 1 {
                out.push(line.to_string());
            } else {
                out.push(format!(
                    "# (single stage: continuing in the same filesystem instead of `{}`)",
                    t
                ));
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("COPY --from=") {
            let mut parts = rest.split_whitespace();
            let _stage = parts.next();
            let args: Vec<&str> = parts.collect();
            if args.len() < 2 {
                return Err(format!("cannot rewrite `{t}`"));
            }
            let (srcs, dst) = args.split_at(args.len() - 1);
            let srcs: Vec<String> = srcs
                .iter()
                .map(|s| {
                    if s.ends_with('/') {
                        format!("{s}.")
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            out.push(format!(
                "RUN mkdir -p {} && cp -a {} {}",
                if dst[0].ends_with('/') {
                    dst[0].to_string()
                } else {
                    format!("$(dirname {})", dst[0])
                },
                srcs.join(" "),
                dst[0]
            ));
            continue;
        }
        out.push(line.to_string());
    }
    if froms < 2 {
        return Err("the Dockerfile has one stage already".into());
    }
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(size: i64, by: &str) -> Layer {
        Layer {
            size,
            created_by: by.into(),
        }
    }

    #[test]
    fn limits_and_sizes() {
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .0
            .contains("unknown unit"));
        assert_eq!(parse_limit("5%", true).unwrap(), Limit::Percent(5.0));
        assert!(parse_limit("5%", false).is_err());
    }

    #[test]
    fn regression_needs_either_threshold() {
        let t = Thresholds {
            bytes: 10_000_000,
            percent: 5.0,
        };
        assert!(
            Delta::between(100_000_000, 111_000_000).regresses(&t),
            "11 MB and 11%"
        );
        assert!(
            Delta::between(1_000_000_000, 1_020_000_000).regresses(&t),
            "20 MB but 2%"
        );
        assert!(
            Delta::between(1_000_000, 1_200_000).regresses(&t),
            "20% of a small image"
        );
        assert!(!Delta::between(1_000_000_000, 1_004_000_000).regresses(&t));
        assert!(
            !Delta::between(100, 50).regresses(&t),
            "shrinking never regresses"
        );
        assert!(Delta::between(100, 200).exceeds(Limit::Percent(50.0)));
        assert!(!Delta::between(100, 200).exceeds(Limit::Bytes(1000)));
    }

    #[test]
    fn layer_diff_aligns_instructions() {
        // Newest first, as image history lists them.
        let before = vec![
            layer(5, "COPY Dockerfile /Dockerfile.opam # buildkit"),
            layer(100, "RUN make # buildkit"),
            layer(2000, "/bin/sh -c #(nop) ADD file:abc in / "),
        ];
        let after = vec![
            layer(5, "COPY Dockerfile /Dockerfile.opam # buildkit"),
            layer(40, "RUN strip opam # buildkit"),
            layer(150, "RUN make # buildkit"),
            layer(2000, "/bin/sh -c #(nop) ADD file:abc in / "),
        ];
        let d = layer_diff(&before, &after);
        let kinds: Vec<Change> = d.iter().map(|c| c.change).collect();
        assert_eq!(
            kinds,
            [Change::Same, Change::Grown, Change::Added, Change::Same]
        );
        assert_eq!(d[1].delta(), 50);
        assert_eq!(d[2].instruction, "RUN strip opam");
        let back = layer_diff(&after, &before);
        assert_eq!(back[2].change, Change::Removed);
    }

    #[test]
    fn single_stage_rewrite() {
        let df = "FROM alpine AS opam-builder\nRUN make\nFROM alpine\nCOPY --from=opam-builder /opam-bin/ /usr/bin/\nCOPY --from=opam-builder /out/x /usr/local/bin/x\nRUN true\n";
        let s = single_stage(df).unwrap();
        assert_eq!(s.lines().filter(|l| l.starts_with("FROM")).count(), 1);
        assert!(
            s.contains("RUN mkdir -p /usr/bin/ && cp -a /opam-bin/. /usr/bin/"),
            "{s}"
        );
        assert!(s.contains("cp -a /out/x /usr/local/bin/x"), "{s}");
        assert!(single_stage("FROM x\n").is_err());
    }
}
