//! Engine m of the test environment: Debian 13's Docker 26.1 (Engine API 1.45), next to the
//! Docker 20.10 engines. Its built-in BuildKit frontend takes Dockerfile syntax that 20.10's
//! rejects (heredocs, `COPY --link`), without a `# syntax=` line (which would pull a frontend
//! image from a registry: none is reachable here).

mod common;

use std::time::Duration;

use common::{env, file_in_image, modern_spec, unix_spec};
use imagegrid::config::NetworkMode;
use imagegrid::engine::build::{BuildError, BuildProgress, BuildRequest, BuiltImage};
use imagegrid::engine::{Engine, EngineSpec};

const HEREDOC: &str = "COPY <<-EOF /x\n\theredoc from imagegrid\n\tEOF\n";
const COPY_LINK: &str = "COPY --link linked.txt /linked.txt\n";

/// FROM the fixture busybox, then `steps`.
fn dockerfile(steps: &[&str]) -> String {
    format!(
        "FROM {}:amd64\n{}",
        env("IMAGEGRID_TEST_FIXTURE_IMAGE"),
        steps.concat()
    )
}

async fn connect(spec: &EngineSpec) -> Engine {
    Engine::connect(spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Build with BuildKit through imagegrid's build path (a context file `linked.txt` beside
/// the Dockerfile); the log lines too.
async fn build(
    engine: &Engine,
    dockerfile: String,
    tag: &str,
) -> (Result<BuiltImage, BuildError>, Vec<String>) {
    assert!(
        engine.info.buildkit,
        "engine {} has BuildKit, so `[build] buildkit = \"auto\"` picks it",
        engine.name()
    );
    let req = BuildRequest {
        cell_id: "modern-syntax".into(),
        dockerfile,
        context_files: vec![("linked.txt".into(), b"copied with --link\n".to_vec())],
        context_dir: None,
        platform: "linux/amd64".into(),
        tag: tag.into(),
        labels: Default::default(),
        network: NetworkMode::None,
        buildkit: true,
        no_cache: true,
        pull: false,
        idle_timeout: Duration::from_secs(60),
    };
    let mut lines = Vec::new();
    let result = engine
        .build(&req, &Default::default(), |p| {
            if let BuildProgress::Line(l) = p {
                lines.push(l)
            }
        })
        .await;
    (result, lines)
}

#[tokio::test]
async fn modern_engine_is_docker_26_with_api_1_45() {
    let engine = connect(&modern_spec("m", &["amd64"])).await;
    let info = &engine.info;
    assert!(info.version.starts_with("26."), "version {info:?}");
    let (major, minor) = info
        .api_version
        .split_once('.')
        .map(|(a, b)| (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()))
        .unwrap_or_else(|| panic!("API version {info:?}"));
    assert!((major, minor) >= (1, 45), "negotiated API {info:?}");
    assert_eq!((info.os.as_str(), info.arch.as_str()), ("linux", "amd64"));
    assert!(info.buildkit, "{info:?}");
}

#[tokio::test]
async fn modern_engine_builds_heredoc_and_copy_link_with_buildkit() {
    let engine = connect(&modern_spec("m", &["amd64"])).await;
    let tag = "imagegrid-modern-test/syntax:m";
    // A heredoc (`<<-` strips the body's leading tabs) and a `COPY --link`.
    let (result, lines) = build(&engine, dockerfile(&[HEREDOC, COPY_LINK]), tag).await;
    let img = result.unwrap_or_else(|e| panic!("build on engine m: {e}\n{}", lines.join("\n")));
    assert_eq!(img.architecture, "amd64");
    assert_eq!(
        file_in_image(&engine, tag, "/x").await,
        "heredoc from imagegrid\n",
        "the heredoc's body, tabs stripped by <<-"
    );
    assert_eq!(
        file_in_image(&engine, tag, "/linked.txt").await,
        "copied with --link\n"
    );
}

#[tokio::test]
async fn docker_20_10_rejects_the_same_dockerfile() {
    let engine = connect(&unix_spec("a", &["amd64"])).await;
    assert!(
        engine.info.version.starts_with("20.10."),
        "{:?}",
        engine.info
    );
    let tag = "imagegrid-modern-test/syntax:a";
    // The same Dockerfile: 20.10's frontend reads the heredoc's body as an instruction.
    let (result, lines) = build(&engine, dockerfile(&[HEREDOC, COPY_LINK]), tag).await;
    assert_parse_error(result, &lines, "line 3: unknown instruction: HEREDOC");
    // Its `COPY --link` alone is refused as well.
    let (result, lines) = build(&engine, dockerfile(&[COPY_LINK]), tag).await;
    assert_parse_error(result, &lines, "line 2: Unknown flag: link");
}

fn assert_parse_error(result: Result<BuiltImage, BuildError>, lines: &[String], what: &str) {
    match result {
        Err(BuildError::Failed(message)) => assert!(
            message.contains("dockerfile parse error") && message.contains(what),
            "expected a parse error with {what:?}: {message}\n{}",
            lines.join("\n")
        ),
        other => panic!(
            "expected a parse error with {what:?}, got {other:?}\n{}",
            lines.join("\n")
        ),
    }
}
