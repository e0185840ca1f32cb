//! Plan parsing against a small dump written for these tests (tests/fixtures/plan/small.dump:
//! two distros, arm64 and amd64, plain, variant and beta switches, heredocs, `COPY --link`,
//! `--from=0`, an archive job with `RUN --mount=type=bind`, pushes with aliases, and a Windows
//! group with one base and one compiler), and one test
//! per refusal with its exact message.

use std::path::Path;

use super::*;

const SMALL: &str = include_str!("../../tests/fixtures/plan/small.dump");

fn small() -> Plan {
    Plan::parse(Path::new("small.dump"), SMALL).expect("the fixture parses")
}

/// The 1-based line of the fixture that is exactly `s`, the `nth` such line (0-based).
fn line_of(s: &str, nth: usize) -> usize {
    SMALL
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == s)
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap()
}

fn refusal(text: &str) -> String {
    Plan::parse(Path::new("plan.dump"), text)
        .expect_err("refused")
        .to_string()
}

#[test]
fn fixture_cells_in_file_order() {
    let p = small();
    let cells: Vec<&str> = p.jobs().iter().map(Job::cell).collect();
    assert_eq!(
        cells,
        [
            "debian-13/opam/arm64",
            "debian-13/opam/amd64",
            "debian-13/5.4/arm64",
            "debian-13/5.4/amd64",
            "debian-13/4.14-flambda/amd64",
            "debian-13/5.5-beta1/arm64",
            "debian-13/5.5-beta1/amd64",
            "debian-13/archive/amd64",
            "alpine-3.23/opam/arm64",
            "alpine-3.23/opam/amd64",
            "alpine-3.23/5.4/arm64",
            "alpine-3.23/5.4/amd64",
            "windows-server-mingw-ltsc2025/opam/amd64",
            "windows-server-mingw-ltsc2025/5.4/amd64",
        ]
    );
    let sections: Vec<(&str, usize, std::ops::Range<usize>, std::ops::Range<usize>)> = p
        .sections()
        .iter()
        .map(|s| (s.name.as_str(), s.line, s.jobs.clone(), s.pushes.clone()))
        .collect();
    assert_eq!(
        sections,
        [
            ("debian-13", 1, 0..8, 0..11),
            ("alpine-3.23", line_of("alpine-3.23", 0), 8..12, 11..16),
            ("windows-mingw", line_of("windows-mingw", 0), 12..14, 16..19)
        ]
    );
    assert!(p.jobs()[..12].iter().all(|j| j.os() == Os::Linux));
    assert!(p.jobs()[12..].iter().all(|j| j.os() == Os::Windows));
    assert_eq!(p.path(), Path::new("small.dump"));
}

#[test]
fn fixture_jobs_carry_kind_switch_and_line() {
    let p = small();
    let base = p.job("debian-13/opam/amd64").unwrap();
    assert_eq!(
        (base.kind(), base.distro(), base.arch(), base.line()),
        (
            &JobKind::Base,
            "debian-13",
            Arch::Amd64,
            line_of("debian-13/amd64", 0)
        )
    );
    assert_eq!((base.from_image(), base.version()), (None, "opam"));

    for (cell, written, tag, job_line) in [
        ("debian-13/5.4/arm64", "5.4.1", "5.4", "5.4.1/arm64"),
        (
            "debian-13/4.14-flambda/amd64",
            "4.14.3+flambda",
            "4.14-flambda",
            "4.14.3+flambda/amd64",
        ),
        (
            "debian-13/5.5-beta1/amd64",
            "5.5.0~beta1",
            "5.5-beta1",
            "5.5.0~beta1/amd64",
        ),
    ] {
        let j = p.job(cell).unwrap();
        let s = j.switch().unwrap();
        assert_eq!((s.as_str(), s.tag(), j.version()), (written, tag, tag));
        assert_eq!(j.line(), line_of(job_line, 0), "{cell}");
        assert_eq!(j.kind(), &JobKind::Compiler(s.clone()));
    }
    // The second `5.4.1/amd64` of the file is alpine's: its distro comes from its FROM.
    let alpine = p.job("alpine-3.23/5.4/amd64").unwrap();
    assert_eq!(alpine.line(), line_of("5.4.1/amd64", 1));
    assert_eq!(alpine.distro(), "alpine-3.23");
}

#[test]
fn texts_are_the_dump_lines_without_their_one_tab() {
    let p = small();
    let j = p.job("debian-13/5.5-beta1/amd64").unwrap();
    assert_eq!(
        j.text(),
        "# syntax=docker/dockerfile:1\n\
         \n\
         FROM ocurrent/opam-staging:debian-13-opam-amd64\n\
         ENV OPAMYES=\"1\" OPAMCONFIRMLEVEL=\"unsafe-yes\"\n\
         RUN <<-EOF sh\n\
         \techo 5.5.0~beta1 > /home/opam/switch\n\
         \techo 5.5-beta1 >> /home/opam/switch\n\
         EOF\n\
         ENTRYPOINT [ \"cat\", \"/home/opam/switch\" ]\n\
         COPY --link [ \"Dockerfile\", \"/Dockerfile.ocaml\" ]\n"
    );
    // Every job's text, re-indented as dump.ml does, is the fixture's slice for that job.
    for j in p.jobs() {
        let dumped: String = j
            .text()
            .split('\n')
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("\t{l}\n")
                }
            })
            .collect();
        let start: usize = SMALL
            .split_inclusive('\n')
            .take(j.line())
            .map(str::len)
            .sum();
        assert!(SMALL[start..].starts_with(&dumped), "{}", j.cell());
        let after = &SMALL[start + dumped.len()..];
        assert!(
            !after.starts_with(['\t', '\n']),
            "{}: the text ends early",
            j.cell()
        );
    }
    let base = p.job("debian-13/opam/arm64").unwrap().text();
    assert!(
        base.contains("COPY <<-EOF /etc/sudoers.d/opam\n\topam ALL=(ALL:ALL) NOPASSWD:ALL\nEOF\n")
    );
    assert!(base.contains("COPY --from=0 [ \"/usr/local/bin/opam-2.5\", \"/usr/bin/opam-2.5\" ]\n"));
    assert!(
        base.contains("COPY --link --chown=opam:opam [ \".\", \"/home/opam/opam-repository\" ]\n")
    );
    assert!(base.starts_with("# syntax=docker/dockerfile:1\n\n# Autogenerated"));
    let alpine = p.job("alpine-3.23/opam/amd64").unwrap().text();
    assert!(alpine.contains(
        "RUN <<-EOF cat >> /etc/apk/repositories\n\t@edge https://dl-cdn.alpinelinux.org/alpine/edge/main\nEOF\n"
    ));
}

#[test]
fn compilers_and_the_archive_start_from_their_base() {
    let p = small();
    let c = p.job("debian-13/4.14-flambda/amd64").unwrap();
    assert_eq!(
        c.from_image().unwrap().to_string(),
        "ocurrent/opam-staging:debian-13-opam-amd64"
    );
    assert_eq!(c.from_line(), Some(c.line() + 3));
    assert_eq!(p.base_of(c).unwrap().cell(), "debian-13/opam/amd64");
    assert!(p.base_of(p.job("debian-13/opam/amd64").unwrap()).is_none());
    let pinned = c.text_with_from("sha256:0123abcd");
    assert_eq!(
        pinned,
        c.text().replace(
            "ocurrent/opam-staging:debian-13-opam-amd64",
            "sha256:0123abcd"
        )
    );

    let a = p.job("debian-13/archive/amd64").unwrap();
    assert_eq!(
        (a.kind(), a.arch(), a.line()),
        (&JobKind::Archive, Arch::Amd64, line_of("archive", 0))
    );
    assert_eq!(p.base_of(a).unwrap().cell(), "debian-13/opam/amd64");
    assert_eq!(a.from_line(), Some(a.line() + 4));
    assert!(a.text().contains(
        "RUN --mount=type=bind,target=/cache,from=opam-archive cp -R /cache/cache/ /home/opam/opam-repository/cache/\n"
    ));
    // Only the staging reference changes, not its `AS archive`.
    assert!(a.text_with_from("x:y").contains("\nFROM x:y AS archive\n"));
    assert_eq!(
        p.base_of(p.job("alpine-3.23/5.4/arm64").unwrap())
            .unwrap()
            .cell(),
        "alpine-3.23/opam/arm64"
    );
}

#[test]
fn pushes_with_aliases_and_their_sources() {
    let p = small();
    assert_eq!(p.pushes().len(), 19);
    let latest: Vec<&Push> = p.pushes_to("ocaml/opam:latest").collect();
    assert_eq!(latest.len(), 1);
    let latest = latest[0];
    assert_eq!(latest.line, line_of(&format!("{} -> ocaml/opam:latest", "ocurrent/opam-staging:debian-13-ocaml-5.4-arm64, ocurrent/opam-staging:debian-13-ocaml-5.4-amd64"), 0));
    let cells: Vec<&str> = latest
        .sources
        .iter()
        .map(|s| p.job_for_source(s).unwrap().cell())
        .collect();
    assert_eq!(cells, ["debian-13/5.4/arm64", "debian-13/5.4/amd64"]);
    // The aliases of debian-13's 5.4: the full tag, the distro alias, the distro, `latest`.
    let same: Vec<String> = p
        .public_tags()
        .filter(|(_, src)| *src == latest.sources.as_slice())
        .map(|(t, _)| t.to_string())
        .collect();
    assert_eq!(
        same,
        [
            "ocaml/opam:debian-13-ocaml-5.4",
            "ocaml/opam:debian-ocaml-5.4",
            "ocaml/opam:debian-13",
            "ocaml/opam:debian",
            "ocaml/opam:latest"
        ]
    );
    let archive: Vec<&Push> = p.pushes_to("ocaml/opam:archive").collect();
    assert_eq!(
        p.job_for_source(&archive[0].sources[0]).unwrap().cell(),
        "debian-13/archive/amd64"
    );
    // Every source of every push is a job of the file.
    for push in p.pushes() {
        for s in &push.sources {
            assert!(p.job_for_source(s).is_some(), "{s} at line {}", push.line);
        }
    }
    assert_eq!(p.pushes_to("ocaml/opam:nothing").count(), 0);
}

#[test]
fn windows_jobs_and_older_arches() {
    let text = "windows-mingw\n\
                windows-server-mingw-ltsc2025/amd64\n\
                \t# escape=`\n\
                \tFROM mcr.microsoft.com/windows/server:ltsc2025\n\
                \n\
                5.4.1/amd64\n\
                \t# escape=`\n\
                \n\
                \tFROM ocurrent/opam-staging:windows-server-mingw-ltsc2025-opam-amd64\n\
                \tCMD [ \"cmd.exe\" ]\n\
                debian-12\n\
                debian-12/i386\n\
                \tFROM debian:12\n\
                debian-12/arm32v7\n\
                \tFROM debian:12\n\
                4.14.2/arm32v7\n\
                \tFROM registry.example:5000/ocurrent/opam-staging:debian-12-opam-arm32v7\n";
    let p = Plan::parse(Path::new("w.dump"), text).unwrap();
    let w = p.job("windows-server-mingw-ltsc2025/5.4/amd64").unwrap();
    assert_eq!(
        (w.os(), w.distro()),
        (Os::Windows, "windows-server-mingw-ltsc2025")
    );
    assert_eq!(w.text(), "# escape=`\n\nFROM ocurrent/opam-staging:windows-server-mingw-ltsc2025-opam-amd64\nCMD [ \"cmd.exe\" ]");
    assert_eq!(p.base_of(w).unwrap().os(), Os::Windows);
    let old = p.job("debian-12/4.14/arm32v7").unwrap();
    assert_eq!((old.os(), old.arch()), (Os::Linux, Arch::Arm32v7));
    assert_eq!(
        old.from_image().unwrap().repository,
        "registry.example:5000/ocurrent/opam-staging"
    );
    assert_eq!(p.job("debian-12/opam/i386").unwrap().arch(), Arch::I386);
    assert_eq!(p.sections()[0].jobs, 0..2);
}

// ---- refusals: one test each, with the exact `file:line: message` ----

#[test]
fn refuses_an_empty_file() {
    assert_eq!(
        refusal(""),
        "plan.dump:1: empty file: not a dump (base-images --dump output)"
    );
    assert_eq!(
        refusal("\n\n"),
        "plan.dump:1: empty file: not a dump (base-images --dump output)"
    );
}

#[test]
fn refuses_a_toml_file() {
    assert_eq!(
        refusal("[matrix]\nplan = \"builds.expected\"\n"),
        "plan.dump:1: not a dump (base-images --dump output): the first line should be a header such as `debian-13`, found `[matrix]`"
    );
    assert_eq!(
        refusal("\n# imagegrid config\n[matrix]\n"),
        "plan.dump:2: not a dump (base-images --dump output): the first line should be a header such as `debian-13`, found `# imagegrid config`"
    );
}

#[test]
fn refuses_headers_without_jobs() {
    assert_eq!(
        refusal("debian-13\nalpine-3.23\n"),
        "plan.dump:1: no job lines (`NAME/ARCH` followed by a Dockerfile): not a dump (base-images --dump output)"
    );
}

#[test]
fn refuses_a_line_of_no_known_shape() {
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\nubuntu focal\n\tFROM scratch\n"),
        "plan.dump:4: `ubuntu focal` is not a dump line: expected a header (`debian-13`), a job `NAME/ARCH`, a push `SOURCES -> TARGET` or a TAB-indented Dockerfile line"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n    FROM debian:13\n"),
        "plan.dump:3: `    FROM debian:13` is not a dump line: expected a header (`debian-13`), a job `NAME/ARCH`, a push `SOURCES -> TARGET` or a TAB-indented Dockerfile line"
    );
}

#[test]
fn refuses_a_job_without_dockerfile_lines() {
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\n5.4.1/amd64\n\tFROM ocurrent/opam-staging:debian-13-opam-amd64\n"),
        "plan.dump:2: job `debian-13/amd64` has no Dockerfile lines (TAB-indented, right below it)"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\narchive\nx/y:archive -> ocaml/opam:archive\n"),
        "plan.dump:4: job `archive` has no Dockerfile lines (TAB-indented, right below it)"
    );
}

#[test]
fn faults_come_in_file_order() {
    // The empty job (line 2) before the bad push (line 3)...
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\nx -> y\n"),
        "plan.dump:2: job `debian-13/amd64` has no Dockerfile lines (TAB-indented, right below it)"
    );
    // ...but a line indented with spaces is named rather than the job above it.
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n    FROM debian:13\n"),
        "plan.dump:3: `    FROM debian:13` is not a dump line: expected a header (`debian-13`), a job `NAME/ARCH`, a push `SOURCES -> TARGET` or a TAB-indented Dockerfile line"
    );
}

#[test]
fn refuses_dockerfile_lines_outside_a_job() {
    assert_eq!(
        refusal("debian-13\n\tFROM debian:13\n"),
        "plan.dump:2: Dockerfile line (TAB-indented) outside a job: no `NAME/ARCH` line above it"
    );
}

#[test]
fn refuses_a_compiler_whose_base_is_not_in_the_file() {
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\n5.4.1/amd64\n\t# syntax=docker/dockerfile:1\n\tFROM ocurrent/opam-staging:debian-14-opam-amd64\n"),
        "plan.dump:6: compiler job `5.4.1/amd64` starts FROM ocurrent/opam-staging:debian-14-opam-amd64, but the file has no base job `debian-14/amd64`"
    );
    // The base exists, but for another arch.
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\n5.4.1/arm64\n\tFROM ocurrent/opam-staging:debian-13-opam-arm64\n"),
        "plan.dump:5: compiler job `5.4.1/arm64` starts FROM ocurrent/opam-staging:debian-13-opam-arm64, but the file has no base job `debian-13/arm64`"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\narchive\n\tFROM ocurrent/opam-staging:debian-12-opam-amd64 AS archive\n"),
        "plan.dump:5: archive job `archive` starts FROM ocurrent/opam-staging:debian-12-opam-amd64, but the file has no base job `debian-12/amd64`"
    );
}

#[test]
fn refuses_a_compiler_without_a_staging_from() {
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\n5.4.1/amd64\n\tFROM debian:13\n\tFROM ocurrent/opam-staging:debian-13-opam-arm64\n"),
        "plan.dump:4: compiler job `5.4.1/amd64` has no `FROM …opam-staging:DISTRO-opam-amd64` line, so its base job is unknown"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\narchive\n\tFROM alpine:latest\n"),
        "plan.dump:4: archive job has no `FROM …opam-staging:DISTRO-opam-ARCH` line, so its base job is unknown"
    );
}

#[test]
fn refuses_an_unknown_arch() {
    assert_eq!(
        refusal("debian-13\ndebian-13/x86_64\n\tFROM debian:13\n"),
        "plan.dump:2: unknown arch `x86_64` in job `debian-13/x86_64`: expected one of amd64, arm64, ppc64le, s390x, riscv64, i386, arm32v7"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\narchive\n\tFROM ocurrent/opam-staging:debian-13-opam-mips AS archive\n"),
        "plan.dump:5: unknown arch `mips` in job `archive`: expected one of amd64, arm64, ppc64le, s390x, riscv64, i386, arm32v7"
    );
}

#[test]
fn refuses_a_switch_that_is_not_a_version() {
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\n5+trunk/amd64\n\tFROM x\n"),
        "plan.dump:4: compiler job `5+trunk/amd64`: switch `5+trunk` is not MAJOR.MINOR[.PATCH][+VARIANT|~PRERELEASE]"
    );
}

#[test]
fn refuses_duplicate_cell_ids() {
    let from = "\tFROM ocurrent/opam-staging:debian-13-opam-amd64\n";
    assert_eq!(
        refusal(&format!("debian-13\ndebian-13/amd64\n\tFROM debian:13\n5.4.0/amd64\n{from}5.4.1/amd64\n{from}")),
        "plan.dump:6: job `5.4.1/amd64` is cell `debian-13/5.4/amd64` again: job `5.4.0/amd64` at line 4 is that cell already"
    );
    assert_eq!(
        refusal("debian-13\ndebian-13/amd64\n\tFROM debian:13\ndebian-13\ndebian-13/amd64\n\tFROM debian:13\n"),
        "plan.dump:5: job `debian-13/amd64` is cell `debian-13/opam/amd64` again: job `debian-13/amd64` at line 2 is that cell already"
    );
}

#[test]
fn refuses_malformed_push_lines() {
    let head = "debian-13\ndebian-13/amd64\n\tFROM debian:13\n";
    for (push, why) in [
        (
            " -> ocaml/opam:debian-13-opam",
            "no source image before `->`",
        ),
        ("x/opam-staging:a ->", "no target"),
        (
            "x/opam-staging:a -> ocaml/opam",
            "target `ocaml/opam` is not an image REPOSITORY:TAG",
        ),
        (
            "x/opam-staging:a, , x/opam-staging:b -> ocaml/opam:t",
            "an empty source between commas",
        ),
        (
            "x/opam-staging:a x/opam-staging:b -> ocaml/opam:t",
            "source `x/opam-staging:a x/opam-staging:b` is not an image REPOSITORY:TAG",
        ),
        (
            "x/opam-staging:a -> ocaml/opam:t -> ocaml/opam:u",
            "more than one `->`",
        ),
    ] {
        assert_eq!(
            refusal(&format!("{head}{push}\n")),
            format!("plan.dump:4: malformed push `{push}`: {why}"),
        );
    }
}

#[test]
fn refuses_crlf_line_endings() {
    assert_eq!(
        refusal("debian-13\r\ndebian-13/amd64\r\n\tFROM debian:13\r\n"),
        "plan.dump:1: CRLF line ending: a dump has LF line endings only"
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("builds.expected");
    std::fs::write(&good, SMALL).unwrap();
    assert_eq!(Plan::load(&good).unwrap().jobs().len(), 14);

    let binary = dir.path().join("binary.expected");
    std::fs::write(&binary, b"debian-13\ndebian-13/amd64\n\tFROM \xff\n").unwrap();
    let e = Plan::load(&binary).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: not UTF-8 text, so not a dump (base-images --dump output)",
            binary.display()
        )
    );
    assert_eq!(e.line(), Some(3));

    let missing = dir.path().join("missing.expected");
    let e = Plan::load(&missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read plan {}: ", missing.display())),
        "{e}"
    );
    assert_eq!(e.line(), None);
}
