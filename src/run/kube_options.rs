//! Command-line options of the Kubernetes side of `run`: how to reach the API server, and how
//! replicas elect the one that writes status. R1's `run` flattens [`KubeOptions`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use routes_core::model::ObjectRef;

use crate::run::leader::{self, LeaderElectionOptions};
use crate::run::reload::parse_duration;
use crate::run::status_writer::{Ownership, StatusWriterOptions};

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

impl KubeOptions {
    /// A client for `--kubeconfig`, or kube's inference (`KUBECONFIG`, `~/.kube/config`, then
    /// the in-cluster service account). Must be called inside a Tokio runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .with_context(|| format!("using {}", path.display()))?
            }
            None => Config::infer().await.context("finding the Kubernetes API (kubeconfig or in-cluster)")?,
        };
        Client::try_from(config).context("building the Kubernetes client")
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
