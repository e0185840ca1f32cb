//! The built-in failure rules: the breakages the OCaml image matrix sees again and again
//! (docs: DOMAIN section 4 of the design notes, and the upstream issues each hint names).
//! Priorities run 10..=95 so that a user rule (default 100) goes first; a more specific
//! rule has a higher priority than a broader one that could match the same log (`no-manifest`
//! before `missing-tool`, whose `: not found` a registry error also prints).

use super::{Origin, Rule};

/// (name, priority, pattern, hint).
const RULES: &[(&str, i64, &str, &str)] = &[
    (
        // imagegrid's own reason for a cell it did not start (session: "not started: input
        // opam (URL): git's message"): first, since git's message can also read like a build's
        // DNS or mirror failure, whose hints point at the engine.
        "input",
        95,
        r"^not started: input \S+ \(",
        "imagegrid could not pin an input on this machine (its git fetch failed), so the build did not start: check this machine's network and git access (`imagegrid inputs`), or set `[inputs] opam` / `opam_repository` to a mirror or a local path",
    ),
    (
        "disk-full",
        90,
        r"(?i)no space left on device|not enough free space|disk quota exceeded",
        "the engine is out of disk: `docker system prune` / `docker builder prune` on it, or give it a bigger disk",
    ),
    (
        "rate-limit",
        85,
        r"(?i)toomanyrequests|you have reached your (unauthenticated )?pull rate limit|429 too many requests|rate limit exceeded",
        "the registry's pull rate limit (Docker Hub: per IP, every 6 hours): log the engine in, use a pull-through mirror, or wait",
    ),
    (
        "registry-auth",
        80,
        r"(?i)pull access denied|unauthorized: |authentication required|denied: requested access|incorrect username or password|no basic auth credentials|insufficient_scope",
        "the registry refused the pull or push (credentials, or a private or misspelt image): `docker login` on the engine, or check [publish] credentials",
    ),
    (
        "no-manifest",
        75,
        r"(?i)no matching manifest for|no match for platform in manifest|does not match the specified platform|manifest unknown|manifest for \S+ not found",
        "upstream publishes no image for this platform (Ubuntu 22.04 lost riscv64, debian:12 lost s390x): exclude the cell in [matrix] exclude, or wait for upstream",
    ),
    (
        "exec-format",
        60,
        r"(?i)exec format error",
        "the engine cannot run binaries of this arch: register qemu-user-static (binfmt_misc, F flag) on the engine, or route the arch to a native engine",
    ),
    (
        "gcc-15",
        55,
        r"(?i)error: (too many arguments to function|cannot use keyword '(true|false|bool)'|'bool' cannot be defined via 'typedef'|expected identifier or '\(' before '(true|false|bool)')|two or more data types in declaration specifiers.*\bbool\b",
        "OCaml < 4.14 does not build with GCC 15 (C23 by default): add the patches overlay chosen by gcc version (docker-base-images#320, #337, #351)",
    ),
    (
        "gcc-14",
        50,
        r"(?i)error: implicit declaration of function|-Werror=(implicit-function-declaration|incompatible-pointer-types|int-conversion)|error: (initialization|assignment|passing argument \d+) of .* makes (integer from pointer|pointer from integer) without a cast",
        "OCaml < 4.08 does not build with GCC 14 (implicit declarations and int conversions are errors): use the overlay repository (docker-base-images#279, #298)",
    ),
    (
        "oom-killed",
        45,
        r"(?i)\bexit code:? 137\b|non-zero code: 137\b|\boom-?kill|out of memory|cannot allocate memory|virtual memory exhausted",
        "the step was killed (exit 137: the OOM killer or a memory limit): build fewer cells at once on the engine (max_parallel), lower make -j, or give the engine more memory",
    ),
    (
        "missing-tool",
        40,
        r"(?i)(^|[\s/])(sh|bash|dash|ash|env)(: line \d+| \d+)?:( \d+:)? [\w.+-]+: (command )?not found|executable file not found in \$PATH|\b(tar|sed|gzip|xz|bzip2|patch|make|m4|curl|unzip): (command )?not found",
        "a tool the recipe needs is missing from the upstream image (openSUSE Leap 15.6 dropped tar, Ubuntu lost sed): install it in the Dockerfile (docker-base-images#347, #116)",
    ),
    (
        "dns",
        35,
        r"(?i)temporary failure (in name resolution|resolving)|could not resolve( host)?|no such host|name or service not known|bad address '|server misbehaving",
        "name resolution failed in the build: the engine's DNS, or `[build] network = \"none\"` with a step that downloads",
    ),
    (
        "mirror",
        30,
        r"(?i)failed to fetch |hash sum mismatch|unable to fetch some archives|failed to download metadata|cannot retrieve repository metadata|error: failed retrieving file|failed to synchronize all databases|temporary error \(try again later\)|curl error \(\d+\)|could not connect to \S+ \(|unable to connect to \S+:",
        "a package mirror failed or is out of sync: retry later, or point the distro at another mirror",
    ),
    (
        "opam-cyclic",
        25,
        r"(?i)cyclic dependenc",
        "opam 2.0's solver reported cyclic dependencies (docker-base-images#342): use a newer opam",
    ),
    (
        "engine-lost",
        10,
        r"engine \S+ lost during build|imagegrid stopped before recording how this build ended",
        "the engine (or imagegrid) went away mid-build: `imagegrid check`, then retry",
    ),
];

/// The built-in rules, in the order written (the set sorts them by priority).
pub fn rules() -> Vec<Rule> {
    RULES
        .iter()
        .map(|(name, priority, pattern, hint)| Rule {
            name: name.to_string(),
            pattern: pattern.to_string(),
            hint: hint.to_string(),
            priority: *priority,
            origin: Origin::BuiltIn,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::RuleSet;

    /// Real lines from the field (the upstream issues and engine messages) and what they are.
    #[test]
    fn field_lines_get_their_cause() {
        let set = RuleSet::builtin();
        let cases = [
            ("runtime/caml/misc.h:42:14: error: 'bool' cannot be defined via 'typedef'", "gcc-15"),
            ("io.c:317:3: error: too many arguments to function 'caml_channel_mutex_lock'", "gcc-15"),
            ("unix.c:20:5: error: implicit declaration of function 'fchmod' [-Wimplicit-function-declaration]", "gcc-14"),
            ("/bin/sh: tar: not found", "missing-tool"),
            ("/bin/sh: 1: sed: not found", "missing-tool"),
            ("bash: line 1: tar: command not found", "missing-tool"),
            ("no matching manifest for linux/riscv64 in the manifest list entries", "no-manifest"),
            ("image with reference x:arm64 was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64", "no-manifest"),
            ("failed to solve: debian:12: no match for platform in manifest sha256:abc: not found", "no-manifest"),
            ("exec /bin/sh: exec format error", "exec-format"),
            ("standard_init_linux.go:228: exec user process caused: exec format error", "exec-format"),
            ("Err:1 http://deb.debian.org/debian bookworm InRelease Temporary failure resolving 'deb.debian.org'", "dns"),
            ("E: Failed to fetch http://deb.debian.org/debian/pool/main/g/gcc.deb  404  Not Found", "mirror"),
            ("write /var/lib/docker/tmp/x: no space left on device", "disk-full"),
            ("The command '/bin/sh -c make' returned a non-zero code: 137", "oom-killed"),
            ("toomanyrequests: You have reached your pull rate limit.", "rate-limit"),
            ("pull access denied for private/image, repository does not exist or may require 'docker login'", "registry-auth"),
            ("[ERROR] The compilation of ocaml failed: cyclic dependencies", "opam-cyclic"),
            ("engine a lost during build: connection reset", "engine-lost"),
        ];
        for (line, want) in cases {
            assert_eq!(set.classify([line], None, None).name, want, "{line}");
        }
        // A cell not started because an input could not be pinned: the reason the scheduler
        // records (newcomer walk offline: it was called `dns`, with the engine's DNS as hint).
        let not_started = "not started: input opam (https://github.com/ocaml/opam): fatal: unable to access 'https://github.com/ocaml/opam/': Could not resolve host: github.com";
        let cause = set.classify([], Some(not_started), None);
        assert_eq!(cause.name, "input", "{cause:?}");
        assert!(cause.hint.contains("[inputs]"), "{cause:?}");
        // A build's own DNS failure stays `dns`.
        assert_eq!(
            set.classify(["fatal: unable to access 'https://github.com/ocaml/opam/': Could not resolve host: github.com"], None, None).name,
            "dns"
        );
        // Ordinary output is not a cause.
        for line in [
            "checking for gcc... gcc",
            "Step 3/4 : RUN make",
            "not found: nothing",
        ] {
            assert!(set.classify([line], None, None).is_unclassified(), "{line}");
        }
    }
}
