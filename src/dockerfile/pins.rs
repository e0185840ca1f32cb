//! Pinned inputs in a recipe's text: which moving refs a text uses ([`needs`]) and the text
//! with them replaced by their commits ([`substitute`]), exactly where the live pipeline
//! puts commits: each `git checkout REF` of an opam ref (the bootstrap checkout and one per
//! branch; `master` stands for the newest release tag). Refs the pipeline leaves moving (the
//! beta repository, the patches overlay) are not `git checkout`s and stay as they are.

use crate::model::inputs::{Needs, Pins, OPAM_REFS};

const CHECKOUT: &str = "git checkout ";

/// The ref of each `git checkout REF` in `line`: (byte range of REF, REF).
fn checkouts(line: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> {
    line.match_indices(CHECKOUT).filter_map(move |(i, _)| {
        let start = i + CHECKOUT.len();
        let rest = &line[start..];
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '&' | ';' | '\\'))
            .unwrap_or(rest.len());
        (len > 0).then(|| (start..start + len, &rest[..len]))
    })
}

/// Does this instruction line copy the build context's root (`COPY . DEST`,
/// `COPY [ ".", "DEST" ]`)? Copies `--from` a stage or image do not.
fn copies_context_root(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(op) = words.next() else { return false };
    if !(op.eq_ignore_ascii_case("COPY") || op.eq_ignore_ascii_case("ADD")) {
        return false;
    }
    let rest: Vec<&str> = words.collect();
    if rest.iter().any(|w| w.starts_with("--from")) {
        return false;
    }
    let args: Vec<&str> = rest.into_iter().filter(|w| !w.starts_with("--")).collect();
    let joined = args.join(" ");
    if let Some(json) = joined.strip_prefix('[') {
        let items: Vec<&str> = json
            .trim_end_matches(']')
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .collect();
        return items.len() >= 2 && items[..items.len() - 1].contains(&".");
    }
    args.len() >= 2
        && args[..args.len() - 1]
            .iter()
            .any(|a| *a == "." || *a == "./")
}

/// The pinned inputs a recipe's text uses: the opam refs it checks out (in [`OPAM_REFS`]
/// order) and whether it copies the build context's root (the opam-repository checkout).
/// Read from the text with nothing substituted (a template rendered without pins names the
/// refs themselves).
pub fn needs(text: &str) -> Needs {
    let mut found: Vec<&str> = Vec::new();
    let mut repository = false;
    for line in text.lines() {
        for (_, r) in checkouts(line) {
            if OPAM_REFS.contains(&r) && !found.contains(&r) {
                found.push(r);
            }
        }
        repository |= copies_context_root(line.trim_start());
    }
    Needs {
        opam_refs: OPAM_REFS
            .iter()
            .filter(|r| found.contains(r))
            .map(|r| r.to_string())
            .collect(),
        opam_repository: repository,
    }
}

/// `text` with each `git checkout REF` of a pinned opam ref naming its commit; refs without
/// a pin stay as written.
pub fn substitute(text: &str, pins: &Pins) -> String {
    if pins.opam.is_empty() || !text.contains(CHECKOUT) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.split_inclusive('\n') {
        let mut last = 0;
        for (range, r) in checkouts(line) {
            if let Some(commit) = pins.opam_commit(r) {
                out.push_str(&line[last..range.start]);
                out.push_str(commit);
                last = range.end;
            }
        }
        out.push_str(&line[last..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inputs::ResolvedRef;

    fn pins(refs: &[(&str, &str)]) -> Pins {
        let mut p = Pins::default();
        for (r, c) in refs {
            p.opam.insert(
                r.to_string(),
                ResolvedRef {
                    url: "u".into(),
                    git_ref: r.to_string(),
                    commit: c.to_string(),
                    tag: None,
                    resolved_at: "t".into(),
                },
            );
        }
        p
    }

    const BASE: &str = "FROM x\n\
        RUN git clone https://github.com/ocaml/opam /tmp/opam && cd /tmp/opam && git checkout master && env MAKE='make -j' shell/bootstrap-ocaml.sh\n\
        RUN cd ../opam-build-2.1 && git fetch -q && git checkout 2.1 && ln -s a b\n\
        RUN cd ../opam-build-master && git fetch -q && git checkout master && ln -s a b\n\
        RUN powershell \"git checkout 2.2\"\n\
        RUN opam repo add beta git+https://github.com/ocaml/ocaml-beta-repository --set-default\n\
        RUN git checkout v1.2 && true\n\
        COPY --link --chown=opam:opam [ \".\", \"/home/opam/opam-repository\" ]\n\
        COPY --link [ \"Dockerfile\", \"/Dockerfile.opam\" ]\n";

    #[test]
    fn needs_names_the_refs_checked_out_and_the_context_copy() {
        let n = needs(BASE);
        assert_eq!(n.opam_refs, ["2.1", "2.2", "master"]);
        assert!(n.opam_repository);
        let compiler =
            "FROM a\nCOPY --link [ \"Dockerfile\", \"/Dockerfile.ocaml\" ]\nCOPY --from=0 . /x\n";
        assert!(needs(compiler).is_empty());
        assert!(
            needs("FROM a\nCOPY --chown=opam:opam . /home/opam/opam-repository\n").opam_repository
        );
        assert!(!needs("FROM a\nCOPY .bashrc /root/\n").opam_repository);
    }

    #[test]
    fn substitution_replaces_exactly_the_pinned_checkouts() {
        let c1 = "1".repeat(40);
        let cm = "f".repeat(40);
        let out = substitute(BASE, &pins(&[("2.1", &c1), ("master", &cm)]));
        assert_eq!(
            out,
            BASE.replace("git checkout 2.1 ", &format!("git checkout {c1} "))
                .replace("git checkout master ", &format!("git checkout {cm} "))
        );
        assert!(
            out.contains("git checkout 2.2\""),
            "an unpinned ref stays: {out}"
        );
        assert!(out.contains("git checkout v1.2 "), "not an opam ref");
        assert_eq!(substitute(BASE, &Pins::default()), BASE);
    }
}
