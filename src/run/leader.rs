//! Leader election: which replica writes status. Every replica renders and reloads its own
//! cloudflared; only the holder of a `coordination.k8s.io/v1` Lease writes status, so replicas
//! never fight over it (DOMAIN.md §5).
//!
//! The algorithm is client-go's `leaderelection` with a `LeaseLock`: read the Lease; take it
//! when it is free, ours, or has not changed for its `leaseDurationSeconds` as measured by our
//! own clock (never by comparing `renewTime` with our clock, which may be skewed); write it back
//! with the `resourceVersion` we read, so that of two candidates racing for it one gets a 409
//! Conflict and stays a follower. A leader that cannot renew for `renew_deadline` (shorter than
//! the lease) steps down before anyone else can take over.
//!
//! Written on `Api<Lease>` rather than with `kube-lease-manager`: that crate takes a free Lease
//! through server-side apply field ownership (and its release through strategic merge patches),
//! which a test API server cannot honestly imitate, and it renews without a `resourceVersion`
//! precondition; the read-modify-`PUT` here is the protocol every Kubernetes controller uses,
//! needs only GET/POST/PUT, and is tested against the fake API server.
//!
//! `LeaseLock` is that protocol for one Lease; `--reload signal`'s restart turn
//! (`signal::LeaseTurn`) holds a second Lease with it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use routes_core::model::ObjectRef;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the Lease lives and who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionOptions {
    pub namespace: String,
    /// [`lease_name`] of the controller name and the `--gateway` selection.
    pub lease_name: String,
    /// This replica, as written in `holderIdentity` ([`identity`]).
    pub identity: String,
    /// How long a Lease that is not renewed keeps the others out.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops writing (shorter than the lease).
    pub renew_deadline: Duration,
    /// Interval between attempts to take or renew the Lease.
    pub retry_period: Duration,
}

impl LeaderElectionOptions {
    /// client-go's timing ratios (15 s lease, 10 s renew deadline, 2 s retry period), scaled to
    /// `lease_duration`. For an instance rendering every Gateway of our classes.
    pub fn new(namespace: &str, controller_name: &str, identity: &str, lease_duration: Duration) -> Self {
        Self::for_gateways(namespace, controller_name, &[], identity, lease_duration)
    }

    /// As [`LeaderElectionOptions::new`], for an instance rendering only `gateways`
    /// (`--gateway`; empty: every Gateway of our classes).
    pub fn for_gateways(
        namespace: &str,
        controller_name: &str,
        gateways: &[ObjectRef],
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        LeaderElectionOptions {
            namespace: namespace.to_string(),
            lease_name: lease_name(controller_name, gateways),
            identity: identity.to_string(),
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: (lease_duration * 2 / 15).max(Duration::from_millis(50)),
        }
    }
}

/// `leaseDurationSeconds` for a lease of `duration`: rounded up, at least 1. Others may take
/// the Lease that long after our last renewal; rounding down (1.5 s → 1) would let them take it
/// before we step down, and two replicas would lead at once.
pub(crate) fn lease_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

/// The Lease name for a controller name and a `--gateway` selection: a DNS label (lower case,
/// `-`, at most 63 characters) starting with `cloudflared-routes-`, made readable from the
/// controller name and unique by a hash of it: `cloudflared-routes/gateway-controller` gives
/// `cloudflared-routes-gateway-controller-<8 hex digits>`.
///
/// With `--gateway`, a second hash of the selection (sorted, without duplicates) follows:
/// instances sharing a controller name, one per Gateway, each elect their own leader instead of
/// one of them writing for all (the others' Gateways would get no status). Without it the name
/// is the one above, so existing deployments keep their Lease.
pub fn lease_name(controller_name: &str, gateways: &[ObjectRef]) -> String {
    const PREFIX: &str = "cloudflared-routes";
    let mut slug = String::new();
    for c in controller_name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let mut base = if slug.starts_with(PREFIX) { slug.to_string() } else { format!("{PREFIX}-{slug}") };
    let selection: BTreeSet<String> = gateways.iter().map(ToString::to_string).collect();
    // 63 = base + "-" + 8 hex digits (+ "-" + 8 hex digits with a selection).
    base.truncate(if selection.is_empty() { 54 } else { 45 });
    let base = base.trim_end_matches('-');
    let name = format!("{base}-{:08x}", fnv1a(controller_name.as_bytes()));
    if selection.is_empty() {
        return name;
    }
    // `,` appears in neither a namespace nor a name: the joined list is unambiguous.
    let selection = selection.into_iter().collect::<Vec<_>>().join(",");
    format!("{name}-{:08x}", fnv1a(selection.as_bytes()))
}

/// FNV-1a (32 bits): stable across versions and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// `POD_NAME` (set through the downward API), else `<hostname>_<pid>`: outside a pod two
/// processes on one host must not share an identity.
pub fn identity() -> String {
    if let Some(name) = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty()) {
        return name;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cloudflared-routes".to_string());
    format!("{host}_{}", std::process::id())
}

/// The pod's namespace: `POD_NAMESPACE` (downward API), else the service account's.
pub fn pod_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok())
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
}

/// Starts campaigning. The receiver says whether this replica holds the Lease now. The task
/// ends when every receiver is dropped, releasing the Lease if it holds it (so that another
/// replica takes over at once instead of after `lease_duration`).
pub fn spawn_leader_election(
    client: Client,
    opts: LeaderElectionOptions,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let (namespace, lease, identity) = (&opts.namespace, &opts.lease_name, &opts.identity);
    tracing::info!(%namespace, %lease, %identity, "leader election");
    let lock = LeaseLock::new(client, namespace, lease, identity, opts.lease_duration);
    (rx, tokio::spawn(campaign(lock, opts, tx)))
}

/// Why an attempt did not leave us holding the Lease.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Attempt {
    #[error("held by {0}")]
    HeldBy(String),
    #[error("another replica wrote the Lease first")]
    Conflict,
    #[error("timed out")]
    Timeout,
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// One Lease taken, renewed and released by read-modify-`PUT` (the module doc's protocol).
/// Leader election holds one; the `--reload signal` restart turn (`signal::LeaseTurn`) holds
/// another, so both follow the same rules for expiry and conflicts.
pub(crate) struct LeaseLock {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    /// Written as `leaseDurationSeconds` (at least 1: the field counts whole seconds).
    duration: Duration,
    /// The Lease's spec as last read, and when (our clock) it last changed.
    observed: Option<LeaseSpec>,
    observed_at: Instant,
}

impl LeaseLock {
    pub(crate) fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            observed: None,
            observed_at: Instant::now(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Takes the Lease if it is free, ours, or expired by our clock; renews it if ours.
    pub(crate) async fn try_acquire_or_renew(&mut self) -> Result<(), Attempt> {
        let now = MicroTime(Timestamp::now());
        let duration = lease_seconds(self.duration);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => Err(Attempt::Conflict),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref() != Some(&spec) {
            self.observed = Some(spec.clone());
            self.observed_at = Instant::now();
        }
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        if let (Some(holder), false) = (&holder, ours) {
            let held_for = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(duration).max(0) as u64);
            if self.observed_at.elapsed() < held_for {
                return Err(Attempt::HeldBy(holder.clone()));
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: if ours { spec.acquire_time.clone() } else { Some(now.clone()) },
            renew_time: Some(now),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..spec
        });
        // `metadata.resourceVersion` is the one read: a concurrent writer makes this a 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(written) => {
                self.observed = written.spec;
                self.observed_at = Instant::now();
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Err(Attempt::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// As client-go's `ReleaseOnCancel`: empty holder, a one-second duration, so the others
    /// take it at their next look instead of after the lease duration. A Lease someone else
    /// holds by now is left alone.
    pub(crate) async fn release(&mut self) -> Result<(), Attempt> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..spec
        });
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Err(Attempt::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

async fn campaign(mut lock: LeaseLock, opts: LeaderElectionOptions, tx: watch::Sender<bool>) {
    let mut last_renewal: Option<Instant> = None;
    // Logged at warn once per distinct error (a missing RBAC rule would otherwise repeat every
    // retry period), at debug after that.
    let mut last_error: Option<String> = None;
    loop {
        let deadline = opts.renew_deadline;
        let attempt = tokio::time::timeout(deadline, lock.try_acquire_or_renew())
            .await
            .unwrap_or(Err(Attempt::Timeout));
        let leading = *tx.borrow();
        let now_leading = match attempt {
            Ok(()) => {
                last_renewal = Some(Instant::now());
                last_error = None;
                true
            }
            Err(Attempt::HeldBy(holder)) => {
                tracing::debug!(%holder, "not the leader");
                last_error = None;
                false
            }
            Err(e) => {
                let message = e.to_string();
                if last_error.as_ref() != Some(&message) && !matches!(e, Attempt::Conflict) {
                    tracing::warn!(lease = %lock.name(), error = %message, "leader election failed; retrying");
                } else {
                    tracing::debug!(error = %message, "leader election attempt failed");
                }
                last_error = Some(message);
                // A leader keeps writing until the renew deadline, which ends before the lease
                // could be taken over by anyone else.
                leading && last_renewal.is_some_and(|t| t.elapsed() < deadline)
            }
        };
        if now_leading != leading {
            tracing::info!(lease = %lock.name(), leader = now_leading, "leadership changed");
            tx.send_replace(now_leading);
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.retry_period) => {}
            _ = tx.closed() => {
                if *tx.borrow() {
                    match tokio::time::timeout(deadline, lock.release()).await {
                        Ok(Ok(())) => tracing::info!(lease = %lock.name(), "lease released"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
                        Err(_) => tracing::warn!("releasing the lease timed out"),
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
