//! The Dockerfile, checked where no Docker engine runs: its build step is the very command CI
//! runs (`.ci/run`), its build context (the repository less what `.dockerignore` names) is
//! enough for cargo to resolve the workspace from the lock file, and the final image runs the
//! binary that step builds, as uid 65532, with cloudflared copied from the official image.
//!
//! ```text
//! Dockerfile → stages → builder RUN == a line of .ci/run
//!                     → build context (.dockerignore) → temp dir → cargo metadata, cargo fetch --locked
//!                     → final stage: COPY paths, USER, ENTRYPOINT, labels
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = "cloudflared-routes";

/// One instruction: its keyword (upper case) and the rest of the line, continuations joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    rest: String,
}

/// A build stage: `FROM image [AS name]` and its instructions.
#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions.iter().filter(|i| i.keyword == keyword).map(|i| i.rest.as_str()).collect()
    }

    fn one(&self, keyword: &str) -> &str {
        let found = self.all(keyword);
        assert_eq!(found.len(), 1, "stage {:?}: expected one {keyword}, got {found:?}", self.name);
        found[0]
    }
}

struct Dockerfile {
    /// `ARG NAME=default` before the first FROM.
    args: BTreeMap<String, String>,
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn read() -> Self {
        Self::parse(&read("Dockerfile"))
    }

    fn parse(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    current.push_str(head.trim_end());
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    lines.push(std::mem::take(&mut current));
                }
            }
        }
        let mut args = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for line in lines {
            let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let instruction =
                Instruction { keyword: keyword.to_ascii_uppercase(), rest: rest.trim().to_string() };
            if instruction.keyword == "FROM" {
                let words: Vec<&str> = instruction.rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    [_] => None,
                    other => panic!("unexpected FROM {other:?}"),
                };
                stages.push(Stage { image: words[0].to_string(), name, instructions: Vec::new() });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(instruction);
            } else {
                assert_eq!(instruction.keyword, "ARG", "only ARGs may precede the first FROM");
                let (name, value) = instruction.rest.split_once('=').expect("global ARGs have defaults");
                args.insert(name.to_string(), value.to_string());
            }
        }
        Dockerfile { args, stages }
    }

    fn stage(&self, name: &str) -> &Stage {
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no stage {name}"))
    }

    fn last(&self) -> &Stage {
        self.stages.last().expect("a stage")
    }
}

/// `COPY [--from=STAGE] SRC... DEST`.
#[derive(Debug, PartialEq)]
struct Copy {
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

fn copies(stage: &Stage) -> Vec<Copy> {
    stage
        .all("COPY")
        .into_iter()
        .map(|rest| {
            let mut words: Vec<&str> = rest.split_whitespace().collect();
            let mut from = None;
            while let Some(option) = words.first().and_then(|w| w.strip_prefix("--")) {
                match option.split_once('=') {
                    Some(("from", stage)) => from = Some(stage.to_string()),
                    _ => panic!("COPY option --{option} is not understood by this test"),
                }
                words.remove(0);
            }
            let dest = words.pop().expect("COPY destination").to_string();
            Copy { from, sources: words.iter().map(|s| s.to_string()).collect(), dest }
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string()))
}

/// `version = "…"` of a Cargo.toml table.
fn toml_value(table: &str, key: &str) -> String {
    let manifest = read("Cargo.toml");
    let start = manifest.find(&format!("[{table}]\n")).unwrap_or_else(|| panic!("no [{table}]"));
    let body = &manifest[start..];
    let body = &body[..body[1..].find("\n[").map_or(body.len(), |end| end + 1)];
    body.lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in [{table}]"))
}

fn version_tuple(version: &str) -> Vec<u32> {
    version
        .split('.')
        .map(|part| part.parse().unwrap_or_else(|_| panic!("not a version: {version}")))
        .collect()
}

#[test]
fn the_build_step_is_a_command_ci_runs() {
    let dockerfile = Dockerfile::read();
    let builder = dockerfile.stage("builder");
    let build = builder.one("RUN");
    assert_eq!(build, format!("cargo build --release --locked --bin {BIN}"));
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|line| line.trim() == build),
        ".ci/run must run the Dockerfile's build step `{build}` exactly, so that it cannot rot unseen"
    );
    // Nothing moves cargo's output away from <WORKDIR>/target/release.
    for env in builder.all("ENV") {
        assert!(!env.contains("CARGO_TARGET_DIR") && !env.contains("CARGO_BUILD"), "builder ENV {env}");
    }
}

#[test]
fn the_image_runs_the_binary_the_build_step_produces() {
    let dockerfile = Dockerfile::read();
    let builder = dockerfile.stage("builder");
    let output = format!("{}/target/release/{BIN}", builder.one("WORKDIR").trim_end_matches('/'));
    let last = dockerfile.last();
    assert_eq!(last.image, "gcr.io/distroless/cc-debian12:nonroot");
    assert_eq!(last.one("USER"), "65532:65532", "cloudflared's uid, so that signal mode may signal it");
    let entrypoint = format!("/usr/local/bin/{BIN}");
    assert_eq!(last.one("ENTRYPOINT"), format!("[\"{entrypoint}\"]"));
    assert!(last.all("CMD").is_empty(), "the chart gives the arguments");
    // distroless has no shell: no RUN after the builder; nothing written at run time.
    assert!(last.all("RUN").is_empty());
    assert!(last.all("VOLUME").is_empty());

    let copied = copies(last);
    let routes = Copy { from: Some("builder".into()), sources: vec![output], dest: entrypoint };
    let cloudflared = Copy {
        from: Some("cloudflared".into()),
        sources: vec!["/usr/local/bin/cloudflared".into()],
        dest: "/usr/local/bin/cloudflared".into(),
    };
    assert_eq!(copied, vec![routes, cloudflared]);
}

#[test]
fn cloudflared_comes_from_a_pinned_official_image() {
    let dockerfile = Dockerfile::read();
    assert_eq!(
        dockerfile.stage("cloudflared").image,
        "docker.io/cloudflare/cloudflared:${CLOUDFLARED_VERSION}"
    );
    let version = &dockerfile.args["CLOUDFLARED_VERSION"];
    // cloudflared's release tags are YYYY.M.P (2025.11.1), never `latest`.
    let parts = version_tuple(version);
    assert!(parts.len() == 3 && parts[0] >= 2024 && (1..=12).contains(&parts[1]), "{version}");
    assert!(dockerfile.stage("cloudflared").instructions.is_empty());
}

#[test]
fn the_builder_toolchain_is_pinned_and_new_enough() {
    let dockerfile = Dockerfile::read();
    assert_eq!(dockerfile.stage("builder").image, "docker.io/library/rust:${RUST_VERSION}-slim-bookworm");
    let pinned = version_tuple(&dockerfile.args["RUST_VERSION"]);
    let required = version_tuple(&toml_value("workspace.package", "rust-version"));
    assert_eq!(pinned.len(), 3, "pin a full toolchain version");
    assert!(pinned >= required, "RUST_VERSION {pinned:?} is older than rust-version {required:?}");
}

#[test]
fn the_labels_follow_the_crate() {
    let labels = Dockerfile::read().last().one("LABEL").to_string();
    let version = env!("CARGO_PKG_VERSION");
    for (key, value) in [
        ("org.opencontainers.image.title", BIN.to_string()),
        ("org.opencontainers.image.version", version.to_string()),
        ("org.opencontainers.image.licenses", toml_value("workspace.package", "license")),
    ] {
        let pair = format!("{key}=\"{value}\"");
        assert!(labels.contains(&pair), "LABEL lacks {pair}: {labels}");
    }
}

/// A `.dockerignore` pattern, of a shape this test applies exactly as Docker does.
enum Ignore {
    /// `docs`: that top-level entry (and so everything under it).
    TopLevel(String),
    /// `*.md`: top-level entries whose name ends so (`*` never crosses a `/`).
    TopLevelSuffix(String),
    /// `**/target`: an entry of that name at any depth.
    Anywhere(String),
}

fn dockerignore() -> Vec<Ignore> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|pattern| {
            let plain = |s: &str| !s.is_empty() && !s.contains(['*', '?', '[', '/', '!', '\\']);
            if let Some(name) = pattern.strip_prefix("**/").filter(|n| plain(n)) {
                Ignore::Anywhere(name.to_string())
            } else if let Some(suffix) = pattern.strip_prefix('*').filter(|s| plain(s)) {
                Ignore::TopLevelSuffix(suffix.to_string())
            } else if plain(pattern) {
                Ignore::TopLevel(pattern.to_string())
            } else {
                panic!(".dockerignore pattern {pattern:?} is not one this test can apply; extend it")
            }
        })
        .collect()
}

fn ignored(rules: &[Ignore], relative: &Path) -> bool {
    let top = relative.components().count() == 1;
    let name = relative.file_name().unwrap().to_string_lossy();
    rules.iter().any(|rule| match rule {
        Ignore::TopLevel(n) => top && name == n.as_str(),
        Ignore::TopLevelSuffix(suffix) => top && name.ends_with(suffix.as_str()),
        Ignore::Anywhere(n) => name == n.as_str(),
    })
}

/// Copies the build context under `relative` (of the repository) to `to`.
fn copy_context(rules: &[Ignore], relative: &Path, to: &Path) {
    let from = Path::new(ROOT).join(relative);
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            let child = relative.join(entry.file_name());
            if !ignored(rules, &child) {
                copy_context(rules, &child, &to.join(entry.file_name()));
            }
        }
    } else {
        std::fs::copy(&from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

#[test]
fn the_build_context_holds_what_cargo_needs() {
    let dockerfile = Dockerfile::read();
    let builder = dockerfile.stage("builder");
    // The whole context (less .dockerignore) into the WORKDIR.
    assert_eq!(copies(builder), vec![Copy { from: None, sources: vec![".".into()], dest: ".".into() }]);
    let context = tempfile::tempdir().unwrap();
    let workdir = context.path();
    copy_context(&dockerignore(), Path::new(""), workdir);

    // The manifests load and the binary is a target of them.
    let metadata = cargo()
        .args(["metadata", "--no-deps", "--locked", "--offline", "--format-version", "1"])
        .current_dir(workdir)
        .output()
        .unwrap();
    assert!(metadata.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&metadata.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let bins: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bins, vec![BIN]);

    // `cargo fetch` checks what `cargo build` checks before compiling and `metadata` does not
    // (every declared target's file: a `[[bench]]` whose benches/NAME.rs is not in the
    // context fails the build), and `--locked` that the lock file resolves this context as it
    // is. The packages it needs are in cargo's cache already (the test run built them); any
    // missing one is downloaded, as the build step would.
    let version = cargo().arg("-vV").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let host = version.lines().find_map(|l| l.strip_prefix("host: ")).expect("cargo -vV names the host");
    let fetch = cargo().args(["fetch", "--locked", "--target", host]).current_dir(workdir).output().unwrap();
    assert!(fetch.status.success(), "cargo fetch --locked: {}", String::from_utf8_lossy(&fetch.stderr));
}
