//! Failure summaries: from a failed build's log, the failing step and the few lines that explain it.

use crate::logs::strip_sgr;

/// How many recent lines a build keeps for its summary.
pub const TAIL_LINES: usize = 40;

/// Words that mark a line as explaining a failure.
const ERROR_WORDS: [&str; 8] = [
    "error",
    "failed",
    "fatal",
    "cannot",
    "not found",
    "no such",
    "unable",
    "denied",
];

/// Does a (plain) log line report an error? The one rule behind failure summaries and the
/// TUI's jump to the first error.
pub fn is_error_line(line: &str) -> bool {
    let low = line.to_lowercase();
    ERROR_WORDS.iter().any(|w| low.contains(w))
}

/// A one-paragraph summary: the step that failed, the exit code, and the last lines that look like errors.
pub fn failure_summary(step: Option<&str>, tail: &[String], error: &str) -> String {
    let error = strip_sgr(error);
    let mut parts = Vec::new();
    if let Some(s) = step {
        parts.push(format!("step `{}`", strip_sgr(s)));
    }
    if let Some(code) = exit_code(&error) {
        parts.push(format!("exit code {code}"));
    }
    let plain: Vec<String> = tail
        .iter()
        .map(|l| strip_sgr(l))
        .map(|l| strip_vertex_prefix(&l).trim().to_string())
        .filter(|l| !l.is_empty() && !is_noise(l))
        .collect();
    let mut explaining: Vec<&String> = plain
        .iter()
        .filter(|l| is_error_line(l) && !error.contains(l.as_str()))
        .collect();
    if explaining.is_empty() {
        explaining = plain
            .iter()
            .filter(|l| !error.contains(l.as_str()))
            .collect();
    }
    let start = explaining.len().saturating_sub(3);
    let lines: Vec<&str> = explaining[start..].iter().map(|s| s.as_str()).collect();
    let mut out = String::new();
    if !parts.is_empty() {
        out.push_str(&parts.join(", "));
        out.push_str(": ");
    }
    out.push_str(error.trim());
    if !lines.is_empty() {
        out.push_str(" | ");
        out.push_str(&lines.join(" | "));
    }
    out
}

/// `#12 some output` -> `some output` (BuildKit vertex numbers).
fn strip_vertex_prefix(l: &str) -> &str {
    if let Some(rest) = l.strip_prefix('#') {
        if let Some((num, text)) = rest.split_once(' ') {
            if num.chars().all(|c| c.is_ascii_digit()) {
                return text;
            }
        }
    }
    l
}

fn is_noise(l: &str) -> bool {
    l.starts_with("---> ")
        || l.starts_with("Removing intermediate container")
        || l == "DONE"
        || l == "CACHED"
        || l.starts_with("ERROR: ")
}

/// The exit code named in a Docker error message, if any.
pub fn exit_code(error: &str) -> Option<i64> {
    for marker in ["non-zero code: ", "exit code: "] {
        if let Some(i) = error.find(marker) {
            let digits: String = error[i + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_failure() {
        let tail = vec![
            "Step 3/4 : RUN make".to_string(),
            " ---> Running in abc".to_string(),
            "gcc: error: foo.c: No such file".to_string(),
            "make: *** [all] Error 1".to_string(),
        ];
        let s = failure_summary(
            Some("RUN make"),
            &tail,
            "The command '/bin/sh -c make' returned a non-zero code: 2",
        );
        assert!(
            s.starts_with("step `RUN make`, exit code 2: The command"),
            "{s}"
        );
        assert!(s.contains("gcc: error: foo.c"), "{s}");
        assert!(s.contains("Error 1"), "{s}");
    }

    #[test]
    fn buildkit_exit_code() {
        assert_eq!(
            exit_code("executor failed running [/bin/sh -c exit 3]: exit code: 3"),
            Some(3)
        );
        assert_eq!(exit_code("nothing"), None);
    }
}
