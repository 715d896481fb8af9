//! Starting cloudflared on the `config.yml` already on disk, when `run` is what starts it
//! (`supervise`) and has no render of its own to start it on:
//!
//! - **the source is not synced yet**: the Kubernetes API does not answer (the sidecar's
//!   container restarted during a control-plane outage; the `emptyDir` still holds the last
//!   config written), or a manifest file is broken from the start. The tunnel serves the last
//!   config written until the objects are read; then the usual render, compare and restart
//!   take over, with no restart when the render gives the same bytes;
//! - **the first render is refused** (a bad base config): the last good config serves until it
//!   is fixed.
//!
//! ```text
//! config.yml there? → cloudflared accepts it (our validation)? → names our tunnel? → start
//!                                                 (any no: cloudflared starts with the first accepted render)
//! ```
//!
//! Neither is a config of the current objects, so `/readyz` stays 503 (its body says what
//! serves) and no status is published from it: readiness and `Programmed` say that the
//! current objects are served, which nothing shows yet (docs/run.md).

use routes_core::render;
use routes_core::validate;
use serde::Deserialize;

use super::super::files::RenderInputs;
use super::super::metrics::ResultLabel;
use super::super::reload::{self, Reloader};
use super::{ChangeStream, Changes, Flow, Pipeline, Verifier, Wake};
use crate::log_text::escaped;

/// Why cloudflared is started on the file already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnDisk {
    /// The source of objects is not synced yet.
    Unsynced,
    /// The first render was refused.
    Refused,
}

impl OnDisk {
    /// What `/readyz` answers while cloudflared serves that file.
    fn not_ready(self) -> &'static str {
        match self {
            OnDisk::Unsynced => {
                "cloudflared serves the last config.yml written (by an earlier run): the objects are not \
                 read yet (the source is not synced), so it is not known to be current"
            }
            OnDisk::Refused => {
                "cloudflared serves the config.yml already there (an earlier run's): the current objects' \
                 config is refused"
            }
        }
    }
}

impl<R: Reloader, V: Verifier> Pipeline<R, V> {
    /// Waits until the source is synced; with a reloader that starts cloudflared, cloudflared
    /// serves the last config written meanwhile, if there is a usable one. Hears of the
    /// child's exits and restarts while it waits. `Ok(false)`: shutdown.
    pub(super) async fn wait_for_sync(&mut self, changes: &mut Changes) -> anyhow::Result<bool> {
        if changes.source.borrow().synced {
            return Ok(true);
        }
        if self.reloader.starts_cloudflared() {
            let inputs = changes.inputs.borrow().clone();
            self.start_on_the_file_there(&inputs, OnDisk::Unsynced, changes).await;
            if *changes.shutdown.borrow() {
                return Ok(false);
            }
        }
        enum Woken {
            Wake(Wake),
            Connector(reload::ConnectorEvent),
        }
        while !changes.source.borrow().synced {
            tracing::debug!("waiting for the source to sync");
            let woken = tokio::select! {
                wake = changes.next() => Woken::Wake(wake),
                event = self.reloader.connector_event(), if self.started => Woken::Connector(event),
            };
            match woken {
                Woken::Wake(Wake::Changed) => {}
                Woken::Wake(Wake::Shutdown) => return Ok(false),
                Woken::Wake(Wake::Closed) => anyhow::bail!("the source of objects stopped before it synced"),
                Woken::Connector(event) => {
                    if let Flow::Shutdown = self.on_connector(event, changes).await {
                        return Ok(false);
                    }
                }
            }
        }
        if self.started {
            // The first render decides: the same bytes are verified as they run (no restart),
            // other bytes are written and reloaded. (Unless the child was seen not to run the
            // file: `retry` then reloads it anyway.)
            tracing::info!("the source is synced: what cloudflared serves follows the objects again");
            self.unverified = true;
            self.health.set_before_ready(None);
        }
        Ok(true)
    }

    /// Starts cloudflared on the config already on disk if cloudflared would accept it and it
    /// names the tunnel of the current inputs. Not verified beyond what the reload checks, and
    /// `/readyz` stays 503: this is not a config of the current objects. After a refused
    /// render, the next accepted one is reloaded (and verified) even if its bytes are the same.
    pub(super) async fn start_on_the_file_there(
        &mut self,
        inputs: &RenderInputs,
        why: OnDisk,
        changes: &Changes,
    ) {
        let path = self.writer.target().to_path_buf();
        let not_started = match why {
            OnDisk::Unsynced => "cloudflared starts once the source is synced and a render is accepted",
            OnDisk::Refused => "cloudflared starts once a render is accepted",
        };
        let writer = self.writer.clone();
        let text = match tokio::task::spawn_blocking(move || writer.current()).await {
            // Not UTF-8: empty, which cloudflared would refuse (below).
            Ok(Ok(Some(bytes))) => String::from_utf8(bytes).unwrap_or_default(),
            Ok(Ok(None)) => {
                tracing::warn!(path = %path.display(), "no config.yml from an earlier run: {not_started}");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the config.yml already there: {not_started}");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the config.yml already there failed");
                return;
            }
        };
        let report = validate::validate_str(&text);
        if text.trim().is_empty() || !report.is_valid() {
            tracing::warn!(path = %path.display(), "the config.yml already there would be refused by cloudflared: {not_started}");
            return;
        }
        if let Err(theirs) = names_our_tunnel(&text, inputs) {
            tracing::warn!(path = %path.display(), "the config.yml already there is another tunnel's ({}): {not_started}", escaped(&theirs));
            return;
        }
        self.reloader.use_config_metrics(reload::metrics_from_config(&text));
        match self.reloader.reload(&path).await {
            Ok(()) => {
                match why {
                    OnDisk::Unsynced => tracing::warn!(
                        path = %path.display(),
                        "the source of objects is not synced (the Kubernetes API may not answer, or the \
                         manifest files are not all readable or hold no Gateway of ours yet): cloudflared serves \
                         the last config.yml written, by an earlier run, until the objects are read and \
                         rendered; not ready meanwhile"
                    ),
                    OnDisk::Refused => tracing::warn!(
                        path = %path.display(),
                        "cloudflared started on the config.yml already there (an earlier run's); the current \
                         objects are not served until a render is accepted"
                    ),
                }
                self.started = true;
                // After a refused render, the next accepted one is reloaded even with the same
                // bytes; before the sync, the first render's bytes decide (`wait_for_sync`).
                self.retry = why == OnDisk::Refused;
                self.health.set_before_ready(Some(why.not_ready().to_string()));
                self.connector_serving();
                self.metrics.reloads.get_or_create(&ResultLabel::new("ok")).inc();
            }
            // SIGTERM: the reloader gave up its waits; nothing failed.
            Err(e) if *changes.shutdown.borrow() => tracing::info!(error = %e, "start abandoned: stopping"),
            Err(e) => self.reload_failed(&e),
        }
    }
}

/// `Ok` when the config `text` names the tunnel the current inputs name (`--credentials-file`,
/// `--tunnel-id`, or the base config's `tunnel:`), as the config rendered now would; else the
/// tunnel it names. With none in the inputs, the tunnel is named after `run` in cloudflared's
/// command line (`run` refuses to start otherwise), which is what cloudflared runs.
fn names_our_tunnel(text: &str, inputs: &RenderInputs) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        tunnel: Option<String>,
    }
    let tunnel = |yaml: &str| -> Option<String> {
        let named: Named = serde_saphyr::from_str_with_options(yaml, routes_core::yaml::options()).ok()?;
        named.tunnel
    };
    let frame = render::render_rules(&Default::default(), false, &inputs.base, &inputs.tunnel).text;
    match (tunnel(&frame), tunnel(text)) {
        (None, _) => Ok(()),
        (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
        (Some(_), theirs) => {
            Err(theirs.map_or_else(|| "no tunnel: key".to_string(), |t| format!("tunnel: {t}")))
        }
    }
}

#[cfg(test)]
#[path = "pipeline_on_disk_tests.rs"]
mod tests;
