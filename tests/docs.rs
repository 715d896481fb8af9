//! The documentation, checked against the code so that the two cannot drift apart:
//!
//! - docs/configuration.md lists every flag and environment variable of every subcommand, as
//!   the built binary's `<subcommand> --help` shows them, and no flag that no longer exists;
//! - every relative link in docs/*.md and README.md leads to a file that exists (and, for a
//!   link with `#anchor` into a Markdown file, to a heading of that file);
//! - docs/metrics.md lists every metric family `src/run/metrics.rs` registers, under the name a
//!   running `run` exposes on `/metrics`, with its labels, and no metric that does not exist.
//!
//! How the configuration reference is read: its level-2 sections (`## …`) name, in backticks in
//! their heading, the subcommands they document (`` ## Options of `render`, `status` and `run` ``).
//! A flag is documented by a table row of such a section whose first cell holds it
//! (`` | `--reload MODE` | `CLOUDFLARED_ROUTES_RELOAD` | … ``); the environment variable that
//! stands for the flag must be on the same row. Flags mentioned in prose (cloudflared's own
//! `--metrics`, say) are not taken for ours.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use regex::Regex;

const BIN: &str = env!("CARGO_BIN_EXE_cloudflared-routes");
const SUBCOMMANDS: &[&str] = &["render", "status", "validate", "run"];
const CONFIGURATION: &str = "docs/configuration.md";
const METRICS: &str = "docs/metrics.md";
const METRICS_SOURCE: &str = "src/run/metrics.rs";
const TIMEOUT: Duration = Duration::from_secs(30);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The command line, from `--help`.

/// One option of a subcommand, as its `--help` shows it.
#[derive(Debug)]
struct HelpOption {
    /// The long name, without `--`.
    flag: String,
    /// The environment variable shown as `[env: NAME=]`.
    env: Option<String>,
}

/// The options of `cloudflared-routes <sub> --help`, without `--help` and `--version`.
fn help_options(sub: &str) -> Vec<HelpOption> {
    // No environment: a variable that is set would show its value in the help.
    let output = Command::new(BIN).args([sub, "--help"]).env_clear().output().expect("run the binary");
    assert!(output.status.success(), "{sub} --help failed: {}", String::from_utf8_lossy(&output.stderr));
    let options = parse_help(&String::from_utf8(output.stdout).expect("UTF-8 help"));
    if sub != "validate" {
        assert!(!options.is_empty(), "no option found in `{sub} --help`: has clap's layout changed?");
    }
    options
}

/// clap's layout: an option starts on a line indented by at most 6 columns with `-x, --long`
/// or `--long`; its description follows, on the same line (short help) or on lines indented
/// further (long help), and may end with `[env: NAME=]` (`NAME=value` when it is set).
fn parse_help(text: &str) -> Vec<HelpOption> {
    let definition = Regex::new(r"^ {1,6}(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)").unwrap();
    let env = Regex::new(r"\[env: ([A-Za-z_][A-Za-z0-9_]*)=[^\]]*\]").unwrap();
    let mut options: Vec<HelpOption> = Vec::new();
    for line in text.lines() {
        if let Some(c) = definition.captures(line) {
            options.push(HelpOption { flag: c[1].to_string(), env: None });
        }
        if let Some(c) = env.captures(line) {
            let option = options.last_mut().unwrap_or_else(|| panic!("[env: ] before any option: {line}"));
            option.env = Some(c[1].to_string());
        }
    }
    options.retain(|o| o.flag != "help" && o.flag != "version");
    options
}

#[test]
fn help_parser_reads_both_layouts() {
    let short = "Options:\n      --controller-name <NAME>    Ours [env: CONTROLLER=x] [default: a]\n  \
                 -o, --output <FILE>             Write\n  -h, --help  Print help\n";
    let long = "Arguments:\n  [ARGV]...\n          e.g. `-- cloudflared --no-autoupdate tunnel run`\n\n\
                Options:\n      --reload <MODE>\n          How\n\n          Possible values:\n          \
                - none: write only\n          \n          [env: RELOAD=]\n          [default: none]\n\n      \
                --drain-timeout <DURATION>\n          see cloudflared's --grace-period\n";
    let flags = |text| parse_help(text).into_iter().map(|o| (o.flag, o.env)).collect::<Vec<_>>();
    assert_eq!(
        flags(short),
        [("controller-name".to_string(), Some("CONTROLLER".to_string())), ("output".to_string(), None)]
    );
    assert_eq!(
        flags(long),
        [("reload".to_string(), Some("RELOAD".to_string())), ("drain-timeout".to_string(), None)]
    );
}

// ---------------------------------------------------------------------------------------------
// Markdown.

/// `text` without fenced code blocks (their lines are blanked, so line numbers stay).
fn without_code_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `text` without inline code spans.
fn without_inline_code(text: &str) -> String {
    Regex::new(r"`+[^`]*`+").unwrap().replace_all(text, "").into_owned()
}

/// The cells of a table row, split on `|` but not on `\|`.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// A level-2 section of the configuration reference.
#[derive(Debug)]
struct Section {
    heading: String,
    /// The subcommands its heading names in backticks.
    commands: BTreeSet<String>,
    /// The table rows documenting flags: flag (without `--`) → the whole row.
    flags: BTreeMap<String, String>,
}

fn sections(markdown: &str) -> Vec<Section> {
    let command = Regex::new(r"`([a-z]+)`").unwrap();
    let flag = Regex::new(r"--([a-z0-9][a-z0-9-]*)").unwrap();
    let mut out: Vec<Section> = Vec::new();
    for line in without_code_blocks(markdown).lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            let commands = command
                .captures_iter(heading)
                .map(|c| c[1].to_string())
                .filter(|c| SUBCOMMANDS.contains(&c.as_str()))
                .collect();
            out.push(Section { heading: heading.to_string(), commands, flags: BTreeMap::new() });
        } else if line.trim_start().starts_with('|') {
            let Some(section) = out.last_mut() else { continue };
            let first = cells(line).into_iter().next().unwrap_or_default();
            for c in flag.captures_iter(&first) {
                section.flags.insert(c[1].to_string(), line.to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (1) and (2): flags and environment variables.

#[test]
fn every_flag_and_its_environment_variable_is_in_the_configuration_reference() {
    let sections = sections(&read(CONFIGURATION));
    let mut missing = Vec::new();
    for sub in SUBCOMMANDS {
        let documenting: Vec<&Section> = sections.iter().filter(|s| s.commands.contains(*sub)).collect();
        assert!(!documenting.is_empty(), "{CONFIGURATION}: no `## ` section names `{sub}` in its heading");
        for option in help_options(sub) {
            let rows: Vec<&String> = documenting.iter().filter_map(|s| s.flags.get(&option.flag)).collect();
            if rows.is_empty() {
                missing.push(format!("`{sub} --{}` has no table row", option.flag));
                continue;
            }
            if let Some(env) = &option.env {
                if !rows.iter().any(|row| row.contains(&format!("`{env}`"))) {
                    missing.push(format!("`{sub} --{}`: its row does not name `{env}`", option.flag));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{CONFIGURATION} is missing what the CLI has:\n  {}", missing.join("\n  "));
}

#[test]
fn every_flag_in_the_configuration_reference_exists() {
    let help: BTreeMap<&str, BTreeSet<String>> = SUBCOMMANDS
        .iter()
        .map(|sub| (*sub, help_options(sub).into_iter().map(|o| o.flag).collect()))
        .collect();
    let mut stale = Vec::new();
    for section in sections(&read(CONFIGURATION)) {
        for flag in section.flags.keys() {
            for sub in &section.commands {
                if !help[sub.as_str()].contains(flag) {
                    stale.push(format!(
                        "--{flag} (section \"{}\"): `{sub}` has no such flag",
                        section.heading
                    ));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{CONFIGURATION} documents flags the CLI does not have:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn every_environment_variable_in_the_configuration_reference_exists() {
    let known: BTreeSet<String> =
        SUBCOMMANDS.iter().flat_map(|sub| help_options(sub)).filter_map(|o| o.env).collect();
    assert!(known.contains("CLOUDFLARED_ROUTES_CONFIG_OUT"), "help parsing found no env of `run`: {known:?}");
    // Our own variables; the others the page lists (RUST_LOG, POD_NAME, …) are read directly.
    let ours = Regex::new(r"\bCLOUDFLARED_ROUTES_[A-Z0-9_]+").unwrap();
    let text = read(CONFIGURATION);
    let stale: BTreeSet<&str> =
        ours.find_iter(&text).map(|m| m.as_str()).filter(|v| !known.contains(*v)).collect();
    assert!(stale.is_empty(), "{CONFIGURATION} names environment variables the CLI does not read: {stale:?}");
}

// ---------------------------------------------------------------------------------------------
// (3) Relative links.

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces
/// turned into `-`; a repeated heading gets `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let heading = Regex::new(r"^#{1,6}\s+(.*?)\s*#*\s*$").unwrap();
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in without_code_blocks(markdown).lines() {
        let Some(c) = heading.captures(line) else { continue };
        let text = link.replace_all(&c[1], "$1");
        let slug: String = text
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    out
}

/// The link targets of a Markdown text, outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let inline = Regex::new(r#"\]\(\s*<?([^()\s<>]+)>?(?:\s+"[^"]*")?\s*\)"#).unwrap();
    let reference = Regex::new(r"(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)").unwrap();
    let text = without_inline_code(&without_code_blocks(markdown));
    inline.captures_iter(&text).chain(reference.captures_iter(&text)).map(|c| c[1].to_string()).collect()
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.push(root().join("README.md"));
    files
}

#[test]
fn relative_links_lead_to_existing_files_and_headings() {
    let scheme = Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*:").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        for target in link_targets(&text) {
            if scheme.is_match(&target) {
                continue; // https:, mailto:
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            if !resolved.exists() {
                broken.push(format!("{shown}: ({target}): {} does not exist", resolved.display()));
                continue;
            }
            if anchor.is_empty() || resolved.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let headings = anchors(&std::fs::read_to_string(&resolved).unwrap());
            if !headings.contains(anchor) {
                broken.push(format!("{shown}: ({target}): no heading with anchor #{anchor}"));
            }
        }
    }
    assert!(checked > 0, "no relative link found: is the link parser broken?");
    assert!(broken.is_empty(), "broken links:\n  {}", broken.join("\n  "));
}

#[test]
fn markdown_helpers() {
    assert_eq!(
        anchors("# A `b`, c\n```\n# not a heading\n```\n## A b, c\n### [Link](x.md) and_under-score\n"),
        ["a-b-c", "a-b-c-1", "link-and_under-score"].into_iter().map(String::from).collect()
    );
    assert_eq!(
        link_targets("[a](x.md) `[b](code.md)` [c](y.md#z \"title\")\n```\n[d](fenced.md)\n```\n[e]: z.md\n"),
        ["x.md", "y.md#z", "z.md"]
    );
    assert_eq!(cells("| `--reload none\\|signal` | b |"), ["`--reload none|signal`", "b"]);
}

// ---------------------------------------------------------------------------------------------
// (4) Metrics.

/// The families `src/run/metrics.rs` registers, with the names they are exposed under:
/// `<prefix>_<name>[_<unit>]`.
fn registered_families() -> BTreeSet<String> {
    let source = read(METRICS_SOURCE);
    let prefix = Regex::new(r#"Registry::with_prefix\(\s*"([a-z0-9_]+)"\s*\)"#).unwrap();
    let prefix =
        prefix.captures(&source).unwrap_or_else(|| panic!("{METRICS_SOURCE}: no Registry::with_prefix"))[1]
            .to_string();
    let call = Regex::new(
        r#"registry\s*\.\s*register(_with_unit)?\s*\(\s*"([a-z0-9_]+)"\s*,\s*"(?:[^"\\]|\\.)*"\s*,\s*(?:Unit::([A-Za-z]+)\s*,)?"#,
    )
    .unwrap();
    let families: BTreeSet<String> = call
        .captures_iter(&source)
        .map(|c| {
            assert_eq!(c.get(1).is_some(), c.get(3).is_some(), "a register call read wrongly: {}", &c[0]);
            match c.get(3) {
                Some(unit) => format!("{prefix}_{}_{}", &c[2], unit.as_str().to_lowercase()),
                None => format!("{prefix}_{}", &c[2]),
            }
        })
        .collect();
    let calls = source.matches("registry.register").count();
    assert_eq!(
        families.len(),
        calls,
        "{METRICS_SOURCE}: {calls} register calls, {} read: {families:?}",
        families.len()
    );
    families
}

/// A running `cloudflared-routes run` on a copy of examples/, killed when dropped.
struct Running {
    child: Child,
    admin: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Running {
    fn start() -> Running {
        let manifests = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(root().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, manifests.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--manifests"])
            .arg(manifests.path())
            .arg("--config-out")
            .arg(out.path().join("config.yml"))
            .args(["--reload", "none", "--admin-addr", "127.0.0.1:0"])
            .args(["--tunnel-id", "6ff42ae2-765d-4adf-8112-31c55c1551ef"])
            // Nothing from the environment (TUNNEL_CRED_FILE, CLOUDFLARED_ROUTES_*) may change it.
            .env_clear()
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cloudflared-routes run");
        let (tx, rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("[run] {line}");
                if line.contains("admin server listening") {
                    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("addr="));
                    let _ = tx.send(addr.unwrap_or_default().to_string());
                }
            }
        });
        let admin = rx.recv_timeout(TIMEOUT).expect("no `admin server listening` log line");
        Running { child, admin, _dirs: (manifests, out) }
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(&self.admin).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An exposed family: its type and the label names of its series.
#[derive(Debug, Default)]
struct Exposed {
    kind: String,
    labels: BTreeSet<String>,
}

/// `/metrics` of a running `run`, once it has rendered the examples.
fn exposed_families() -> BTreeMap<String, Exposed> {
    let running = Running::start();
    let deadline = Instant::now() + TIMEOUT;
    let text = loop {
        let text = running.get("/metrics");
        // The routes gauge gets its series with the first render.
        if text.contains("cloudflared_routes_routes{") {
            break text;
        }
        assert!(Instant::now() < deadline, "no render within {TIMEOUT:?}; /metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let type_line = Regex::new(r"^# TYPE (\S+) (\S+)").unwrap();
    let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}").unwrap();
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).unwrap();
    // OpenMetrics: a family's `# TYPE` line comes before its samples.
    let mut families: BTreeMap<String, Exposed> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(c) = type_line.captures(line) {
            families.entry(c[1].to_string()).or_default().kind = c[2].to_string();
            current = Some(c[1].to_string());
        } else if let Some(c) = sample.captures(line) {
            let family =
                current.as_ref().unwrap_or_else(|| panic!("a sample before any # TYPE line: {line}"));
            assert!(c[1].starts_with(family.as_str()), "sample {} under # TYPE {family}", &c[1]);
            let labels = label.captures_iter(&c[2]).map(|l| l[1].to_string()).filter(|l| l != "le");
            families.get_mut(family).unwrap().labels.extend(labels);
        }
    }
    assert!(!families.is_empty(), "no # TYPE line in /metrics:\n{text}");
    families
}

/// The names a family's series are queried by.
fn series_names(family: &str, kind: Option<&str>) -> Vec<String> {
    match kind {
        Some("counter") => vec![format!("{family}_total")],
        Some("histogram") => {
            ["", "_bucket", "_sum", "_count"].iter().map(|s| format!("{family}{s}")).collect()
        }
        Some(_) => vec![family.to_string()],
        None => vec![family.to_string(), format!("{family}_total")],
    }
}

#[test]
fn every_metric_is_in_the_metrics_reference() {
    let registered = registered_families();
    let exposed = exposed_families();
    let unknown: Vec<&String> = exposed.keys().filter(|f| !registered.contains(*f)).collect();
    assert!(
        unknown.is_empty(),
        "/metrics has families {METRICS_SOURCE} was not read to register: {unknown:?}"
    );

    let doc = read(METRICS);
    let token = Regex::new(r"cloudflared_routes_[a-z0-9_]*[a-z0-9]").unwrap();
    let named: BTreeSet<&str> = token.find_iter(&doc).map(|m| m.as_str()).collect();
    let mut missing = Vec::new();
    for family in &registered {
        let found = exposed.get(family);
        let kind = found.map(|e| e.kind.as_str());
        // The first name is the one a user queries (`…_total` for a counter).
        let names = series_names(family, kind);
        let Some(name) = names.iter().find(|n| named.contains(n.as_str())) else {
            missing.push(format!("{} ({})", names[0], kind.unwrap_or("not exposed yet")));
            continue;
        };
        // Its table row names every label.
        let row = doc.lines().find(|l| l.starts_with('|') && cells(l)[0] == format!("`{name}`"));
        let Some(row) = row else {
            missing.push(format!("{name}: no table row whose first cell is `{name}`"));
            continue;
        };
        for label in found.map(|e| &e.labels).into_iter().flatten() {
            if !row.contains(&format!("`{label}`")) {
                missing.push(format!("{name}: its row does not name the label `{label}`"));
            }
        }
    }
    assert!(missing.is_empty(), "{METRICS} is missing:\n  {}", missing.join("\n  "));

    // And names nothing that does not exist (alert examples included).
    let valid: BTreeSet<String> = registered
        .iter()
        .flat_map(|f| {
            let kind = exposed.get(f).map(|e| e.kind.as_str());
            let mut names = series_names(f, kind);
            names.push(f.clone());
            names
        })
        .collect();
    let stale: Vec<&&str> = named.iter().filter(|n| !valid.contains(**n)).collect();
    assert!(stale.is_empty(), "{METRICS} names metrics that do not exist: {stale:?}");
}
