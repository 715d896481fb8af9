//! The command line: `render`, `status` and `validate`.
//!
//! Exit codes: 0 success; 1 the config is invalid (`validate`, or a `render` whose result
//! cloudflared would refuse, e.g. because of the base config); 2 unusable input (an unreadable
//! file, malformed YAML, a bad flag value), with nothing on stdout, or output that cannot be
//! written (a full disk). A reader that stops early (`render | head`) is not a failure: see
//! [`print`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use routes_core::model::ObjectRef;
use routes_core::render::{self, BaseConfig, BaseConfigError, Tunnel};
use routes_core::translate::{self, GrpcBackendTls, Settings, Translation, DEFAULT_CONTROLLER_NAME};
use routes_core::validate;

use crate::{credentials, manifests, run, status_yaml, summary};

#[derive(Debug, Parser)]
#[command(
    name = "cloudflared-routes",
    version,
    about = "Publish Gateway API routes through a locally-managed Cloudflare Tunnel: Gateway API objects in, cloudflared config.yml out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the cloudflared config.yml for the Gateway API objects in PATHs (files or directories)
    Render {
        #[command(flatten)]
        options: RenderOptions,
        /// Write the config to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Manifest files or directories (walked for *.yaml and *.yml)
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the status this controller would write on every object it owns, as YAML
    Status {
        #[command(flatten)]
        options: RenderOptions,
        /// lastTransitionTime of every condition, RFC 3339 (default: now); for reproducible output
        #[arg(long, value_name = "TIME")]
        transition_time: Option<String>,
        /// Manifest files or directories (walked for *.yaml and *.yml)
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Check a cloudflared config file the way cloudflared does at start-up
    Validate {
        /// The cloudflared config.yml
        #[arg(value_name = "CONFIG")]
        config: PathBuf,
    },
    /// Watch objects and keep cloudflared's config.yml in step with them
    Run(Box<run::RunOptions>),
}

#[derive(Debug, Clone, Args)]
pub struct RenderOptions {
    /// GatewayClasses whose spec.controllerName equals NAME are ours
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CONTROLLER_NAME, env = "CLOUDFLARED_ROUTES_CONTROLLER_NAME")]
    pub controller_name: String,
    /// Only this Gateway, as NAMESPACE/NAME (repeatable; default: every Gateway of our classes). One config is one tunnel
    #[arg(long = "gateway", value_name = "NAMESPACE/NAME", value_parser = parse_object_ref)]
    pub gateways: Vec<ObjectRef>,
    /// The tunnel's credentials.json: its TunnelID becomes `tunnel:` and the path `credentials-file:`
    #[arg(long, value_name = "PATH", env = "TUNNEL_CRED_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// The tunnel's UUID, when no credentials file is given (or to check it)
    #[arg(long, value_name = "UUID")]
    pub tunnel_id: Option<String>,
    /// A cloudflared YAML whose keys (but `ingress`) are kept as written; its ingress rules follow the generated ones
    #[arg(long, value_name = "FILE")]
    pub base_config: Option<PathBuf>,
    /// Kubernetes cluster domain of Service hostnames
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// TLS checking of gRPC backends: insecure emits noTLSVerify, verify leaves caPool to the base config
    #[arg(long, value_enum, value_name = "MODE", default_value_t = GrpcTls::Insecure)]
    pub grpc_backend_tls: GrpcTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrpcTls {
    Insecure,
    Verify,
}

fn parse_object_ref(s: &str) -> Result<ObjectRef, String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(ObjectRef { namespace: ns.to_string(), name: name.to_string() })
        }
        _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
    }
}

/// An error with the exit code it stands for.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn input(message: impl std::fmt::Display) -> Failure {
        Failure { code: 2, message: message.to_string() }
    }
}

/// Everything a render needs, read from files and flags.
pub struct Prepared {
    pub loaded: manifests::Loaded,
    pub settings: Settings,
    pub base: BaseConfig,
    pub tunnel: Tunnel,
}

impl RenderOptions {
    pub fn prepare(&self, paths: &[PathBuf]) -> Result<Prepared, Failure> {
        let loaded = manifests::load_paths(paths).map_err(Failure::input)?;
        // An object kubectl would refuse: left out, the output would silently lack it (a
        // Gateway with `port: "80"` would leave the tunnel with no route at all).
        if !loaded.refused.is_empty() {
            return Err(Failure::input(format!(
                "cannot read these objects (kubectl would refuse them too):\n  {}",
                loaded.refused.join("\n  ")
            )));
        }
        let tunnel = self.tunnel()?;
        let base = match &self.base_config {
            None => BaseConfig::default(),
            Some(path) => {
                let text = read(path)?;
                let shown = path.display().to_string();
                BaseConfig::parse(&text).map_err(|e| {
                    Failure::input(match e {
                        BaseConfigError::Yaml(yaml) => yaml.in_file(&shown),
                        other => format!("{shown}: {other}"),
                    })
                })?
            }
        };
        let settings = Settings {
            controller_name: self.controller_name.clone(),
            gateways: self.gateways.clone(),
            cluster_domain: self.cluster_domain.clone(),
            tunnel_id: tunnel.id.clone(),
            grpc_backend_tls: match self.grpc_backend_tls {
                GrpcTls::Insecure => GrpcBackendTls::Insecure,
                GrpcTls::Verify => GrpcBackendTls::Verify,
            },
        };
        Ok(Prepared { loaded, settings, base, tunnel })
    }

    fn tunnel(&self) -> Result<Tunnel, Failure> {
        let flag = self
            .tunnel_id
            .as_deref()
            .map(credentials::check_tunnel_id)
            .transpose()
            .map_err(Failure::input)?;
        let Some(path) = &self.credentials_file else {
            return Ok(Tunnel { id: flag, credentials_file: None });
        };
        let id = credentials::read_tunnel_id(path).map_err(Failure::input)?;
        if let Some(flag) = flag {
            if flag != id {
                return Err(Failure::input(format!(
                    "--tunnel-id {flag} differs from the TunnelID {id} of {}",
                    path.display()
                )));
            }
        }
        // Written into config.yml for cloudflared to open: a lossy rendering would name
        // another file.
        let Some(shown) = path.to_str() else {
            return Err(Failure::input(format!(
                "--credentials-file {}: the path is not UTF-8, so config.yml cannot name it",
                path.display()
            )));
        };
        Ok(Tunnel { id: Some(id), credentials_file: Some(shown.to_string()) })
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    crate::input::read_to_string(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

/// Run one command, writing its result to stdout and its summary to stderr.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Render { options, output, paths } => {
            let prepared = options.prepare(&paths)?;
            let translation = translate::translate(&prepared.loaded.snapshot, &prepared.settings);
            let rendered = render::render(&translation, &prepared.base, &prepared.tunnel);
            eprint(&summary::render_summary(&prepared, &translation, &rendered));
            let report = validate::validate_str(&rendered.text);
            if !report.is_valid() {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "the rendered config would be refused by cloudflared; nothing written:\n{}",
                        summary::findings(&report.errors)
                    ),
                });
            }
            match output {
                None => print(&rendered.text)?,
                Some(path) => std::fs::write(&path, &rendered.text)
                    .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?,
            }
            Ok(())
        }
        Command::Status { options, transition_time, paths } => {
            let prepared = options.prepare(&paths)?;
            let translation: Translation =
                translate::translate(&prepared.loaded.snapshot, &prepared.settings);
            let time = match transition_time {
                Some(t) => {
                    let parsed: k8s_openapi::jiff::Timestamp =
                        t.parse().map_err(|e| Failure::input(format!("--transition-time {t:?}: {e}")))?;
                    rfc3339(parsed)
                }
                None => rfc3339(k8s_openapi::jiff::Timestamp::now()),
            };
            for warning in &prepared.loaded.warnings {
                eprint(&format!("warning: {warning}\n"));
            }
            print(&status_yaml::to_yaml(&translation.statuses, &prepared.settings.controller_name, &time))
        }
        Command::Run(options) => run_command(options),
        Command::Validate { config } => {
            let text = read(&config)?;
            let report = validate::validate_str(&text);
            for warning in &report.warnings {
                eprint(&format!("warning: {}\n", summary::finding(warning)));
            }
            if report.is_valid() {
                print("OK\n")
            } else {
                Err(Failure { code: 1, message: summary::findings(&report.errors) })
            }
        }
    }
}

/// Writes a command's result on stdout. The print macros panic when that fails (exit 101).
///
/// Rust ignores SIGPIPE, so a reader that stops early (`render | head`, `| grep -q`) shows up
/// here as a broken pipe: the command then ends quietly with exit 0, as ripgrep does, instead
/// of dying of the signal as C tools do (141 in a shell): the reader took what it wanted, and
/// its own exit status says whether that was enough (a `pipefail` script would otherwise fail
/// on every `| grep -q`). Any other failure (`> /dev/full`) leaves the output unusable: exit 2.
fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::input(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes a summary, warning or error on stderr, if it can: there is nowhere to report that
/// stderr itself failed, and the result on stdout (or the exit code) stays good.
pub fn eprint(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `run` is the only asynchronous command: its runtime is built here, for it alone. Two
/// workers: the pipeline, the watchers and the admin server are mostly idle.
fn run_command(options: Box<run::RunOptions>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure { code: 1, message: format!("cannot start the async runtime: {e}") })?;
    let result = runtime.block_on(run::run(*options));
    // Tasks still running (only after a forced stop) are dropped, their children killed; a
    // blocking call in progress is not waited for long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map_err(|e| Failure {
        code: if e.is::<run::UnusableInput>() { 2 } else { 1 },
        message: format!("{e:#}"),
    })
}

/// Kubernetes writes times as RFC 3339 in UTC with whole seconds.
fn rfc3339(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
