//! `[[failure_rule]]` tables: a user's failure rules, checked where they are written.
//!
//! A rule names a cause (`name`), gives a regular expression over a failed build's log lines
//! and failure record (`pattern`), a `hint` and a `priority`. The rules themselves (with the
//! built-in ones) are applied in the `causes` layer above; here each entry is checked so that a bad
//! one is refused with `file:line:column`: a name that is empty, not a plain word or given
//! twice, a pattern that does not compile (the `regex` crate's syntax: linear-time, no
//! look-around or back-references) or compiles too big, a priority out of range.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4096;
/// Most memory one compiled pattern may take (the `regex` crate's size limit), in bytes.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Priority of a user rule that gives none: above every built-in rule (they use 10..=90).
pub const DEFAULT_USER_PRIORITY: i64 = 100;
/// Priorities allowed, both ends included.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -1000..=1000;

/// One `[[failure_rule]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRuleConfig {
    /// The cause it names: letters, digits, `-`, `_`, `.` (`gcc-15`). A built-in rule's name
    /// replaces that rule.
    pub name: Spanned<String>,
    /// Regular expression (the `regex` crate's syntax) tried on each log line of a failed
    /// build and on its failure record (summary, reason, step, `exit code: N`).
    pub pattern: Spanned<String>,
    /// What to do about it, shown next to the cause.
    #[serde(default)]
    pub hint: String,
    /// Higher is tried first; a user rule goes before a built-in one of equal priority.
    #[serde(default = "default_priority")]
    pub priority: Spanned<i64>,
}

fn default_priority() -> Spanned<i64> {
    Spanned::new(0..0, DEFAULT_USER_PRIORITY)
}

/// Compile a rule's pattern as the rules do (size-limited): the error as a message.
pub fn compile(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "pattern is {} bytes, longer than {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    if pattern.is_empty() {
        return Err("pattern is empty (it would match every build)".into());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            // The crate's message draws the pattern with a caret over several lines: keep its
            // last line (what is wrong), the place is in the error's position already.
            let what = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("does not compile")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            format!("pattern does not compile: {what}")
        })
}

/// Check every rule: each error points at the value at fault.
pub fn check(source: &Source, rules: &[FailureRuleConfig]) -> Result<(), ConfigError> {
    let mut seen: Vec<&Spanned<String>> = Vec::new();
    for r in rules {
        let name = r.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(source.error_at(
                r.name.span(),
                format!("rule name \"{name}\" must be a word of letters, digits, `-`, `_`, `.`"),
            ));
        }
        if name == crate::model::cause::UNCLASSIFIED {
            return Err(source.error_at(
                r.name.span(),
                "\"unclassified\" is what a failure no rule matches is called; name the rule otherwise",
            ));
        }
        if let Some(first) = seen.iter().find(|n| n.get_ref() == name) {
            let line = super::SourceLocation::of(&source.text, first.span().start).line;
            return Err(source.error_at(
                r.name.span(),
                format!("rule \"{name}\" is defined twice (first at line {line})"),
            ));
        }
        seen.push(&r.name);
        if let Err(msg) = compile(r.pattern.get_ref()) {
            return Err(source.error_at(r.pattern.span(), msg));
        }
        if !PRIORITY_RANGE.contains(r.priority.get_ref()) {
            return Err(source.error_at(
                r.priority.span(),
                format!(
                    "priority {} is out of range ({}..={})",
                    r.priority.get_ref(),
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end()
                ),
            ));
        }
    }
    Ok(())
}

/// A file of `[[failure_rule]]` tables and nothing else (`imagegrid rules test --rules FILE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    failure_rule: Vec<FailureRuleConfig>,
}

/// Parse and check a rules file's text; `name` is used in error messages.
pub fn parse_file(name: &str, text: &str) -> Result<Vec<FailureRuleConfig>, ConfigError> {
    let source = Source {
        name: name.to_string(),
        text: text.to_string(),
    };
    let file: RulesFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        source.error_at(span, e.message().trim().replace('\n', " "))
    })?;
    check(&source, &file.failure_rule)?;
    Ok(file.failure_rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rules_are_refused_where_they_are() {
        let text = "[[failure_rule]]\nname = \"ok\"\npattern = \"fine\"\n\n[[failure_rule]]\nname = \"bad\"\npattern = \"gcc (15\"\n";
        let e = crate::config::parse("c.toml", text).unwrap_err();
        assert_eq!((e.line, e.column), (7, 11), "{e}");
        assert_eq!(e.key, "failure_rule[1].pattern", "{e}");
        assert!(
            e.to_string()
                .starts_with("c.toml:7:11: failure_rule[1].pattern: pattern does not compile"),
            "{e}"
        );
        let dup = "[[failure_rule]]\nname = \"x\"\npattern = \"a\"\n[[failure_rule]]\nname = \"x\"\npattern = \"b\"\n";
        let e = crate::config::parse("c.toml", dup).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("defined twice (first at line 2)"), "{e}");
        let e = crate::config::parse(
            "c.toml",
            "[[failure_rule]]\nname = \"has space\"\npattern = \"a\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "failure_rule[0].name"), "{e}");
        let e = crate::config::parse(
            "c.toml",
            "[[failure_rule]]\nname = \"p\"\npattern = \"a\"\npriority = 5000\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = crate::config::parse(
            "c.toml",
            "[[failure_rule]]\nname = \"p\"\npattern = \"a\"\ncolour = 1\n",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let e =
            parse_file("r.toml", "[[failure_rule]]\nname = \"p\"\npattern = \"\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.toml:3:11: failure_rule[0].pattern: pattern is empty (it would match every build)"
        );
    }
}
