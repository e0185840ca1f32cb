//! Failure summaries: from a failed build's log, the failing step and the few lines that explain it.

use crate::logs::strip_sgr;
use crate::model::failure::Failure;

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

/// The failure line of a failed build: its [`failure_record`] read as exit code and the
/// line that explains it, then the step, then the command once, shortened
/// ([`crate::model::failure_line::failure_line`]; no failure rule's cause here).
pub fn failure_summary(step: Option<&str>, tail: &[String], error: &str) -> String {
    crate::model::failure_line::failure_line(None, &failure_record(step, tail, error))
}

/// The failure as one record: exit code, the line that explains it (the first of the lines
/// the summary shows: later ones are usually its consequences, `make: *** Error 1`), the
/// failing step and its command.
pub fn failure_record(step: Option<&str>, tail: &[String], error: &str) -> Failure {
    let error = strip_sgr(error);
    let step = step.map(|s| strip_sgr(s).trim().to_string());
    let command = step.as_deref().map(|s| {
        // `[builder 2/2] RUN make` -> `make`; `RUN make` -> `make`.
        let s = match s.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map(|(_, r)| r).unwrap_or(s),
            None => s,
        };
        let s = s
            .split_once(' ')
            .filter(|(kw, _)| kw.chars().all(|c| c.is_ascii_uppercase()))
            .map(|(_, r)| r)
            .unwrap_or(s);
        crate::util::text::truncate(s.trim(), 200)
    });
    // The step's own header line (`#7 [builder 2/2] RUN ...`, `Step 3/4 : RUN ...`) names the
    // command, whose text may hold an error word: it is not the reason.
    let is_step_line = |l: &str| step.as_deref().is_some_and(|s| l.contains(s));
    // Lines the summary leaves out because the error message quotes them (the command's own
    // text) may still be the reason here: the step header is what is skipped.
    let candidates: Vec<String> = tail
        .iter()
        .map(|l| strip_sgr(l))
        .map(|l| strip_vertex_prefix(&l).trim().to_string())
        .filter(|l| !l.is_empty() && !is_noise(l) && is_error_line(l) && !is_step_line(l))
        .filter(|l| !error.trim().ends_with(l.as_str()))
        .collect();
    let start = candidates.len().saturating_sub(3);
    let reason = candidates[start..]
        .first()
        .cloned()
        .or_else(|| Some(error.trim().to_string()).filter(|e| !e.is_empty()));
    Failure {
        exit_code: exit_code(&error),
        reason,
        step,
        command,
    }
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
        assert_eq!(s, "exit code 2: gcc: error: foo.c: No such file · RUN make");
    }

    #[test]
    fn failure_records_lead_with_the_reason() {
        let tail = vec![
            "#7 [builder 2/2] RUN echo configure && exit 3".to_string(),
            "#7 configure: checking for caml/mlvalues.h".to_string(),
            "#7 error: caml/mlvalues.h: No such file or directory".to_string(),
            "#9 CANCELED".to_string(),
        ];
        let f = failure_record(
            Some("[builder 2/2] RUN echo configure && exit 3"),
            &tail,
            "process \"/bin/sh -c echo configure && exit 3\" did not complete successfully: exit code: 3",
        );
        assert_eq!(f.exit_code, Some(3));
        assert_eq!(
            f.reason.as_deref(),
            Some("error: caml/mlvalues.h: No such file or directory")
        );
        assert_eq!(
            f.step.as_deref(),
            Some("[builder 2/2] RUN echo configure && exit 3")
        );
        assert_eq!(f.command.as_deref(), Some("echo configure && exit 3"));
        let classic = failure_record(
            Some("RUN make"),
            &[
                "gcc: error: foo.c: No such file".to_string(),
                "make: *** [all] Error 1".to_string(),
            ],
            "The command '/bin/sh -c make' returned a non-zero code: 2",
        );
        assert_eq!(classic.exit_code, Some(2));
        assert_eq!(
            classic.reason.as_deref(),
            Some("gcc: error: foo.c: No such file")
        );
        assert_eq!(classic.command.as_deref(), Some("make"));
        // A failure with no step and no log: the error is the reason.
        let bare = failure_record(None, &[], "engine a lost during build");
        assert_eq!(bare.reason.as_deref(), Some("engine a lost during build"));
        assert_eq!(
            (bare.step, bare.command, bare.exit_code),
            (None, None, None)
        );
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
