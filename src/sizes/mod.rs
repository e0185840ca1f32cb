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
/// BuildKit's ` # buildkit` suffix, so both builders' layers compare. For display; layers are
/// matched across builds by [`layer_key`].
pub fn instruction(created_by: &str) -> String {
    let s = created_by.trim();
    let s = s.strip_suffix("# buildkit").unwrap_or(s).trim();
    let s = s
        .strip_prefix("/bin/sh -c #(nop)")
        .map(str::trim)
        .unwrap_or(s);
    // Classic records `/bin/sh -c CMD` (or `|N ARG=v... /bin/sh -c CMD` with build args),
    // BuildKit `RUN /bin/sh -c CMD` (`RUN |N ARG=v... /bin/sh -c CMD`): all become `RUN CMD`
    // (`RUN |N ARG=v... CMD`).
    let body = s.strip_prefix("RUN ").map(str::trim_start).unwrap_or(s);
    let (args, cmd) = split_build_args(body);
    let s = match cmd.strip_prefix("/bin/sh -c ") {
        Some(rest) if args.is_empty() => format!("RUN {rest}"),
        Some(rest) => format!("RUN {args} {rest}"),
        None => s.to_string(),
    };
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `("|2 A=1 B=2", "rest")` for `|2 A=1 B=2 rest` (how both builders record the build args a
/// RUN step saw); `("", text)` when there are none.
fn split_build_args(text: &str) -> (&str, &str) {
    let Some(n) = text
        .strip_prefix('|')
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return ("", text);
    };
    // `|N` and N `NAME=value` words (values are recorded without quoting).
    let mut end = 0;
    let mut words = 0;
    let bytes = text.as_bytes();
    while words <= n {
        while end < bytes.len() && bytes[end] == b' ' {
            end += 1;
        }
        if end == bytes.len() {
            return ("", text);
        }
        while end < bytes.len() && bytes[end] != b' ' {
            end += 1;
        }
        words += 1;
    }
    (&text[..end], text[end..].trim_start())
}

/// What identifies a layer's step across builds: the instruction without what changes every
/// build although the step is the same one.
///
/// * The classic builder records `COPY file:<content hash> in <dest>` (`dir:`, `multi:`, and
///   the same for `ADD`), BuildKit `COPY <src>... <dest>`: a COPY or ADD is keyed by its
///   keyword and destination only, so a changed file is the same step, grown or shrunk.
/// * imagegrid's own labels (`imagegrid.cell`, `.inputs`, `.build`: LABEL steps under the
///   classic builder) are keyed by their names, not their values.
/// * The build args a RUN saw (`|N ARG=v...`) are dropped; the command stays.
/// * Spellings of the two builders are unified by [`instruction`].
pub fn layer_key(created_by: &str) -> String {
    let s = instruction(created_by);
    let (word, rest) = s.split_once(' ').unwrap_or((s.as_str(), ""));
    match word.to_ascii_uppercase().as_str() {
        "RUN" => match split_build_args(rest) {
            ("", _) => s,
            (_, cmd) => format!("RUN {cmd}"),
        },
        w @ ("COPY" | "ADD") => format!("{w} {}", copy_destination(rest)),
        "LABEL" => {
            let words = shell_words(rest);
            let ours = |w: &String| w.starts_with("imagegrid.");
            if words.iter().any(ours) {
                let keyed: Vec<String> = words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, _)) if k.starts_with("imagegrid.") => k.to_string(),
                        _ => w,
                    })
                    .collect();
                format!("LABEL {}", keyed.join(" "))
            } else {
                s
            }
        }
        _ => s,
    }
}

/// The destination of a COPY/ADD as either builder records it (flags dropped, a trailing `/`
/// too: `COPY a /d/` and the classic `COPY file:h in /d` copy into the same place).
fn copy_destination(args: &str) -> String {
    let words: Vec<&str> = args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    // Classic: `file:<hash> in <dest>` (`dir:`, `multi:`).
    let classic = words.windows(2).position(|w| {
        w[1] == "in"
            && w[0].split_once(':').is_some_and(|(kind, hash)| {
                matches!(kind, "file" | "dir" | "multi")
                    && !hash.is_empty()
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
            })
    });
    let dest = match classic {
        Some(i) => words[i + 2..].join(" "),
        None => {
            let rest = words.join(" ");
            // The JSON form: `["src", "dest"]`.
            match serde_json::from_str::<Vec<String>>(&rest) {
                Ok(v) if !v.is_empty() => v[v.len() - 1].clone(),
                _ => words.last().map(|w| w.to_string()).unwrap_or_default(),
            }
        }
    };
    let trimmed = dest.trim_end_matches('/');
    if trimmed.is_empty() {
        dest
    } else {
        trimmed.to_string()
    }
}

/// Words of a LABEL line, double quotes kept inside the word (`k="a b"` is one word).
fn shell_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Instructions that only change the image config: they never make a layer.
const CONFIG_ONLY: &[&str] = &[
    "ARG",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
];

/// The digest (diff id) of each history entry's layer, newest first like `layers`, given the
/// image's layers (`RootFS.Layers`, oldest first). The history does not say which entries made
/// a layer; they are matched when that is unambiguous (as many entries that can make a layer,
/// or as many non-empty ones, as there are layers), else every digest is unknown (None).
pub fn history_digests(layers: &[Layer], diff_ids: &[String]) -> Vec<Option<String>> {
    let unknown = vec![None; layers.len()];
    let oldest_first: Vec<&Layer> = layers.iter().rev().collect();
    // Readings of which entries made a layer, from the most to the least inclusive.
    let config_only = |l: &Layer| {
        let i = instruction(&l.created_by);
        let word = i
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        l.size == 0 && CONFIG_ONLY.contains(&word.as_str())
    };
    let readings = [
        |_: &Layer, _: bool| true,
        |l: &Layer, config_only: bool| l.size > 0 || !config_only,
        |l: &Layer, _: bool| l.size > 0,
    ];
    for makes_layer in readings {
        let picks: Vec<bool> = oldest_first
            .iter()
            .map(|l| makes_layer(l, config_only(l)))
            .collect();
        if picks.iter().filter(|p| **p).count() != diff_ids.len() {
            continue;
        }
        // An entry with bytes must have a layer; else this reading is wrong.
        if oldest_first
            .iter()
            .zip(&picks)
            .any(|(l, p)| l.size > 0 && !p)
        {
            continue;
        }
        let mut ids = diff_ids.iter();
        let mut out: Vec<Option<String>> = picks
            .iter()
            .map(|p| if *p { ids.next().cloned() } else { None })
            .collect();
        out.reverse();
        return out;
    }
    unknown
}

/// Diff two builds' layers (each newest first, as image history lists them) by aligning
/// their [`layer_key`]s (longest common subsequence), oldest first.
pub fn layer_diff(before: &[Layer], after: &[Layer]) -> Vec<LayerChange> {
    layer_diff_with_digests(before, after, &[], &[])
}

/// [`layer_diff`] where the layers' digests are known (from [`history_digests`]; an empty or
/// shorter slice, or None, means unknown). Two aligned layers with the same digest are
/// `Same`; with different digests they are `Grown` or `Shrunk`, or, at the same size, the old
/// layer `Removed` and the new one `Added`: the content changed, whatever the size says. With
/// a digest unknown on either side, sizes decide.
pub fn layer_diff_with_digests(
    before: &[Layer],
    after: &[Layer],
    before_digests: &[Option<String>],
    after_digests: &[Option<String>],
) -> Vec<LayerChange> {
    struct Row<'a> {
        key: String,
        shown: String,
        size: i64,
        digest: Option<&'a str>,
    }
    fn rows<'a>(layers: &[Layer], digests: &'a [Option<String>]) -> Vec<Row<'a>> {
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| Row {
                key: layer_key(&l.created_by),
                shown: instruction(&l.created_by),
                size: l.size,
                digest: digests.get(i).and_then(|d| d.as_deref()),
            })
            .rev()
            .collect()
    }
    let a = rows(before, before_digests);
    let b = rows(after, after_digests);
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i].key == b[j].key {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let added = |r: &Row| LayerChange {
        change: Change::Added,
        instruction: r.shown.clone(),
        before: None,
        after: Some(r.size),
    };
    let removed = |r: &Row| LayerChange {
        change: Change::Removed,
        instruction: r.shown.clone(),
        before: Some(r.size),
        after: None,
    };
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i].key == b[j].key {
            let (x, y) = (&a[i], &b[j]);
            let change = match y.size.cmp(&x.size) {
                std::cmp::Ordering::Greater => Change::Grown,
                std::cmp::Ordering::Less => Change::Shrunk,
                std::cmp::Ordering::Equal => Change::Same,
            };
            match (x.digest, y.digest) {
                (Some(dx), Some(dy)) if dx != dy && change == Change::Same => {
                    out.push(removed(x));
                    out.push(added(y));
                }
                _ => out.push(LayerChange {
                    change,
                    instruction: y.shown.clone(),
                    before: Some(x.size),
                    after: Some(y.size),
                }),
            }
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(added(&b[j]));
            j += 1;
        } else {
            out.push(removed(&a[i]));
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
///
/// The rewrite keeps what COPY does, so that the recipe builds whatever its shape:
/// * `--from` names an earlier stage by name (case-insensitive) or index; anything else is an
///   image, and that COPY is kept as it is (it works in one stage too).
/// * A directory source copies its contents; several sources or a destination ending in `/`
///   copy into a directory; a file onto a path that is a directory goes inside it. Globs are
///   expanded by the shell. Relative sources are relative to the stage's root, relative
///   destinations to the working directory (where RUN runs too).
/// * A copy onto its own path (`COPY --from=b /usr/bin/opam /usr/bin/opam`, or a file into the
///   directory it is in) is a no-op in one filesystem, and is skipped instead of failing.
/// * `--chown` and `--chmod` are applied to what was copied; `--link` changes nothing here.
/// * COPY runs as root whatever `USER` says, so the copy does too (and the stage's user is
///   restored after it); it runs with `/bin/sh` whatever `SHELL` says. Root is named `0:0`:
///   an image without `/etc/passwd` has no user called root.
/// * At each later FROM the user and working directory go back to root and `/`, as a new
///   stage starts from its base image (the builder's `USER` would otherwise still apply).
///
/// Errors: a recipe this rewrite cannot express in one stage (no FROM, a `COPY --from` flag it
/// does not know), with the line.
pub fn single_stage(dockerfile: &str) -> Result<String, SingleStageError> {
    single_stage_text(dockerfile).map_err(SingleStageError)
}

/// Why a multi-stage recipe has no single-stage equivalent here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SingleStageError(pub String);

fn single_stage_text(dockerfile: &str) -> Result<String, String> {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let mut out: Vec<String> = Vec::new();
    // Stage names, by index (None: unnamed).
    let mut stages: Vec<Option<String>> = Vec::new();
    // The USER of the current stage, if it set one.
    let mut user: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start();
        if first.is_empty() || first.starts_with('#') {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        }
        // One instruction with its continuation lines (comment lines inside are skipped).
        let start = i;
        let mut text = String::new();
        while i < lines.len() {
            let l = lines[i];
            i += 1;
            if !text.is_empty() && l.trim_start().starts_with('#') {
                continue;
            }
            match l.trim_end().strip_suffix('\\') {
                Some(body) if i < lines.len() => {
                    text.push_str(body);
                    text.push(' ');
                }
                _ => {
                    text.push_str(l);
                    break;
                }
            }
        }
        let raw = lines[start..i].join("\n");
        let text = text.trim();
        let (word, rest) = text
            .split_once(char::is_whitespace)
            .map(|(w, r)| (w, r.trim()))
            .unwrap_or((text, ""));
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let name = match words.as_slice() {
                    [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => None,
                };
                stages.push(name);
                user = None;
                if stages.len() == 1 {
                    out.push(raw);
                } else {
                    out.push(format!(
                        "# (single stage: continuing in the same filesystem instead of `{}`)",
                        text
                    ));
                    out.push("USER 0:0".into());
                    out.push("WORKDIR /".into());
                }
            }
            "USER" => {
                user = Some(rest.to_string());
                out.push(raw);
            }
            "COPY" => match rewrite_copy(rest, &stages)? {
                Some(run) => {
                    let as_user = user
                        .as_deref()
                        .filter(|u| !matches!(*u, "root" | "0" | "root:root" | "0:0"));
                    if as_user.is_some() {
                        out.push("USER 0:0".into());
                    }
                    out.push(run);
                    if let Some(u) = as_user {
                        out.push(format!("USER {u}"));
                    }
                }
                None => out.push(raw),
            },
            _ => out.push(raw),
        }
    }
    if stages.len() < 2 {
        return Err("the Dockerfile has one stage already".into());
    }
    Ok(out.join("\n") + "\n")
}

/// The RUN that does what `COPY <args>` does when its `--from` is an earlier stage of the
/// same filesystem; None when it copies from elsewhere (the context, an image).
fn rewrite_copy(args: &str, stages: &[Option<String>]) -> Result<Option<String>, String> {
    let mut rest = args.trim();
    let (mut from, mut chown, mut chmod) = (None, None, None);
    while let Some(flag) = rest.strip_prefix("--") {
        let (f, r) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        rest = r.trim_start();
        let (name, value) = f.split_once('=').unwrap_or((f, ""));
        let value = value.trim_matches('"').to_string();
        match name {
            "from" => from = Some(value),
            "chown" => chown = Some(value),
            "chmod" => chmod = Some(value),
            "link" => {}
            other => {
                return Err(format!(
                    "cannot rewrite `COPY {args}`: --{other} is not supported"
                ))
            }
        }
    }
    let Some(from) = from else {
        return Ok(None);
    };
    // The stage it names: by name, or by index among the earlier stages.
    let earlier = stages.len().saturating_sub(1);
    let named = stages[..earlier]
        .iter()
        .any(|n| n.as_deref() == Some(from.to_ascii_lowercase().as_str()));
    let indexed = from.parse::<usize>().is_ok_and(|n| n < earlier);
    if !named && !indexed {
        return Ok(None);
    }
    let paths: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| format!("cannot rewrite `COPY {args}`: {e}"))?
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    if paths.len() < 2 {
        return Err(format!(
            "cannot rewrite `COPY {args}`: it needs a source and a destination"
        ));
    }
    let (srcs, dst) = paths.split_at(paths.len() - 1);
    let dst = &dst[0];
    let glob = |p: &str| p.contains(['*', '?', '[']);
    let into_dir = dst.ends_with('/') || srcs.len() > 1 || srcs.iter().any(|s| glob(s));
    // Sources are paths in the stage's root, whatever its working directory.
    let srcs: Vec<String> = srcs
        .iter()
        .map(|s| {
            let s = if s.starts_with('/') {
                s.clone()
            } else {
                format!("/{s}")
            };
            if glob(&s) {
                s
            } else {
                sh_quote(&s)
            }
        })
        .collect();
    let d = dst.trim_end_matches('/');
    let d = sh_quote(if d.is_empty() { "/" } else { d });
    let fix = |target: &str| {
        let mut f = String::new();
        if let Some(o) = &chown {
            f.push_str(&format!(" && chown -R {} {target}", sh_quote(o)));
        }
        if let Some(m) = &chmod {
            f.push_str(&format!(" && chmod -R {} {target}", sh_quote(m)));
        }
        f
    };
    // Per source `$s` (globs expanded by the loop), into directory `$d`: a directory's
    // contents, or the file itself; skipped when it is already where it would go.
    let dir_contents = format!(
        "mkdir -p \"$d\" && for c in \"$s\"/* \"$s\"/.[!.]* \"$s\"/..?*; do \
         if [ -e \"$c\" ] || [ -L \"$c\" ]; then cp -a \"$c\" \"$d\"/{}; fi; done",
        fix("\"$d/${c##*/}\"")
    );
    let script = if into_dir {
        format!(
            "set -e; d={d}; d=${{d%/}}; for s in {}; do s=${{s%/}}; \
             if [ -d \"$s\" ]; then [ \"$s\" = \"$d\" ] || {{ {dir_contents}; }}; \
             elif [ \"$d/${{s##*/}}\" != \"$s\" ]; then mkdir -p \"$d\" && cp -a \"$s\" \"$d\"/{}; fi; done",
            srcs.join(" "),
            fix("\"$d/${s##*/}\"")
        )
    } else {
        format!(
            "set -e; d={d}; s={}; s=${{s%/}}; \
             if [ -d \"$s\" ]; then [ \"$s\" = \"$d\" ] || {{ {dir_contents}; }}; \
             elif [ \"$s\" = \"$d\" ] || [ \"$d/${{s##*/}}\" = \"$s\" ]; then :; \
             elif [ -d \"$d\" ]; then cp -a \"$s\" \"$d\"/{}; \
             else mkdir -p \"$(dirname \"$d\")\" && cp -a \"$s\" \"$d\"{}; fi",
            srcs[0],
            fix("\"$d/${s##*/}\""),
            fix("\"$d\"")
        )
    };
    Ok(Some(format!(
        "# (single stage: COPY --from={from} {})\nRUN {}",
        paths.join(" "),
        serde_json::to_string(&["/bin/sh", "-c", &script]).unwrap_or_default()
    )))
}

/// `text` as one single-quoted shell word.
fn sh_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
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

    /// Field case F3 with both builders' spellings: one COPY grew by 5000 bytes; imagegrid's
    /// per-build labels and the classic COPY content hash change every build.
    #[test]
    fn layer_identity_ignores_what_changes_every_build() {
        let classic = |round: u32, hash: &str, copy: i64| {
            vec![
                layer(0, &format!("/bin/sh -c #(nop)  LABEL imagegrid.build=\"{round}\" imagegrid.cell=\"acc/opam/amd64\" imagegrid.inputs=\"in{round}\"")),
                layer(copy, &format!("/bin/sh -c #(nop) COPY file:{hash} in /Dockerfile.acc ")),
                layer(1048576, "/bin/sh -c head -c 1048576 /dev/zero > /payload.bin"),
                layer(0, &format!("/bin/sh -c #(nop)  LABEL imagegrid.cell=\"acc/opam/amd64\" imagegrid.inputs=\"in{round}\"")),
                layer(0, "/bin/sh -c #(nop)  CMD [\"sh\"]"),
                layer(2000, "/bin/sh -c #(nop) ADD file:0123abcd in / "),
            ]
        };
        let buildkit = |copy: i64| {
            vec![
                layer(copy, "COPY Dockerfile /Dockerfile.acc # buildkit"),
                layer(
                    1048576,
                    "RUN /bin/sh -c head -c 1048576 /dev/zero > /payload.bin # buildkit",
                ),
                layer(0, "CMD [\"sh\"]"),
                layer(2000, "/bin/sh -c #(nop) ADD file:0123abcd in / "),
            ]
        };
        let check = |d: Vec<LayerChange>| {
            let grown: Vec<&LayerChange> = d.iter().filter(|c| c.change == Change::Grown).collect();
            assert_eq!(grown.len(), 1, "{d:#?}");
            assert!(grown[0].instruction.ends_with("/Dockerfile.acc"), "{d:#?}");
            assert_eq!(grown[0].delta(), 5000);
            assert!(
                d.iter()
                    .all(|c| matches!(c.change, Change::Grown | Change::Same)),
                "{d:#?}"
            );
        };
        let c1 = classic(1, "5f1e0c9a", 400);
        let c2 = classic(2, "77aa01bc", 5400);
        check(layer_diff(&c1, &c2));
        check(layer_diff(&buildkit(400), &buildkit(5400)));
        // Across builders (the history of a cell switched to BuildKit): the steps still match;
        // only classic's LABEL steps, which BuildKit does not make, are removed.
        let d = layer_diff(&c1, &buildkit(5400));
        assert_eq!(
            d.iter().filter(|c| c.change == Change::Grown).count(),
            1,
            "{d:#?}"
        );
        assert!(
            d.iter()
                .filter(|c| c.change == Change::Removed)
                .all(|c| c.instruction.starts_with("LABEL imagegrid.")),
            "{d:#?}"
        );
        // Shrunk the other way round.
        let back = layer_diff(&c2, &c1);
        assert_eq!(
            back.iter().filter(|c| c.change == Change::Shrunk).count(),
            1
        );
    }

    #[test]
    fn layer_keys() {
        for (a, b) in [
            // Both builders' RUN, with and without build args.
            ("/bin/sh -c make", "RUN /bin/sh -c make # buildkit"),
            (
                "|2 V=1 W=x /bin/sh -c make",
                "RUN |2 V=2 W=y /bin/sh -c make # buildkit",
            ),
            // Content hashes of files, directories and several sources; flags; JSON form.
            (
                "/bin/sh -c #(nop) COPY file:abc123 in /usr/bin/opam ",
                "COPY /usr/bin/opam /usr/bin/opam # buildkit",
            ),
            (
                "/bin/sh -c #(nop) COPY dir:abc123 in /usr/src ",
                "COPY --chown=1000:1000 src/ /usr/src/ # buildkit",
            ),
            (
                "/bin/sh -c #(nop) COPY multi:abc123 in /opt/ ",
                "COPY [\"a\", \"b\", \"/opt/\"] # buildkit",
            ),
            (
                "/bin/sh -c #(nop) ADD dir:0badf00d in /srv ",
                "ADD --link ctx /srv # buildkit",
            ),
            (
                "LABEL imagegrid.build=\"3\" imagegrid.cell=\"a/b/c\"",
                "LABEL imagegrid.build=\"4\" imagegrid.cell=\"a/b/c\"",
            ),
        ] {
            assert_eq!(layer_key(a), layer_key(b), "{a} / {b}");
        }
        for (a, b) in [
            ("/bin/sh -c make", "/bin/sh -c make install"),
            (
                "/bin/sh -c #(nop) COPY file:abc in /a ",
                "/bin/sh -c #(nop) COPY file:abc in /b ",
            ),
            (
                "/bin/sh -c #(nop) COPY file:abc in /a ",
                "/bin/sh -c #(nop) ADD file:abc in /a ",
            ),
            ("LABEL maintainer=\"x\"", "LABEL maintainer=\"y\""),
        ] {
            assert_ne!(layer_key(a), layer_key(b), "{a} / {b}");
        }
        assert_eq!(instruction("|1 V=1 /bin/sh -c make"), "RUN |1 V=1 make");
        assert_eq!(instruction("RUN /bin/sh -c make # buildkit"), "RUN make");
    }

    /// Same instruction, same size, new content (a timestamp, a rebuilt binary of equal size).
    #[test]
    fn layers_with_other_digests_are_not_the_same() {
        let before = vec![
            layer(29, "RUN date > /stamp # buildkit"),
            layer(10, "RUN a # buildkit"),
        ];
        let after = before.clone();
        let d = |x: &[&str], y: &[&str]| {
            let x: Vec<Option<String>> = x.iter().map(|s| Some(s.to_string())).collect();
            let y: Vec<Option<String>> = y.iter().map(|s| Some(s.to_string())).collect();
            layer_diff_with_digests(&before, &after, &x, &y)
                .iter()
                .map(|c| c.change)
                .collect::<Vec<_>>()
        };
        use Change::*;
        assert_eq!(
            d(&["sha256:1", "sha256:a"], &["sha256:2", "sha256:a"]),
            [Same, Removed, Added]
        );
        assert_eq!(
            d(&["sha256:1", "sha256:a"], &["sha256:1", "sha256:a"]),
            [Same, Same]
        );
        // Unknown on one side: sizes decide.
        assert_eq!(d(&[], &["sha256:2", "sha256:a"]), [Same, Same]);
    }

    #[test]
    fn history_entries_get_their_layer_digests_when_unambiguous() {
        // Newest first; diff ids oldest first.
        let h = vec![
            layer(0, "CMD [\"sh\"]"),
            layer(0, "RUN /bin/sh -c mkdir /x # buildkit"),
            layer(5, "COPY a /a # buildkit"),
            layer(0, "ENV A=b"),
            layer(100, "/bin/sh -c #(nop) ADD file:00 in / "),
        ];
        let ids = |n: usize| (0..n).map(|i| format!("sha256:{i}")).collect::<Vec<_>>();
        // Three layers: base, COPY and the 0-byte RUN (config-only steps make none).
        assert_eq!(
            history_digests(&h, &ids(3)),
            [
                None,
                Some("sha256:2".into()),
                Some("sha256:1".into()),
                None,
                Some("sha256:0".into())
            ]
        );
        // Two layers: only the entries with bytes.
        assert_eq!(
            history_digests(&h, &ids(2)),
            [
                None,
                None,
                Some("sha256:1".into()),
                None,
                Some("sha256:0".into())
            ]
        );
        // Four: no reading fits, nothing is claimed.
        assert_eq!(history_digests(&h, &ids(4)), vec![None; 5]);
    }

    #[test]
    fn single_stage_rewrite() {
        let df = "FROM alpine AS opam-builder\nRUN make\nFROM alpine\nCOPY --from=opam-builder /opam-bin/ /usr/bin/\nCOPY --from=opam-builder /out/x /usr/local/bin/x\nRUN true\n";
        let s = single_stage(df).unwrap();
        assert_eq!(s.lines().filter(|l| l.starts_with("FROM")).count(), 1);
        assert!(!s.lines().any(|l| l.starts_with("COPY")), "{s}");
        assert_eq!(s.matches("RUN [\"/bin/sh\",\"-c\",").count(), 2, "{s}");
        assert!(single_stage("FROM x\n").is_err());
        // A COPY from an image, not a stage, stays.
        let s = single_stage(
            "FROM a AS b\nFROM c\nCOPY --from=busybox:1 /bin/sh /x\nCOPY --from=2 /a /b\n",
        )
        .unwrap();
        assert!(
            s.contains("COPY --from=busybox:1 /bin/sh /x\nCOPY --from=2 /a /b\n"),
            "{s}"
        );
    }

    /// The rewritten copies of each shape of COPY --from, run for real with /bin/sh in a
    /// scratch directory standing for the one filesystem.
    #[test]
    fn single_stage_copies_do_what_copy_does() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().display().to_string();
        let w = |p: &str, text: &str| {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // What the builder stage left.
        w("opt/tool/bin/tool", "tool");
        w("opt/tool/junk", "junk");
        w("out/a", "a");
        w("out/b", "b");
        w("out/sub/c", "c");
        w("out/.hidden", "h");
        w("lib/x.so", "x");
        w("lib/y.so", "y");
        w("lib/z.a", "z");
        std::fs::create_dir_all(t.path().join("existing-dir")).unwrap();
        let df = format!(
            "FROM base AS Builder\nRUN make\nFROM base AS second\nRUN true\nfrom base\nUSER opam\n\
             COPY --from=builder {r}/opt/tool/bin/tool {r}/opt/tool/bin/tool\n\
             COPY --from=0 {r}/opt/tool/bin/tool {r}/opt/tool/bin/\n\
             COPY --from=Builder {r}/opt/tool/ {r}/opt/tool/\n\
             COPY --link --from=builder {r}/out/ {r}/copy1/\n\
             COPY --from=builder {r}/out {r}/copy2\n\
             COPY --from=builder {r}/out/a {r}/out/b {r}/several\n\
             COPY --from=builder \\\n    {r}/out/a \\\n    {r}/renamed-a\n\
             COPY --from=1 [\"{r}/out/sub/c\", \"{r}/json dir/\"]\n\
             COPY --from=builder {r}/lib/*.so {r}/libs/\n\
             COPY --from=builder {r}/out/a {r}/existing-dir\n\
             COPY --chmod=600 --from=builder {r}/out/b {r}/private-b\n"
        );
        let s = single_stage(&df).unwrap();
        assert_eq!(
            s.lines()
                .filter(|l| l.to_ascii_lowercase().starts_with("from"))
                .count(),
            1,
            "{s}"
        );
        // The copy runs as root, and the stage's user comes back after it.
        assert!(
            s.contains("USER 0:0\n# (single stage: COPY --from=builder"),
            "{s}"
        );
        assert!(s.trim_end().ends_with("USER opam"), "{s}");
        for line in s.lines() {
            let Some(json) = line.strip_prefix("RUN [") else {
                continue;
            };
            let argv: Vec<String> = serde_json::from_str(&format!("[{json}")).unwrap();
            let o = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{}\n{}",
                argv[2],
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let read = |p: &str| {
            std::fs::read_to_string(t.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        assert_eq!(read("opt/tool/bin/tool"), "tool");
        for d in ["copy1", "copy2"] {
            // A directory's contents, hidden files included, not the directory itself.
            assert_eq!(read(&format!("{d}/a")), "a");
            assert_eq!(read(&format!("{d}/sub/c")), "c");
            assert_eq!(read(&format!("{d}/.hidden")), "h");
            assert!(!t.path().join(d).join("out").exists());
        }
        assert_eq!(
            (read("several/a"), read("several/b")),
            ("a".into(), "b".into())
        );
        assert_eq!(read("renamed-a"), "a");
        assert_eq!(read("json dir/c"), "c");
        assert_eq!(
            (read("libs/x.so"), read("libs/y.so")),
            ("x".into(), "y".into())
        );
        assert!(!t.path().join("libs/z.a").exists());
        assert_eq!(read("existing-dir/a"), "a");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("private-b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            single_stage("FROM a AS b\nFROM c\nCOPY --from=b --exclude=x /a /b\n")
                .unwrap_err()
                .0
                .contains("--exclude")
        );
    }
}
