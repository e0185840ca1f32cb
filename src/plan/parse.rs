//! Dump text → [`Plan`]: one pass over the lines, then each compiler and the archive matched
//! with the base job it starts FROM.

use std::collections::HashMap;
use std::path::Path;

use super::job::{Arch, ImageRef, Job, JobKind, Push, Section, StagingFrom, Switch};
use super::{Plan, PlanError};

/// What a job line announced, before its text is known.
enum Head {
    Base { distro: String, arch: Arch },
    Compiler { switch: Switch, arch: Arch },
    Archive,
}

/// A line that is neither indented nor empty.
enum Item {
    Push(Push),
    /// A header, or `archive`.
    Header,
    Job(Head),
}

/// A job whose Dockerfile lines are being collected.
struct Open<'a> {
    /// 1-based line of the job line.
    line: usize,
    /// The job line as written, for messages.
    label: &'a str,
    head: Head,
    /// Text lines: TAB-indented lines without their TAB, and empty lines.
    lines: Vec<&'a str>,
    /// How many of `lines` were TAB-indented (the rest are empty).
    indented: usize,
}

struct Parser<'a> {
    file: String,
    sections: Vec<Section>,
    jobs: Vec<Job>,
    pushes: Vec<Push>,
    by_cell: HashMap<String, usize>,
    open: Option<Open<'a>>,
}

const SHAPES: &str = "expected a header (`debian-13`), a job `NAME/ARCH`, a push \
                      `SOURCES -> TARGET` or a TAB-indented Dockerfile line";

pub(super) fn parse(path: &Path, text: &str) -> Result<Plan, PlanError> {
    let mut p = Parser {
        file: path.display().to_string(),
        sections: Vec::new(),
        jobs: Vec::new(),
        pushes: Vec::new(),
        by_cell: HashMap::new(),
        open: None,
    };
    let mut seen_header = false;
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        if line.ends_with('\r') {
            return Err(p.err(n, "CRLF line ending: a dump has LF line endings only"));
        }
        if line.is_empty() {
            if let Some(open) = &mut p.open {
                open.lines.push("");
            }
            continue;
        }
        if !seen_header {
            if !is_name(line) {
                return Err(p.err(
                    n,
                    format!(
                        "not a dump (base-images --dump output): the first line should be a \
                         header such as `debian-13`, found `{}`",
                        shorten(line)
                    ),
                ));
            }
            seen_header = true;
        }
        if let Some(body) = line.strip_prefix('\t') {
            match &mut p.open {
                Some(open) => {
                    open.lines.push(body);
                    open.indented += 1;
                }
                None => return Err(p.err(
                    n,
                    "Dockerfile line (TAB-indented) outside a job: no `NAME/ARCH` line above it",
                )),
            }
            continue;
        }
        // A line of no known shape may be a mis-indented Dockerfile line: say so before
        // reporting the job above it as empty. Other faults come after that job's.
        if !line.contains("->") && !is_name(line) && job_line_parts(line).is_none() {
            return Err(p.err(
                n,
                format!("`{}` is not a dump line: {SHAPES}", shorten(line)),
            ));
        }
        p.close()?;
        let item = if line.contains("->") {
            Item::Push(parse_push(line).map_err(|m| p.err(n, m))?)
        } else if is_name(line) {
            Item::Header
        } else {
            Item::Job(parse_job_line(line).map_err(|m| p.err(n, m))?)
        };
        match item {
            Item::Push(push) => p.pushes.push(Push { line: n, ..push }),
            Item::Header if line == "archive" => p.open = Some(Open::new(n, line, Head::Archive)),
            Item::Header => {
                p.end_section();
                let (jobs, pushes) = (p.jobs.len(), p.pushes.len());
                p.sections.push(Section {
                    name: line.to_string(),
                    line: n,
                    jobs: jobs..jobs,
                    pushes: pushes..pushes,
                });
            }
            Item::Job(head) => p.open = Some(Open::new(n, line, head)),
        }
    }
    p.close()?;
    p.end_section();
    if !seen_header {
        return Err(p.err(1, "empty file: not a dump (base-images --dump output)"));
    }
    if p.jobs.is_empty() {
        return Err(p.err(
            1,
            "no job lines (`NAME/ARCH` followed by a Dockerfile): not a dump (base-images --dump output)",
        ));
    }
    p.finish(path)
}

impl<'a> Open<'a> {
    fn new(line: usize, label: &'a str, head: Head) -> Open<'a> {
        Open {
            line,
            label,
            head,
            lines: Vec::new(),
            indented: 0,
        }
    }
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> PlanError {
        PlanError::At {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    fn end_section(&mut self) {
        if let Some(s) = self.sections.last_mut() {
            s.jobs.end = self.jobs.len();
            s.pushes.end = self.pushes.len();
        }
    }

    /// Turn the open job, if any, into a [`Job`].
    fn close(&mut self) -> Result<(), PlanError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if open.indented == 0 {
            return Err(self.err(
                open.line,
                format!(
                    "job `{}` has no Dockerfile lines (TAB-indented, right below it)",
                    open.label
                ),
            ));
        }
        let text = open.lines.join("\n");
        let (kind, distro, arch, from) = match open.head {
            Head::Base { distro, arch } => (JobKind::Base, distro, arch, None),
            Head::Compiler { switch, arch } => {
                let Some((from, distro)) = staging_from(&open.lines, Some(arch)) else {
                    return Err(self.err(
                        open.line,
                        format!(
                            "compiler job `{}` has no `FROM …opam-staging:DISTRO-opam-{arch}` \
                             line, so its base job is unknown",
                            open.label
                        ),
                    ));
                };
                (JobKind::Compiler(switch), distro, arch, Some(from))
            }
            Head::Archive => {
                let Some((from, distro)) = staging_from(&open.lines, None) else {
                    return Err(self.err(
                        open.line,
                        "archive job has no `FROM …opam-staging:DISTRO-opam-ARCH` line, so its \
                         base job is unknown",
                    ));
                };
                let arch_str = from.image.tag[distro.len() + "-opam-".len()..].to_string();
                let Ok(arch) = arch_str.parse() else {
                    return Err(self.err(
                        open.line + 1 + from.line,
                        unknown_arch(&arch_str, "archive"),
                    ));
                };
                (JobKind::Archive, distro, arch, Some(from))
            }
        };
        let from = from.map(|f| StagingFrom {
            line: open.line + 1 + f.line,
            ..f
        });
        let cell = match &kind {
            JobKind::Base => format!("{distro}/opam/{arch}"),
            JobKind::Compiler(s) => format!("{distro}/{}/{arch}", s.tag()),
            JobKind::Archive => format!("{distro}/archive/{arch}"),
        };
        if let Some(&first) = self.by_cell.get(&cell) {
            return Err(self.err(
                open.line,
                format!(
                    "job `{}` is cell `{cell}` again: job `{}` at line {} is that cell already",
                    open.label,
                    label_of(&self.jobs[first]),
                    self.jobs[first].line
                ),
            ));
        }
        self.by_cell.insert(cell.clone(), self.jobs.len());
        self.jobs.push(Job {
            kind,
            distro,
            arch,
            cell,
            text,
            line: open.line,
            from,
        });
        Ok(())
    }

    /// Match every compiler and the archive with its base job, and index the plan.
    fn finish(self, path: &Path) -> Result<Plan, PlanError> {
        let mut base_by_key = HashMap::new();
        let mut by_staging_tag = HashMap::new();
        for (i, j) in self.jobs.iter().enumerate() {
            if j.kind == JobKind::Base {
                base_by_key.insert((j.distro.as_str(), j.arch), i);
            }
            by_staging_tag.insert(j.staging_tag(), i);
        }
        let mut bases = Vec::with_capacity(self.jobs.len());
        for j in &self.jobs {
            let Some(from) = &j.from else {
                bases.push(None);
                continue;
            };
            match base_by_key.get(&(j.distro.as_str(), j.arch)) {
                Some(&b) => bases.push(Some(b)),
                None => {
                    return Err(self.err(
                        from.line,
                        format!(
                            "{} `{}` starts FROM {}, but the file has no base job `{}/{}`",
                            if j.kind == JobKind::Archive {
                                "archive job"
                            } else {
                                "compiler job"
                            },
                            label_of(j),
                            from.image,
                            j.distro,
                            j.arch
                        ),
                    ))
                }
            }
        }
        Ok(Plan {
            path: path.to_path_buf(),
            sections: self.sections,
            jobs: self.jobs,
            pushes: self.pushes,
            by_cell: self.by_cell,
            by_staging_tag,
            bases,
        })
    }
}

/// The job line as the dump wrote it (`debian-13/amd64`, `5.4.1/amd64`, `archive`).
fn label_of(j: &Job) -> String {
    match &j.kind {
        JobKind::Base => format!("{}/{}", j.distro, j.arch),
        JobKind::Compiler(s) => format!("{s}/{}", j.arch),
        JobKind::Archive => "archive".to_string(),
    }
}

/// A header or job-line part: ASCII letters, digits and `._+~-`, starting with a letter or digit.
fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '-'))
}

fn unknown_arch(arch: &str, job: &str) -> String {
    let all: Vec<&str> = Arch::ALL.iter().map(|a| a.as_str()).collect();
    format!(
        "unknown arch `{arch}` in job `{job}`: expected one of {}",
        all.join(", ")
    )
}

/// `NAME/ARCH` split, if the line has that shape (the arch is checked later).
fn job_line_parts(line: &str) -> Option<(&str, &str)> {
    line.split_once('/')
        .filter(|(name, arch)| is_name(name) && !arch.is_empty() && !arch.contains('/'))
}

/// `NAME/ARCH`: a base job (NAME a distro) or a compiler job (NAME a switch, starting with a digit).
fn parse_job_line(line: &str) -> Result<Head, String> {
    let Some((name, arch)) = job_line_parts(line) else {
        return Err(format!("`{}` is not a dump line: {SHAPES}", shorten(line)));
    };
    let arch: Arch = arch.parse().map_err(|()| unknown_arch(arch, line))?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        let switch = Switch::parse(name).ok_or_else(|| {
            format!(
                "compiler job `{line}`: switch `{name}` is not \
                 MAJOR.MINOR[.PATCH][+VARIANT|~PRERELEASE]"
            )
        })?;
        Ok(Head::Compiler { switch, arch })
    } else {
        Ok(Head::Base {
            distro: name.to_string(),
            arch,
        })
    }
}

/// `SOURCE, SOURCE -> TARGET`, each an image `REPOSITORY:TAG` (the line number is set by the caller).
fn parse_push(line: &str) -> Result<Push, String> {
    let bad = |why: String| format!("malformed push `{}`: {why}", shorten(line));
    let mut parts = line.split("->");
    let (Some(sources), Some(target), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("more than one `->`".into()));
    };
    let image = |s: &str, what: &str| {
        ImageRef::parse(s).ok_or_else(|| {
            bad(if s.is_empty() {
                format!("no {what}")
            } else {
                format!("{what} `{s}` is not an image REPOSITORY:TAG")
            })
        })
    };
    let target = image(target.trim(), "target")?;
    let sources = if sources.trim().is_empty() {
        return Err(bad("no source image before `->`".into()));
    } else {
        sources
            .split(',')
            .map(|s| match s.trim() {
                "" => Err(bad("an empty source between commas".into())),
                s => image(s, "source"),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Push {
        sources,
        target,
        line: 0,
    })
}

/// The first `FROM …opam-staging:DISTRO-opam-ARCH` of a job's text lines (ARCH the given one,
/// or any for the archive), as tools/fidelity.py's `parse_dump` finds it
/// (`^FROM \S*opam-staging:(\S+)-opam-ARCH\b`), with DISTRO. [`StagingFrom::line`] is the
/// 0-based index of the text line here.
fn staging_from(lines: &[&str], arch: Option<Arch>) -> Option<(StagingFrom, String)> {
    let mut offset = 0;
    for (i, l) in lines.iter().enumerate() {
        let start = offset;
        offset += l.len() + 1;
        let Some(rest) = l.strip_prefix("FROM ") else {
            continue;
        };
        let token = rest.split(char::is_whitespace).next().unwrap_or("");
        let Some(image) = ImageRef::parse(token) else {
            continue;
        };
        if !image.repository.ends_with("opam-staging") {
            continue;
        }
        let distro = match arch {
            Some(a) => image.tag.strip_suffix(&format!("-opam-{a}")),
            None => image.tag.rfind("-opam-").map(|k| &image.tag[..k]),
        };
        let distro = match distro {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => continue,
        };
        let span = start + "FROM ".len()..start + "FROM ".len() + token.len();
        return Some((
            StagingFrom {
                image,
                span,
                line: i,
            },
            distro,
        ));
    }
    None
}

/// A line cut to 60 characters for a message.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}
