//! `imagegrid failures` (failed cells grouped by cause) and `imagegrid rules` (list the failure
//! rules; test rules over the stored failed logs before trusting them).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::report::{in_selection, open_store};
use super::Exit;
use crate::causes::{Matcher, Rule, RuleSet};
use crate::config::LoadedConfig;
use crate::matrix::Matrix;
use crate::model::cause::{Cause, UNCLASSIFIED};
use crate::store::{BuildRecord, Store};

/// `imagegrid rules ...`
#[derive(Debug, clap::Subcommand)]
pub enum RulesCmd {
    /// Every failure rule in the order tried: the config's, then the built-in ones.
    #[command(after_help = "Example:\n  imagegrid rules list")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run rules over the stored logs of failed builds (each selected cell's newest build):
    /// what each rule matches, what it newly classifies, what it takes from another rule.
    #[command(
        after_help = "Without --rules, the config's rules are compared with the causes stored when the builds failed.\nExit status: 0, or 2 for a bad rules file or config.\nExamples:\n  imagegrid rules test\n  imagegrid rules test --rules new-rules.toml 'debian-*/*/*'"
    )]
    Test(RulesTestArgs),
}

/// `imagegrid rules test` options.
#[derive(Debug, clap::Args)]
pub struct RulesTestArgs {
    /// A file of `[[failure_rule]]` tables to try on top of the config's (same keys; a rule of
    /// an existing name replaces it).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Selectors (cell ids or globs); default every cell.
    pub selectors: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// One failed build as `failures` shows it.
#[derive(Debug, Serialize)]
struct FailedCell {
    cell: String,
    build: i64,
    engine: String,
    /// The record's reason line, else the one-line summary.
    reason: Option<String>,
    step: Option<String>,
    exit_code: Option<i64>,
}

/// One cause and its cells.
#[derive(Debug, Serialize)]
struct Group {
    cause: String,
    hint: String,
    cells: Vec<FailedCell>,
}

/// A history row's cause: the stored one, else (a build from before causes were stored, or
/// one interrupted) what the rules say of its failure text now.
fn cause_of(rules: &RuleSet, r: &BuildRecord) -> Cause {
    r.cause
        .clone()
        .unwrap_or_else(|| rules.classify([], r.failure.as_deref(), r.failure_record.as_ref()))
}

/// Each selected cell's newest build, when it failed, oldest first.
fn latest_failed(
    store: &Store,
    m: &Matrix,
    selectors: &[String],
) -> Result<Vec<BuildRecord>, Exit> {
    let sels = m.parse_selectors(selectors)?;
    let mut rows: Vec<BuildRecord> = store
        .latest_per_cell()?
        .into_values()
        .filter(|r| r.status.is_failed() && in_selection(m, &sels, &r.cell))
        .collect();
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// `imagegrid failures [SELECTOR] [--json]`.
pub fn failures(
    loaded: &LoadedConfig,
    m: &Matrix,
    selectors: &[String],
    json: bool,
) -> Result<u8, Exit> {
    let rules = RuleSet::from_config(loaded).map_err(|e| Exit::error(e.to_string()))?;
    let store = open_store(loaded)?;
    let rows = latest_failed(&store, m, selectors)?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for r in &rows {
        let cause = cause_of(&rules, r);
        let g = groups.entry(cause.name.clone()).or_insert_with(|| Group {
            cause: cause.name.clone(),
            hint: cause.hint.clone(),
            cells: vec![],
        });
        let rec = r.failure_record.clone().unwrap_or_default();
        g.cells.push(FailedCell {
            cell: r.cell.clone(),
            build: r.id,
            engine: r.engine.clone(),
            reason: rec.reason.or_else(|| r.failure.clone()),
            step: rec.step,
            exit_code: rec.exit_code,
        });
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    // The largest first; unclassified last whatever its size (it is not one reason).
    groups.sort_by_key(|g| (g.cause == UNCLASSIFIED, std::cmp::Reverse(g.cells.len())));
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &groups)?;
        writeln!(out)?;
        return Ok(0);
    }
    if groups.is_empty() {
        writeln!(out, "no failed cells")?;
        return Ok(0);
    }
    writeln!(out, "{} failed cells, {} causes", rows.len(), groups.len())?;
    let w = rows.iter().map(|r| r.cell.len()).max().unwrap_or(10);
    for g in &groups {
        writeln!(out)?;
        writeln!(
            out,
            "{}  {} cell{}{}",
            g.cause,
            g.cells.len(),
            if g.cells.len() == 1 { "" } else { "s" },
            if g.hint.is_empty() {
                String::new()
            } else {
                format!(": {}", g.hint)
            }
        )?;
        for c in &g.cells {
            writeln!(
                out,
                "  {:w$}  build {:<5} {}",
                c.cell,
                c.build,
                crate::util::text::truncate(c.reason.as_deref().unwrap_or(""), 120)
            )?;
        }
    }
    Ok(0)
}

/// `imagegrid rules list`.
pub fn list(loaded: &LoadedConfig, json: bool) -> Result<u8, Exit> {
    let rules = RuleSet::from_config(loaded).map_err(|e| Exit::error(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    if json {
        let v: Vec<serde_json::Value> = rules
            .rules()
            .iter()
            .map(|r| {
                serde_json::json!({"name": r.name, "priority": r.priority, "origin": r.origin.to_string(), "pattern": r.pattern, "hint": r.hint})
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(out, "{:16} {:>5}  {:24} HINT", "RULE", "PRIO", "ORIGIN")?;
    for r in rules.rules() {
        writeln!(
            out,
            "{:16} {:>5}  {:24} {}",
            r.name,
            r.priority,
            r.origin.short(),
            r.hint
        )?;
    }
    Ok(0)
}

/// What one rule does over the tested builds.
#[derive(Debug, Default, Serialize)]
struct RuleReport {
    rule: String,
    origin: String,
    priority: i64,
    /// Builds whose log or record the pattern matches (whether or not it wins).
    matches: usize,
    /// Builds it names the cause of (the first matching rule).
    classifies: usize,
    /// Of those, builds that were unclassified before.
    new: Vec<String>,
    /// Of those, builds another cause had before: (cell, that cause).
    stolen: Vec<(String, String)>,
}

/// The test's outcome.
#[derive(Debug, Serialize)]
struct TestReport {
    builds: usize,
    /// What the "before" causes are: `stored` (as recorded when the builds failed) or
    /// `config` (the config's rules, when a rules file is tried on top).
    before: &'static str,
    rules: Vec<RuleReport>,
    /// Builds no rule matches.
    unclassified: Vec<String>,
}

/// Feed a stored build's log and failure to a matcher, line by line (a log is never read
/// into memory whole).
fn feed(
    sets: &[&RuleSet],
    matchers: &mut [Matcher],
    store: &Store,
    r: &BuildRecord,
) -> Result<(), Exit> {
    let path = store.log_path(r.id);
    if let Ok(f) = std::fs::File::open(&path) {
        let mut reader = std::io::BufReader::new(f);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| Exit::error(format!("{}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches('\n');
            for (set, m) in sets.iter().zip(matchers.iter_mut()) {
                m.line(set, line);
            }
        }
    }
    for (set, m) in sets.iter().zip(matchers.iter_mut()) {
        m.record(set, r.failure.as_deref(), r.failure_record.as_ref());
    }
    Ok(())
}

/// `imagegrid rules test [--rules FILE] [SELECTOR]`.
pub fn test(loaded: &LoadedConfig, m: &Matrix, args: &RulesTestArgs) -> Result<u8, Exit> {
    let config_rules = RuleSet::from_entries(
        &loaded.source.name,
        &loaded.source.text,
        &loaded.config.failure_rules,
    );
    let before_set = RuleSet::new(config_rules.clone()).map_err(|e| Exit::error(e.to_string()))?;
    let (after_set, tried): (RuleSet, Vec<Rule>) = match &args.rules {
        None => (before_set.clone(), vec![]),
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Exit::error(format!("cannot read rules file {name}: {e}")))?;
            let entries = crate::config::rules::parse_file(&name, &text)?;
            let tried = RuleSet::from_entries(&name, &text, &entries);
            let mut user = tried.clone();
            user.extend(
                config_rules
                    .into_iter()
                    .filter(|c| !tried.iter().any(|t| t.name == c.name)),
            );
            (
                RuleSet::new(user).map_err(|e| Exit::error(e.to_string()))?,
                tried,
            )
        }
    };
    let store = open_store(loaded)?;
    let rows = latest_failed(&store, m, &args.selectors)?;
    let mut reports: Vec<RuleReport> = after_set
        .rules()
        .iter()
        .map(|r| RuleReport {
            rule: r.name.clone(),
            origin: r.origin.short(),
            priority: r.priority,
            ..Default::default()
        })
        .collect();
    let mut unclassified = vec![];
    for r in &rows {
        let mut matchers = vec![after_set.matcher(), before_set.matcher()];
        let with_before = args.rules.is_some();
        let sets: Vec<&RuleSet> = if with_before {
            vec![&after_set, &before_set]
        } else {
            matchers.truncate(1);
            vec![&after_set]
        };
        feed(&sets, &mut matchers, &store, r)?;
        let before: Option<String> = if with_before {
            Some(matchers[1].cause(&before_set).name)
        } else {
            r.cause.as_ref().map(|c| c.name.clone())
        };
        for (i, hit) in matchers[0].matched().iter().enumerate() {
            if *hit {
                reports[i].matches += 1;
            }
        }
        let label = format!("{} (build {})", r.cell, r.id);
        match matchers[0].matched().iter().position(|m| *m) {
            None => unclassified.push(label),
            Some(i) => {
                let rep = &mut reports[i];
                rep.classifies += 1;
                match before.as_deref() {
                    None | Some(UNCLASSIFIED) => rep.new.push(label),
                    Some(b) if b != rep.rule => rep.stolen.push((label, b.to_string())),
                    Some(_) => {}
                }
            }
        }
    }
    let shown: Vec<RuleReport> = reports
        .into_iter()
        .filter(|r| r.matches > 0 || tried.iter().any(|t| t.name == r.rule))
        .collect();
    let report = TestReport {
        builds: rows.len(),
        before: if args.rules.is_some() {
            "config"
        } else {
            "stored"
        },
        rules: shown,
        unclassified,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{} failed builds (each cell's newest); before = {}",
        report.builds,
        if args.rules.is_some() {
            "the config's rules without the file"
        } else {
            "the causes stored when they failed"
        }
    )?;
    writeln!(
        out,
        "{:16} {:18} {:>5} {:>8} {:>11} {:>4} {:>7}",
        "RULE", "ORIGIN", "PRIO", "MATCHES", "CLASSIFIES", "NEW", "STOLEN"
    )?;
    for r in &report.rules {
        writeln!(
            out,
            "{:16} {:18} {:>5} {:>8} {:>11} {:>4} {:>7}",
            r.rule,
            crate::util::text::truncate(&r.origin, 18),
            r.priority,
            r.matches,
            r.classifies,
            r.new.len(),
            r.stolen.len()
        )?;
    }
    for r in &report.rules {
        for c in &r.new {
            writeln!(out, "  {}: new: {c}", r.rule)?;
        }
        for (c, from) in &r.stolen {
            writeln!(out, "  {}: stolen from {from}: {c}", r.rule)?;
        }
    }
    if !report.unclassified.is_empty() {
        writeln!(out, "unclassified: {}", report.unclassified.len())?;
        for c in &report.unclassified {
            writeln!(out, "  {c}")?;
        }
    }
    Ok(0)
}
