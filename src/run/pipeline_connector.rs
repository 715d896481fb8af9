//! What the pipeline hears, between reloads, from a reloader that runs cloudflared itself
//! (`supervise`): the serving child exited, or its keeper started it again.
//!
//! ```text
//! Exited  → /readyz 503 (why), child_serving 0, Programmed False/Pending
//! Restarted → verify its /config against the file on disk
//!           → ok: /readyz 200, child_serving 1, Programmed True
//!           → not: Programmed False/Invalid; the next change or resync reloads
//! ```
//!
//! Without this, a child in a crash loop (a revoked tunnel, a bad flag, OOM) left the pod Ready
//! and the Gateways Programmed, with no connector anywhere: the keeper restarted it in silence.

use routes_core::status::Programmed;

use super::super::metrics::ResultLabel;
use super::super::reload::{ConnectorEvent, Reloader};
use super::{ChangeStream, Changes, Flow, Pipeline, Verifier, Wake};

impl<R: Reloader, V: Verifier> Pipeline<R, V> {
    /// A cloudflared was seen serving the file (a reload went well, or its `/config` showed the
    /// rendered rules): what an exit of the supervised child took away is back.
    pub(super) fn connector_serving(&self) {
        if self.reloader.starts_cloudflared() {
            self.health.set_serving();
            self.metrics.child_serving.set(1);
        }
    }

    pub(super) async fn on_connector(&mut self, event: ConnectorEvent, changes: &mut Changes) -> Flow {
        match event {
            ConnectorEvent::Exited(how) => {
                self.connector_exited(&how);
                Flow::Idle
            }
            ConnectorEvent::Restarted => self.verify_restarted(changes).await,
        }
    }

    /// The serving child is gone: this pod has no connector until a restart of it serves.
    fn connector_exited(&mut self, how: &str) {
        let why = format!(
            "no cloudflared runs the config: the supervised cloudflared {how}; it is restarted with back-off"
        );
        tracing::error!("{why}");
        self.health.set_down(why.clone());
        self.metrics.child_serving.set(0);
        let before = std::mem::replace(&mut self.programmed, Programmed::Down(why));
        // The next change with the same bytes looks at the restarted child instead of doing
        // nothing (the restart itself is the keeper's).
        self.unverified = true;
        self.republish(&before);
    }

    /// The keeper started the child again: it read the file on disk, so that is what it must
    /// show. Another exit, a change or shutdown cut the wait short.
    async fn verify_restarted(&mut self, changes: &mut Changes) -> Flow {
        let Some(addr) = self.reloader.metrics_addr() else { return Flow::Idle };
        let writer = self.writer.clone();
        let text = match tokio::task::spawn_blocking(move || writer.current()).await {
            Ok(Ok(Some(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            // Gone or unreadable: the next change or resync writes it again and reloads.
            Ok(Ok(None)) => return self.cannot_verify("it is gone"),
            Ok(Err(e)) => return self.cannot_verify(&e.to_string()),
            Err(e) => return self.cannot_verify(&e.to_string()),
        };
        let timeout = self.config.verify_timeout;
        enum Cut {
            Verified(Result<(), String>),
            Connector(ConnectorEvent),
            Wake(Wake),
        }
        loop {
            let cut = tokio::select! {
                r = self.verifier.verify(addr, &text, timeout) => Cut::Verified(r),
                event = self.reloader.connector_event() => Cut::Connector(event),
                wake = changes.next() => Cut::Wake(wake),
            };
            let verified = match cut {
                Cut::Verified(verified) => verified,
                Cut::Connector(ConnectorEvent::Exited(how)) => {
                    self.connector_exited(&how);
                    return Flow::Idle;
                }
                // (An exit is always reported before the restart that follows it.)
                Cut::Connector(ConnectorEvent::Restarted) => continue,
                Cut::Wake(Wake::Shutdown) => return Flow::Shutdown,
                // Newer objects: rendered first; with the same bytes the step verifies again.
                Cut::Wake(_) => return Flow::Changed,
            };
            let before = self.programmed.clone();
            match verified {
                Ok(()) => {
                    self.metrics.verifications.get_or_create(&ResultLabel::new("ok")).inc();
                    tracing::info!(%addr, "the restarted cloudflared runs the config");
                    self.programmed = Programmed::Yes;
                    self.unverified = false;
                    if self.wrote_a_render {
                        // It runs our last written render: what a reload would have achieved.
                        self.retry = false;
                        self.started = true;
                        self.health.set_ready();
                    }
                    self.connector_serving();
                }
                Err(e) => {
                    self.metrics.verifications.get_or_create(&ResultLabel::new("failed")).inc();
                    tracing::warn!(%addr, error = %e, "the restarted cloudflared does not run the config; reloading on the next change or resync");
                    self.programmed = Programmed::No(format!(
                        "the restarted cloudflared does not run the rendered config: {e}"
                    ));
                    self.retry = true;
                }
            }
            self.republish(&before);
            return Flow::Idle;
        }
    }

    fn cannot_verify(&mut self, why: &str) -> Flow {
        let path = self.writer.target().display().to_string();
        tracing::warn!(path, "cannot read the config the restarted cloudflared runs: {why}");
        self.retry = true;
        Flow::Idle
    }

    /// cloudflared's state changed between renders: publish it with the last statuses, unless
    /// the last report says something other than `before` (a refused render or a failed write,
    /// whose message stands until a render replaces it).
    fn republish(&self, before: &Programmed) {
        let last = self.status.borrow().clone();
        if let Some(report) = last.filter(|report| report.programmed == *before) {
            self.publish(report.statuses.clone(), self.programmed.clone());
        }
    }
}

#[cfg(test)]
#[path = "pipeline_connector_tests.rs"]
mod tests;
