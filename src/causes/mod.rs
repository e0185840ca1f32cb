//! Failure causes: rules that turn a failed build's log and failure record into a short
//! cause (`gcc-15`, `no-manifest`) with a hint, so that many red cells read as one reason.
//!
//! A [`RuleSet`] is the built-in rules ([`builtin`]) plus the config's `[[failure_rule]]`
//! entries. Order: priority, highest first; at equal priority a user rule before a built-in
//! one, then the order written; the first rule that matches names the cause. A user rule
//! with a built-in rule's name replaces it.
//!
//! Matching is on the way in: a [`Matcher`] takes each sanitised log line as the build prints
//! it (SGR colour removed) and remembers which rules matched, one flag per rule, so memory does
//! not grow with the log; at the end the failure record's lines (`exit code: N`, reason, step,
//! the failure summary) go through it too. All patterns run at once as one `regex::RegexSet`:
//! linear in the line's length whatever the pattern (no backtracking), and a line is at most
//! the log sanitiser's cap ([`crate::logs::DEFAULT_MAX_LINE_BYTES`] plus its marker).

pub mod builtin;

use crate::config::{FailureRuleConfig, LoadedConfig};
use crate::model::cause::Cause;
use crate::model::failure::Failure;

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with imagegrid.
    BuiltIn,
    /// A `[[failure_rule]]` of a file (the config, or `rules test --rules FILE`), at a line.
    File { file: String, line: usize },
}

impl Origin {
    /// `built-in`, or the file's name (without its directory) and line.
    pub fn short(&self) -> String {
        match self {
            Origin::BuiltIn => "built-in".into(),
            Origin::File { file, line } => {
                let name = std::path::Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| file.clone());
                format!("{name}:{line}")
            }
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => write!(f, "built-in"),
            Origin::File { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The cause it names.
    pub name: String,
    /// Its regular expression, as written.
    pub pattern: String,
    pub hint: String,
    pub priority: i64,
    pub origin: Origin,
}

impl Rule {
    /// The cause this rule names.
    pub fn cause(&self) -> Cause {
        Cause {
            name: self.name.clone(),
            hint: self.hint.clone(),
        }
    }
}

/// Rules in the order they are tried, compiled into one set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    set: regex::RegexSet,
}

/// A rule that does not compile: its index among the rules given, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {name}: {message}")]
pub struct RuleError {
    pub name: String,
    pub message: String,
}

impl RuleSet {
    /// The built-in rules and `user` (from files), ordered: see the module doc.
    pub fn new(user: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut rules: Vec<Rule> = user;
        let users = rules.len();
        for b in builtin::rules() {
            if !rules[..users].iter().any(|u| u.name == b.name) {
                rules.push(b);
            }
        }
        // Stable: within one priority, user rules (first in the list) stay first.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        for r in &rules {
            crate::config::rules::compile(&r.pattern).map_err(|message| RuleError {
                name: r.name.clone(),
                message,
            })?;
        }
        let set =
            regex::RegexSetBuilder::new(rules.iter().map(|r| ascii_word_boundaries(&r.pattern)))
                .size_limit(crate::config::rules::PATTERN_SIZE_LIMIT * rules.len().max(1))
                // The lazy DFA's cache: at the default (2 MiB) a set of a dozen case-insensitive
                // alternations thrashes it and the crate falls back to its slower NFA engine.
                .dfa_size_limit(DFA_CACHE_BYTES)
                .build()
                .map_err(|e| RuleError {
                    name: "(all rules)".into(),
                    message: e.to_string(),
                })?;
        Ok(RuleSet { rules, set })
    }

    /// The built-in rules alone.
    pub fn builtin() -> RuleSet {
        // The built-in patterns are tested to compile (tests below).
        RuleSet::new(vec![]).expect("built-in failure rules compile")
    }

    /// Rules written in a file, as [`Rule`]s (their origin names the file and line).
    pub fn from_entries(file: &str, text: &str, entries: &[FailureRuleConfig]) -> Vec<Rule> {
        entries
            .iter()
            .map(|e| Rule {
                name: e.name.get_ref().clone(),
                pattern: e.pattern.get_ref().clone(),
                hint: e.hint.clone(),
                priority: *e.priority.get_ref(),
                origin: Origin::File {
                    file: file.to_string(),
                    line: crate::config::SourceLocation::of(text, e.name.span().start).line,
                },
            })
            .collect()
    }

    /// The config's rules with the built-in ones. The config was checked when it was
    /// loaded (`config::parse` compiles every pattern), so this fails only for a config built
    /// by hand.
    pub fn from_config(loaded: &LoadedConfig) -> Result<RuleSet, RuleError> {
        RuleSet::new(RuleSet::from_entries(
            &loaded.source.name,
            &loaded.source.text,
            &loaded.config.failure_rules,
        ))
    }

    /// Every rule, in the order tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A matcher for one build.
    pub fn matcher(&self) -> Matcher {
        Matcher {
            matched: vec![false; self.rules.len()],
        }
    }

    /// The cause of a failure from all its text at once (lines, then the record).
    pub fn classify<'a>(
        &self,
        lines: impl IntoIterator<Item = &'a str>,
        summary: Option<&str>,
        record: Option<&Failure>,
    ) -> Cause {
        let mut m = self.matcher();
        for l in lines {
            m.line(self, l);
        }
        m.record(self, summary, record);
        m.cause(self)
    }

    /// The rule that wins among `matched` (flags in this set's order), if any.
    pub fn winner(&self, matched: &[bool]) -> Option<&Rule> {
        matched
            .iter()
            .position(|m| *m)
            .and_then(|i| self.rules.get(i))
    }
}

/// `pattern` with each `\b` / `\B` (outside a character class) made the ASCII word
/// boundary `(?-u:\b)`. Why: the `regex` crate's lazy DFA cannot decide a Unicode word
/// boundary past a non-ASCII byte and hands the whole line to its NFA, some 50 times slower
/// (measured: 65,000 against 1.9 M lines/s over build output where a few lines end in `…`);
/// build logs are ASCII where it matters, so the ASCII boundary answers the same.
pub fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('b' | 'B')) if class_depth == 0 => {
                    out.push_str("(?-u:\\");
                    out.push(e);
                    out.push(')');
                }
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The lazy DFA cache the rules' `RegexSet` may use, in bytes (the `regex` crate's
/// `dfa_size_limit`; its default is 2 MiB).
const DFA_CACHE_BYTES: usize = 16 << 20;

/// Which rules one build's text has matched so far: one flag per rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    matched: Vec<bool>,
}

impl Matcher {
    /// One sanitised log line (SGR colour is removed before matching).
    pub fn line(&mut self, rules: &RuleSet, line: &str) {
        if self.matched.iter().all(|m| *m) {
            return;
        }
        let plain;
        let text = if line.contains('\x1b') {
            plain = crate::logs::strip_sgr(line);
            plain.as_str()
        } else {
            line
        };
        // Almost every line matches no rule: `is_match` answers that with one
        // non-overlapping scan, cheaper than the overlapping scan `matches` needs.
        if !rules.set.is_match(text) {
            return;
        }
        for i in rules.set.matches(text).iter() {
            self.matched[i] = true;
        }
    }

    /// The failure's own text: the summary line, and the record's `exit code: N`, reason and
    /// step, each as a line.
    pub fn record(&mut self, rules: &RuleSet, summary: Option<&str>, record: Option<&Failure>) {
        if let Some(s) = summary {
            self.line(rules, s);
        }
        if let Some(r) = record {
            if let Some(code) = r.exit_code {
                self.line(rules, &format!("exit code: {code}"));
            }
            for t in [&r.reason, &r.step].into_iter().flatten() {
                self.line(rules, t);
            }
        }
    }

    /// Flags in the rule set's order.
    pub fn matched(&self) -> &[bool] {
        &self.matched
    }

    /// The cause: the first matching rule's, else unclassified.
    pub fn cause(&self, rules: &RuleSet) -> Cause {
        rules
            .winner(&self.matched)
            .map(Rule::cause)
            .unwrap_or_else(Cause::unclassified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, pattern: &str, priority: i64) -> Rule {
        Rule {
            name: name.into(),
            pattern: pattern.into(),
            hint: format!("hint of {name}"),
            priority,
            origin: Origin::File {
                file: "c.toml".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn order_is_priority_then_user_first() {
        let set = RuleSet::new(vec![
            user("mine", "exec format error", 60),
            user("low", "anything", -5),
        ])
        .unwrap();
        let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
        let exec = set
            .rules()
            .iter()
            .find(|r| r.name == "exec-format")
            .unwrap();
        assert_eq!(exec.priority, 60, "the test needs equal priorities");
        let mine = names.iter().position(|n| *n == "mine").unwrap();
        let builtin = names.iter().position(|n| *n == "exec-format").unwrap();
        assert!(mine < builtin, "{names:?}");
        assert_eq!(names.last(), Some(&"low"));
        let c = set.classify(["exec /bin/sh: exec format error"], None, None);
        assert_eq!(c.name, "mine");
        assert_eq!(c.hint, "hint of mine");
        let c = set.classify(["nothing to see"], None, None);
        assert!(c.is_unclassified());
    }

    #[test]
    fn a_user_rule_replaces_the_builtin_of_its_name() {
        let set = RuleSet::new(vec![user("oom-killed", "my own oom marker", 1)]).unwrap();
        assert_eq!(
            set.rules()
                .iter()
                .filter(|r| r.name == "oom-killed")
                .count(),
            1
        );
        let rec = Failure {
            exit_code: Some(137),
            ..Default::default()
        };
        assert!(set.classify([], None, Some(&rec)).is_unclassified());
        assert_eq!(
            set.classify(["my own oom marker"], None, None).name,
            "oom-killed"
        );
    }

    #[test]
    fn colour_does_not_hide_a_match_and_the_record_counts() {
        let set = RuleSet::builtin();
        let c = set.classify(["\x1b[31mno space left\x1b[0m on device"], None, None);
        // SGR removed: "no space left on device".
        assert_eq!(c.name, "disk-full");
        let rec = Failure {
            exit_code: Some(137),
            reason: Some("Killed".into()),
            step: Some("RUN make -j64".into()),
            command: None,
        };
        assert_eq!(set.classify([], None, Some(&rec)).name, "oom-killed");
    }

    #[test]
    fn word_boundaries_become_ascii_outside_classes_only() {
        assert_eq!(ascii_word_boundaries(r"\bexit\B"), r"(?-u:\b)exit(?-u:\B)");
        assert_eq!(ascii_word_boundaries(r"\\b[\b]x"), r"\\b[\b]x");
        assert_eq!(ascii_word_boundaries(r"[a\]]\b"), r"[a\]](?-u:\b)");
        // A line with a non-ASCII character still matches a rule with a boundary.
        let rules = RuleSet::builtin();
        let mut m = rules.matcher();
        m.line(&rules, "Killed … exit code: 137 …");
        assert_eq!(m.cause(&rules).name, "oom-killed");
    }

    #[test]
    fn a_catastrophic_pattern_is_linear() {
        // (a+)+$ on a long run of `a`s then `!` backtracks exponentially in a backtracking
        // engine; here it is one pass. 16 KiB: the sanitiser's line cap.
        let set = RuleSet::new(vec![user("evil", "(a+)+$", 1)]).unwrap();
        let line = "a".repeat(16 * 1024) + "!";
        let mut m = set.matcher();
        m.line(&set, &line);
        assert!(m.cause(&set).is_unclassified());
    }
}
