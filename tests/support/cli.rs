//! Running the `cloudflared-routes` binary from tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudflared-routes")
}

/// The repository root (paths in fixtures are resolved against it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures` as an absolute path.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests").join("fixtures")
}

/// Runs `cloudflared-routes ARGS...` from the repository root.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin()))
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "`cloudflared-routes {}` exited with {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Runs `cloudflared-routes <subcommand> ARGS...`, panicking with stderr on a non-zero exit.
fn run_ok(subcommand: &str, args: &[&str]) -> String {
    let mut all = vec![subcommand];
    all.extend_from_slice(args);
    let out = run(&all);
    if !out.status.success() {
        panic!("{}", describe(&all, &out));
    }
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// `cloudflared-routes render ARGS...`: the rendered config.
pub fn render(args: &[&str]) -> String {
    run_ok("render", args)
}

/// Renders one manifest file or directory with extra options (`--gateway`, ...).
pub fn render_fixture(path: &Path, extra_args: &[&str]) -> String {
    let path = path.to_str().expect("UTF-8 path");
    let mut args = extra_args.to_vec();
    args.push(path);
    render(&args)
}

/// `cloudflared-routes status ARGS...`, parsed: one document per object we own.
pub fn status(args: &[&str]) -> Vec<Value> {
    let out = run_ok("status", args);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out)
        .unwrap_or_else(|e| panic!("`status` printed invalid YAML: {e}\n--- stdout ---\n{out}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `cloudflared-routes validate FILE`: `Ok(())` on exit 0, `Err(output)` on exit 1. Any other
/// exit code is a failure of the command itself and panics.
pub fn validate(config_file: &Path) -> Result<(), String> {
    let file = config_file.to_str().expect("UTF-8 path");
    let args = ["validate", file];
    let out = run(&args);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(describe(&args, &out)),
        _ => panic!("{}", describe(&args, &out)),
    }
}
