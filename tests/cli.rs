//! The command line as a user meets it: exit codes, stdout/stderr, determinism across files.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");
const TUNNEL: &str = "6ff42ae2-765d-4adf-8112-31c55c1551ef";

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run cloudflared-routes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn render_examples_is_valid_and_summarised() {
    let o = run(&[
        "render",
        "--base-config",
        "examples/base-config/config.yml",
        "--tunnel-id",
        TUNNEL,
        "examples/",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = stdout(&o);
    assert!(config.contains("tunnel: '6ff42ae2-765d-4adf-8112-31c55c1551ef'"), "{config}");
    assert!(config.contains("# HTTPRoute web/website rule"), "each rule names its source:\n{config}");
    assert!(stderr(&o).contains("ingress rules"), "summary on stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("routes: "), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.yml", &config);
    let v = run(&["validate", &file]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    assert_eq!(stdout(&v).trim(), "OK");
}

#[test]
fn same_objects_in_other_files_and_order_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // Every example document, in reverse order, in one file.
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in &files {
        for doc in std::fs::read_to_string(f).unwrap().split("\n---") {
            if doc.trim().lines().any(|l| l.starts_with("kind:")) {
                docs.push(doc.trim_start_matches('-').trim().to_string());
            }
        }
    }
    docs.reverse();
    let one = write(dir.path(), "all.yaml", &docs.join("\n---\n"));
    let a = run(&["render", "--tunnel-id", TUNNEL, "examples/"]);
    let b = run(&["render", "--tunnel-id", TUNNEL, &one]);
    assert!(a.status.success() && b.status.success(), "{}{}", stderr(&a), stderr(&b));
    assert_eq!(stdout(&a), stdout(&b));
}

#[test]
fn malformed_yaml_is_unusable_input_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad =
        write(dir.path(), "bad.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [unclosed\n");
    let o = run(&["render", &bad]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing on stdout");
    assert!(stderr(&o).contains("bad.yaml:"), "names the file: {}", stderr(&o));
    assert!(stderr(&o).chars().any(|c| c.is_ascii_digit()), "and a line: {}", stderr(&o));
}

#[test]
fn an_object_kubectl_would_refuse_is_unusable_input_naming_file_object_and_field() {
    // Left out with a warning, a Gateway typo gave a config without any route, and exit 0.
    let dir = tempfile::tempdir().unwrap();
    let gateway = std::fs::read_to_string("examples/gateway.yaml").unwrap();
    assert!(gateway.contains("port: 80"), "{gateway}");
    let typo = write(dir.path(), "gateway.yaml", &gateway.replacen("port: 80", "port: \"80\"", 1));
    let mut args = vec!["render".to_string()];
    for entry in std::fs::read_dir("examples").unwrap() {
        let path = entry.unwrap().path().display().to_string();
        if path.ends_with(".yaml") && !path.ends_with("gateway.yaml") {
            args.push(path);
        }
    }
    args.push(typo.clone());
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing on stdout");
    let want = format!(
        "{typo}:4: Gateway cloudflare-tunnel-system/cloudflare-tunnel: spec.listeners[0].port: \
         invalid type: string \"80\", expected i32"
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let status = run(&["status", &typo]);
    assert_eq!(status.status.code(), Some(2), "status too: {}", stderr(&status));
}

#[test]
fn missing_path_and_bad_flags_are_unusable_input() {
    let o = run(&["render", "/nonexistent/manifests"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let o = run(&["render", "--tunnel-id", "not-a-uuid", "examples/"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["render", "--gateway", "no-slash", "examples/"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn credentials_file_sets_tunnel_and_path_and_never_prints_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let creds = write(
        dir.path(),
        "credentials.json",
        &format!(r#"{{"AccountTag":"acct","TunnelSecret":"dG9wLXNlY3JldA==","TunnelID":"{TUNNEL}"}}"#),
    );
    let o = run(&["render", "--credentials-file", &creds, "examples/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o) + &stderr(&o);
    assert!(
        out.contains(&format!("credentials-file: {creds}"))
            || out.contains(&format!("credentials-file: '{creds}'")),
        "{out}"
    );
    assert!(!out.contains("dG9wLXNlY3JldA=="), "the secret leaked");
    let o = run(&[
        "render",
        "--credentials-file",
        &creds,
        "--tunnel-id",
        "00000000-0000-0000-0000-000000000000",
        "examples/",
    ]);
    assert_eq!(o.status.code(), Some(2), "a differing --tunnel-id is refused: {}", stderr(&o));

    // A path that is not UTF-8 cannot be written into config.yml as it is.
    use std::os::unix::ffi::OsStrExt;
    let latin1 = dir.path().join(std::ffi::OsStr::from_bytes(b"cr\xe9dentials.json"));
    std::fs::copy(&creds, &latin1).unwrap();
    let o = Command::new(BIN)
        .arg("render")
        .arg("--credentials-file")
        .arg(&latin1)
        .arg("examples/")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty() && stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
}

#[test]
fn base_config_that_breaks_the_config_fails_with_cloudflareds_reason() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.yml", "ingress:\n  - service: http://everything:80\n  - hostname: late.example.com\n    service: http://late:80\n");
    let o = run(&["render", "--base-config", &base, "examples/"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "an invalid config is never printed");
    assert!(stderr(&o).contains("match every"), "{}", stderr(&o));

    let broken = write(dir.path(), "broken.yml", "originRequest: [\n");
    let o = run(&["render", "--base-config", &broken, "examples/"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn unresolved_backends_are_named_in_the_summary() {
    // Their rules render as http_status:500: the summary says why, not only `status`.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "route.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: apps}\n\
         spec:\n  parentRefs: [{name: cloudflare-tunnel, namespace: cloudflare-tunnel-system}]\n  hostnames: [web.example.com]\n  \
         rules:\n  - backendRefs: [{name: nowhere, port: 80}]\n",
    );
    let examples = std::fs::read_dir("examples").unwrap();
    let mut args =
        vec!["render".to_string(), "--tunnel-id".into(), "6ff42ae2-765d-4adf-8112-31c55c1551ef".into()];
    args.extend(examples.map(|e| e.unwrap().path().display().to_string()).filter(|p| p.ends_with(".yaml")));
    args.push(dir.path().display().to_string());
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "backends not resolved (a rule left with none answers http_status:500, or 503 for gRPC):\n  \
             HTTPRoute apps/web spec.rules[0].backendRefs[0]: Service apps/nowhere not found (BackendNotFound)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_exits_one_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.yml",
        "ingress:\n  - hostname: a.example.com:443\n    service: http://a:80\n  - service: http_status:404\n",
    );
    let o = run(&["validate", &config]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).to_lowercase().contains("port"), "{}", stderr(&o));
}

#[test]
fn status_prints_conditions_with_the_given_transition_time() {
    let o = run(&["status", "--tunnel-id", TUNNEL, "--transition-time", "2026-01-02T03:04:05Z", "examples/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("status is YAML");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"GatewayClass") && kinds.contains(&"Gateway") && kinds.contains(&"GRPCRoute"),
        "{kinds:?}"
    );
    let gateway = docs.iter().find(|d| d["kind"] == "Gateway").unwrap();
    assert_eq!(gateway["status"]["addresses"][0]["value"], format!("{TUNNEL}.cfargotunnel.com"));
    let programmed = gateway["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Programmed")
        .unwrap();
    assert_eq!(programmed["status"], "Unknown", "offline, Programmed is not known");
    assert_eq!(programmed["lastTransitionTime"], "2026-01-02T03:04:05Z");
}

#[test]
fn run_waits_for_an_unreachable_api_server_and_stops_on_sigterm() {
    // It used to exit 1 within a second; a pod starting during a control-plane outage then
    // crash-looped, its restarts backing off for minutes.
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write(
        dir.path(),
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:9\"}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\n\
         current-context: x\n",
    );
    let out = dir.path().join("config.yml").display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cloudflared-routes"))
        .args(["run", "--kubeconfig", &kubeconfig, "--reload", "none", "--config-out", &out])
        .args(["--admin-addr", "127.0.0.1:0", "--tunnel-id", "6ff42ae2-765d-4adf-8112-31c55c1551ef"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, line by line, until it says it retries (a loaded machine may take a while).
    let (lines, logged) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("retrying")) {
        match logged.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => log.push(line),
            Err(_) => panic!("no retry logged: {log:?}"),
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "run gave up on the API server: {log:?}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(logged.try_iter());
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert!(!std::path::Path::new(&out).exists(), "nothing is written before the source answered");
}

#[test]
fn an_unusable_kubeconfig_is_unusable_input_naming_the_file() {
    // A missing --kubeconfig exited 1, as if the cluster had failed, not the flag.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig").display().to_string();
    // A YAML error in a file that holds a token: the message gives the place, never the text.
    let broken = write(dir.path(), "broken", "users:\n- name: u\n  user: {token: SECRET-TOKEN\n");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let fifo = fifo.display().to_string();
    let out = dir.path().join("config.yml").display().to_string();
    let cases = [
        (&missing, "cannot read it: No such file or directory"),
        (&broken, "broken:"),
        (&fifo, "not a regular file (a FIFO)"),
    ];
    for (kubeconfig, want) in cases {
        let o = run_bounded(&[
            "run",
            "--kubeconfig",
            kubeconfig,
            "--reload",
            "none",
            "--config-out",
            &out,
            "--admin-addr",
            "127.0.0.1:0",
            "--tunnel-id",
            TUNNEL,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{kubeconfig}: {err}");
        assert!(err.contains(&format!("--kubeconfig {kubeconfig}: ")), "names the file: {err}");
        assert!(err.contains(want), "{kubeconfig}: {err}");
        assert!(!err.contains("SECRET-TOKEN"), "{err}");
    }
    assert!(!Path::new(&out).exists());
}

#[test]
fn a_reader_that_stops_early_ends_quietly_and_a_failed_write_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        write(dir.path(), "config.yml", &stdout(&run(&["render", "--tunnel-id", TUNNEL, "examples/"])));
    let time = "2026-01-02T03:04:05Z";
    for args in [
        &["render", "--tunnel-id", TUNNEL, "examples/"][..],
        &["status", "--tunnel-id", TUNNEL, "--transition-time", time, "examples/"],
        &["validate", &config],
    ] {
        let run_with = |out: Stdio, err: Stdio| {
            Command::new(BIN).args(args).stdout(out).stderr(err).output().expect("run cloudflared-routes")
        };
        let full = || Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
        // `| head -c 10`, at its most abrupt: the reader is gone before anything is written.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = run_with(writer.into(), Stdio::piped());
        assert_eq!(o.status.code(), Some(0), "{args:?} into a closed pipe: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));

        let o = run_with(full(), Stdio::piped());
        assert_eq!(o.status.code(), Some(2), "{args:?} > /dev/full: {}", stderr(&o));
        assert!(
            stderr(&o).contains("error: cannot write to stdout: No space left on device"),
            "{}",
            stderr(&o)
        );

        // Nowhere to say anything: the result is still whole.
        let o = run_with(Stdio::piped(), full());
        assert_eq!(o.status.code(), Some(0), "{args:?} 2> /dev/full");
        assert_eq!(stdout(&o), stdout(&run(args)), "{args:?} 2> /dev/full");
    }
}

#[test]
fn yaml_errors_of_validate_and_base_config_name_the_place_never_the_content() {
    let dir = tempfile::tempdir().unwrap();
    // A credentials file with a syntax error, given where a config belongs.
    let creds = write(
        dir.path(),
        "creds.json",
        r#"{"AccountTag":"acc","TunnelSecret":"SUPERSECRETVALUE1234567890abc","TunnelID":"x""#,
    );
    let dup = write(dir.path(), "dup.yml", "a: 1\na: 2\n");
    for (args, want) in [
        (
            vec!["validate", &creds],
            "error: error parsing YAML in config file: line 1, column 1: unclosed bracket '{'\n".to_string(),
        ),
        (
            vec!["render", "--base-config", &creds, "examples/"],
            format!("error: {creds}:1:1: unclosed bracket '{{'\n"),
        ),
        (
            vec!["render", "--base-config", &dup, "examples/"],
            format!("error: {dup}:2:1: duplicate mapping key: a not allowed here\n"),
        ),
    ] {
        let o = run(&args);
        assert_eq!(
            o.status.code(),
            Some(if args[0] == "validate" { 1 } else { 2 }),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(stderr(&o), want, "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
}

/// Runs ARGS; a run still going after 10 s (a read blocked on a FIFO, say) is killed and fails.
fn run_bounded(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cloudflared-routes");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{args:?} still running after 10 s");
        }
    }
}

#[test]
fn fifos_devices_and_oversized_files_are_refused_and_symlinks_to_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let fifo = fifo.to_str().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big).unwrap().set_len((64 << 20) + 1).unwrap();
    let big = big.to_str().unwrap();
    let out = dir.path().join("out/config.yml");
    let out = out.to_str().unwrap();
    let run_args = ["--config-out", out, "--admin-addr", "127.0.0.1:0"];
    let cases: &[(&[&str], &str)] = &[
        (&["render", fifo], "not a regular file (a FIFO)"),
        (&["status", fifo], "not a regular file (a FIFO)"),
        (&["render", "/dev/zero"], "not a regular file (a character device)"),
        (&["render", "--base-config", fifo, "examples/"], "not a regular file (a FIFO)"),
        (&["render", "--credentials-file", fifo, "examples/"], "not a regular file (a FIFO)"),
        (&["validate", fifo], "not a regular file (a FIFO)"),
        (&["validate", "/dev/zero"], "not a regular file (a character device)"),
        (&["render", big], "larger than 64 MiB, the limit of an input file"),
        (&["validate", big], "larger than 64 MiB, the limit of an input file"),
        (&[&["run", "--manifests", fifo][..], &run_args].concat(), "not a regular file (a FIFO)"),
        (
            &[&["run", "--manifests", "examples/", "--base-config", fifo][..], &run_args].concat(),
            "not a regular file (a FIFO)",
        ),
    ];
    for (args, want) in cases {
        let o = run_bounded(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
    }

    // Mounted ConfigMaps and Secrets are symlinks to regular files: read as ever.
    let credentials = write(
        dir.path(),
        "credentials.json",
        &format!(r#"{{"AccountTag":"a","TunnelSecret":"c2VjcmV0","TunnelID":"{TUNNEL}"}}"#),
    );
    let base = write(dir.path(), "base.yml", "originRequest: {connectTimeout: 10s}\n");
    let link = |target: &str, name: &str| {
        let path = dir.path().join(name);
        std::os::unix::fs::symlink(target, &path).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (credentials, base) = (link(&credentials, "credentials-link.json"), link(&base, "base-link.yml"));
    let o = run_bounded(&["render", "--credentials-file", &credentials, "--base-config", &base, "examples/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("connectTimeout: 10s") && stdout(&o).contains(TUNNEL), "{}", stdout(&o));
}
