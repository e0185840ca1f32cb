//! Proves the real-engine harness: a small multi-stage image built on each test engine
//! (unix socket and TCP+TLS), for amd64 and arm64 (emulated), whose final image holds the
//! tool but none of the builder stage's files.

mod common;

use std::time::Duration;

use common::{env, tls_spec, unix_spec};
use futures_util::StreamExt;
use imagegrid::config::NetworkMode;
use imagegrid::engine::build::{BuildProgress, BuildRequest};
use imagegrid::engine::{Engine, EngineSpec};

const DOCKERFILE: &str = "FROM FIXTURE AS builder
RUN mkdir -p /toolchain /out && echo compiler > /toolchain/builder-only.txt && printf '#!/bin/sh\\necho tool\\n' > /out/tool && chmod +x /out/tool
FROM FIXTURE
COPY --from=builder /out/tool /usr/bin/tool
RUN uname -m > /arch
";

/// Every file path in an image, from `docker save` (layer tars inside the outer tar).
async fn image_files(engine: &Engine, image: &str) -> Vec<String> {
    let mut bytes = Vec::new();
    let mut s = engine.docker().export_image(image);
    while let Some(chunk) = s.next().await {
        bytes.extend_from_slice(&chunk.expect("export image"));
    }
    let mut files = Vec::new();
    let mut outer = tar::Archive::new(&bytes[..]);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if path.ends_with("layer.tar") {
            let mut layer = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut layer).unwrap();
            for e in tar::Archive::new(&layer[..]).entries().unwrap() {
                files.push(e.unwrap().path().unwrap().display().to_string());
            }
        }
    }
    files
}

async fn build_and_check(spec: EngineSpec, arch: &str, buildkit: bool) {
    let engine = Engine::connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        engine.info.api_version, "1.41",
        "the test engines are Docker 20.10"
    );
    let fixture = format!("{}:{arch}", env("IMAGEGRID_TEST_FIXTURE_IMAGE"));
    let tag = format!(
        "imagegrid-harness/{}:{arch}-{}",
        spec.name,
        if buildkit { "bk" } else { "classic" }
    );
    let req = BuildRequest {
        cell_id: "harness".into(),
        dockerfile: DOCKERFILE.replace("FIXTURE", &fixture),
        context_files: vec![],
        context_dir: None,
        platform: format!("linux/{arch}"),
        tag: tag.clone(),
        labels: Default::default(),
        network: NetworkMode::None,
        buildkit,
        no_cache: true,
        pull: false,
        idle_timeout: Duration::from_secs(120),
    };
    let mut lines = Vec::new();
    let img = engine
        .build(&req, &Default::default(), |p| {
            if let BuildProgress::Line(l) = p {
                lines.push(l)
            }
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "build on {} for {arch}: {e}\n{}",
                spec.name,
                lines.join("\n")
            )
        });
    assert_eq!(img.architecture, arch);
    assert!(img.image_id.starts_with("sha256:"));
    assert!(img.size > 500_000, "busybox is in it: {}", img.size);
    assert_eq!(
        img.layers.iter().map(|l| l.size).sum::<i64>(),
        img.size,
        "layer sizes add up"
    );
    assert!(img.layers.iter().any(|l| l.created_by.contains("uname -m")));
    let files = image_files(&engine, &tag).await;
    assert!(
        files.iter().any(|f| f == "usr/bin/tool"),
        "tool copied: {files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.contains("toolchain") || f.contains("builder-only")),
        "builder files leaked: {files:?}"
    );
    assert!(!lines.is_empty());
}

#[tokio::test]
async fn multi_stage_amd64_on_unix_engine() {
    build_and_check(unix_spec("unix", &["amd64"]), "amd64", false).await;
}

#[tokio::test]
async fn multi_stage_arm64_on_unix_engine_buildkit() {
    build_and_check(unix_spec("unix", &["arm64"]), "arm64", true).await;
}

#[tokio::test]
async fn multi_stage_amd64_on_tls_engine_buildkit() {
    build_and_check(tls_spec("tls", &["amd64"]), "amd64", true).await;
}

#[tokio::test]
async fn multi_stage_arm64_on_tls_engine() {
    build_and_check(tls_spec("tls", &["arm64"]), "arm64", false).await;
}
