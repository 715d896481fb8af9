//! Command-line options of the Kubernetes side of `run`: how to reach the API server, and how
//! replicas elect the one that writes status. R1's `run` flattens [`KubeOptions`].

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use routes_core::model::ObjectRef;

use crate::run::leader::{self, LeaderElectionOptions};
use crate::run::reload::parse_duration;
use crate::run::status_writer::{Ownership, StatusWriterOptions};
use crate::run::UnusableInput;

#[derive(Clone, Debug, clap::Args)]
pub struct KubeOptions {
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace of the Lease that elects the one replica writing status [default: the pod's
    /// namespace ($POD_NAMESPACE or the service account's), else the kubeconfig's, else `default`]
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// How long the Lease holder may go without renewing before another replica takes over
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// Time limit of each status read or write to the API server
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub status_timeout: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            kubeconfig: None,
            leader_election_namespace: None,
            lease_duration: Duration::from_secs(15),
            status_timeout: Duration::from_secs(10),
        }
    }
}

/// A kubeconfig error as the user should read it: a YAML error by line and column only, never
/// with the text around it, which may hold a token or a client key (`routes_core::yaml`).
fn kubeconfig_error(error: &KubeconfigError, file: &str) -> String {
    match error {
        KubeconfigError::Parse(yaml) => routes_core::yaml::ErrorMessage::new(yaml).in_file(file),
        other => other.to_string(),
    }
}

impl KubeOptions {
    /// A client for `--kubeconfig`, or kube's inference (`KUBECONFIG`, `~/.kube/config`, then
    /// the in-cluster service account). Must be called inside a Tokio runtime.
    ///
    /// Nothing here talks to the API server: every failure is in what the user gave (a
    /// kubeconfig that cannot be read or used, or none to be found), so it is
    /// [`UnusableInput`] (exit 2) and names the file. An API server that does not answer is
    /// found later, and waited for.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = path.display().to_string();
                let unusable = |why: String| UnusableInput(format!("--kubeconfig {file}: {why}"));
                // As every input file: a regular file, of bounded size (a FIFO would block).
                crate::input::read_to_string(path).map_err(|e| unusable(format!("cannot read it: {e}")))?;
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|e| unusable(kubeconfig_error(&e, &file)))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| unusable(kubeconfig_error(&e, &file)))?
            }
            None => Config::infer().await.map_err(|e| {
                // The kubeconfig's error is the likelier mistake (kube says so too).
                let why = match std::error::Error::source(&e).and_then(|s| s.downcast_ref()) {
                    Some(e @ KubeconfigError::Parse(_)) => kubeconfig_error(e, "the kubeconfig"),
                    _ => e.to_string(),
                };
                UnusableInput(format!(
                    "no Kubernetes API to use (no --kubeconfig; $KUBECONFIG, ~/.kube/config, in-cluster): {why}"
                ))
            })?,
        };
        let origin = self
            .kubeconfig
            .as_ref()
            .map_or("the Kubernetes client config".to_string(), |p| format!("--kubeconfig {}", p.display()));
        Client::try_from(config)
            .map_err(|e| UnusableInput(format!("{origin}: cannot build a client: {e}")).into())
    }

    /// The Lease's namespace: the flag, the pod's namespace, or the client's default.
    pub fn lease_namespace(&self, client: &Client) -> String {
        self.leader_election_namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(leader::pod_namespace)
            .unwrap_or_else(|| client.default_namespace().to_string())
    }

    /// Leader election for `controller_name` and the `--gateway` selection (empty: every
    /// Gateway of our classes), with the pod's identity ([`leader::identity`]).
    pub fn leader_election(
        &self,
        client: &Client,
        controller_name: &str,
        gateways: &[ObjectRef],
    ) -> LeaderElectionOptions {
        LeaderElectionOptions::for_gateways(
            &self.lease_namespace(client),
            controller_name,
            gateways,
            &leader::identity(),
            self.lease_duration,
        )
    }

    /// Status writer options for `controller_name` and the `--gateway` selection, with
    /// `--status-timeout` on every call.
    pub fn status_writer(&self, controller_name: &str, gateways: &[ObjectRef]) -> StatusWriterOptions {
        StatusWriterOptions {
            call_timeout: self.status_timeout,
            ownership: Ownership::new(controller_name, gateways),
            ..StatusWriterOptions::new(controller_name)
        }
    }
}
