//! A failure as one line a reader can act on: the cause first, then the command's exit code
//! and the line that explains it, then the step, then the command once, shortened. The same
//! line is the `failure` of events, of the history and of the TUI's detail pane.

use super::failure::Failure;

/// Longest command shown in a failure line, in characters (the record keeps 200).
pub const COMMAND_CHARS: usize = 60;
/// Longest explaining line shown, in characters.
pub const REASON_CHARS: usize = 240;

/// The failure line of a record. `cause` is a matched failure rule's "cause: hint" text,
/// shown first when present (None: no rule matched, nothing is printed for it).
///
/// `exit code 2: error: OCaml headers not found · step opam-builder 3/4 · RUN printf 'che…`
pub fn failure_line(cause: Option<&str>, f: &Failure) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = cause.map(str::trim).filter(|c| !c.is_empty()) {
        parts.push(c.to_string());
    }
    let reason = f
        .reason
        .as_deref()
        .map(|r| crate::util::text::truncate(r.trim(), REASON_CHARS));
    match (f.exit_code, reason) {
        (Some(code), Some(r)) => parts.push(format!("exit code {code}: {r}")),
        (Some(code), None) => parts.push(format!("exit code {code}")),
        (None, Some(r)) => parts.push(r),
        (None, None) => {}
    }
    let (label, instruction) = split_step(f.step.as_deref());
    if let Some(label) = label {
        parts.push(format!("step {label}"));
    }
    let keyword = instruction
        .and_then(|s| s.split_once(' ').map(|(k, _)| k).or(Some(s)))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase()));
    match (&f.command, keyword) {
        (Some(cmd), Some(kw)) => parts.push(format!(
            "{kw} {}",
            crate::util::text::truncate(cmd, COMMAND_CHARS)
        )),
        (Some(cmd), None) => parts.push(crate::util::text::truncate(cmd, COMMAND_CHARS)),
        (None, Some(_)) => {
            parts.extend(instruction.map(|i| crate::util::text::truncate(i, COMMAND_CHARS + 5)))
        }
        (None, None) => {}
    }
    parts.join(" · ")
}

/// `[builder 2/2] RUN make` -> (`builder 2/2`, `RUN make`); `RUN make` -> (None, `RUN make`).
fn split_step(step: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some(s) = step.map(str::trim) else {
        return (None, None);
    };
    match s.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((label, rest)) => (Some(label), Some(rest.trim())),
        None => (None, Some(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(code: Option<i64>, reason: &str, step: Option<&str>, cmd: Option<&str>) -> Failure {
        Failure {
            exit_code: code,
            reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
            step: step.map(str::to_string),
            command: cmd.map(str::to_string),
        }
    }

    #[test]
    fn reason_first_then_step_then_the_command_once() {
        let long = "printf 'checking for caml/mlvalues.h... \\033[31mno\\033[0m' && exit 2 # and a long tail of text";
        let f = rec(
            Some(2),
            "error: OCaml headers not found",
            Some(&format!("[opam-builder 3/4] RUN {long}")),
            Some(long),
        );
        let line = failure_line(None, &f);
        assert!(
            line.starts_with(
                "exit code 2: error: OCaml headers not found · step opam-builder 3/4 · RUN printf"
            ),
            "{line}"
        );
        assert_eq!(line.matches("printf").count(), 1, "{line}");
        assert!(line.chars().count() < 160, "{line}");
        assert!(line.ends_with('…'), "{line}");
        // The cause slot leads when a rule matched.
        let with = failure_line(Some("no C compiler: install gcc"), &f);
        assert!(
            with.starts_with("no C compiler: install gcc · exit code 2:"),
            "{with}"
        );
    }

    #[test]
    fn classic_step_and_bare_errors() {
        let f = rec(
            Some(2),
            "gcc: error: foo.c: No such file",
            Some("RUN make"),
            Some("make"),
        );
        assert_eq!(
            failure_line(None, &f),
            "exit code 2: gcc: error: foo.c: No such file · RUN make"
        );
        let bare = rec(None, "engine a lost during build", None, None);
        assert_eq!(failure_line(None, &bare), "engine a lost during build");
        let cause_only = rec(None, "", None, None);
        assert_eq!(failure_line(Some("  "), &cause_only), "");
    }
}
