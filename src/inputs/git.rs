//! The system `git`, run as a child process: the user's credentials, proxy, `insteadOf` and
//! ssh settings apply as they do to their own git commands. Never prompts
//! (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode): an input that needs a password it does not
//! have fails with git's own message instead of hanging a run.

use std::path::Path;
use std::process::{Command, Stdio};

/// Run `git ARGS` (in `dir` if given); its stdout, or the last lines of its stderr.
pub fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", ssh_command())
        .stdin(Stdio::null());
    let out = cmd.output().map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(2)..].join(" / ");
    Err(if tail.is_empty() {
        format!(
            "git {} exited with {}",
            args.first().unwrap_or(&""),
            out.status
        )
    } else {
        tail
    })
}

/// The user's ssh command (`GIT_SSH_COMMAND`, else `ssh`) in batch mode.
fn ssh_command() -> String {
    let base = std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "ssh".into());
    format!("{base} -o BatchMode=yes")
}

/// `git ls-remote URL`: (ref name, commit) pairs, annotated tags peeled (`refs/tags/X`
/// names the commit when git lists `refs/tags/X^{}`).
pub fn ls_remote(url: &str) -> Result<Vec<(String, String)>, String> {
    let out = git(None, &["ls-remote", "--heads", "--tags", url])?;
    let mut refs: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        let Some((commit, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(tag) = name.strip_suffix("^{}") {
            match refs.iter_mut().find(|(n, _)| n == tag) {
                Some(r) => r.1 = commit.to_string(),
                None => refs.push((tag.to_string(), commit.to_string())),
            }
        } else if !refs.iter().any(|(n, _)| n == name) {
            refs.push((name.to_string(), commit.to_string()));
        }
    }
    Ok(refs)
}

/// A release tag's version: numbers, then a pre-release rank (alpha 0, beta 1, rc 2, the
/// release itself 3) and number. `2.5.0-beta1` and `2.5.0~beta1` are the same version.
/// Tags of no such shape are not releases: `None`.
pub fn release_version(tag: &str) -> Option<(Vec<u64>, u8, u64)> {
    let (nums, pre) = match tag.find(['-', '~']) {
        Some(i) => (&tag[..i], Some(&tag[i + 1..])),
        None => (tag, None),
    };
    let numbers: Vec<u64> = nums
        .split('.')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    if numbers.len() < 2 {
        return None;
    }
    let (rank, n) = match pre {
        None => (3, 0),
        Some(p) => {
            let (rank, rest) = [("alpha", 0), ("beta", 1), ("rc", 2)]
                .iter()
                .find_map(|(w, r)| p.strip_prefix(w).map(|rest| (*r, rest)))?;
            (
                rank,
                if rest.is_empty() {
                    0
                } else {
                    rest.parse().ok()?
                },
            )
        }
    };
    Some((numbers, rank, n))
}

/// The newest release tag among `refs` (pre-releases included) and its commit.
pub fn newest_release(refs: &[(String, String)]) -> Option<(String, String)> {
    refs.iter()
        .filter_map(|(name, commit)| {
            let tag = name.strip_prefix("refs/tags/")?;
            Some((release_version(tag)?, tag.to_string(), commit.clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, tag, commit)| (tag, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_release_counts_pre_releases_and_ignores_other_tags() {
        let refs = |tags: &[&str]| -> Vec<(String, String)> {
            tags.iter()
                .map(|t| (format!("refs/tags/{t}"), format!("c-{t}")))
                .collect()
        };
        let newest = |tags: &[&str]| newest_release(&refs(tags)).map(|(t, _)| t);
        assert_eq!(
            newest(&["2.4.1", "2.5.0-beta1", "2.3.0"]).as_deref(),
            Some("2.5.0-beta1")
        );
        assert_eq!(
            newest(&["2.5.0-beta1", "2.5.0", "2.5.0-rc2"]).as_deref(),
            Some("2.5.0")
        );
        assert_eq!(
            newest(&["2.5.0-alpha1", "2.5.0~beta1"]).as_deref(),
            Some("2.5.0~beta1")
        );
        assert_eq!(newest(&["2.10.0", "2.9.9"]).as_deref(), Some("2.10.0"));
        assert_eq!(newest(&["latest", "v3", "2.1.0-foo", "nightly-2.6"]), None);
        assert_eq!(newest(&[]), None);
    }
}
