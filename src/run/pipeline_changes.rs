//! What wakes the pipeline: changes of the objects or the render inputs, and shutdown
//! ([`Changes`]), coalesced into one render per burst ([`Debounce`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::super::files::InputsReceiver;
use super::super::source::SourceReceiver;

/// Why the pipeline woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The objects or the render inputs changed.
    Changed,
    /// SIGTERM/SIGINT: stop.
    Shutdown,
    /// The source went away (its task ended): nothing more will come.
    Closed,
}

/// A stream of change notifications (the real one: [`Changes`]; tests use a channel).
pub trait ChangeStream: Send {
    fn next(&mut self) -> impl Future<Output = Wake> + Send;
}

/// Coalesces bursts: after a first change, wait until there has been no change for `quiet`,
/// but never longer than `max_delay` after that first change, so a steady trickle of changes
/// (a busy cluster) still reaches the file.
#[derive(Clone, Copy, Debug)]
pub struct Debounce {
    pub quiet: Duration,
    pub max_delay: Duration,
}

impl Debounce {
    /// Call after a change arrived. `Changed` means: settled, render now.
    pub async fn settle(&self, changes: &mut impl ChangeStream) -> Wake {
        let deadline = Instant::now() + self.max_delay;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Wake::Changed;
            }
            let quiet_end = (now + self.quiet).min(deadline);
            tokio::select! {
                _ = sleep_until(quiet_end) => return Wake::Changed,
                wake = changes.next() => match wake {
                    Wake::Changed => continue,
                    other => return other,
                },
            }
        }
    }
}

/// The pipeline's inputs: the source, the render inputs, and the shutdown flag.
pub struct Changes {
    pub source: SourceReceiver,
    pub inputs: InputsReceiver,
    pub shutdown: watch::Receiver<bool>,
    /// The render inputs' sender is gone when no file is watched: they never change then.
    inputs_open: bool,
}

impl Changes {
    pub fn new(source: SourceReceiver, inputs: InputsReceiver, shutdown: watch::Receiver<bool>) -> Changes {
        Changes { source, inputs, shutdown, inputs_open: true }
    }
}

impl ChangeStream for Changes {
    async fn next(&mut self) -> Wake {
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Wake::Shutdown,
                r = self.source.changed() => return if r.is_ok() { Wake::Changed } else { Wake::Closed },
                r = self.inputs.changed(), if self.inputs_open => match r {
                    Ok(()) => return Wake::Changed,
                    Err(_) => self.inputs_open = false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    // ---- debounce, on tokio's paused clock ----

    /// Changes delivered by a test through a channel; a closed channel means shutdown.
    struct Scripted(mpsc::UnboundedReceiver<()>);

    impl ChangeStream for Scripted {
        async fn next(&mut self) -> Wake {
            match self.0.recv().await {
                Some(()) => Wake::Changed,
                None => Wake::Shutdown,
            }
        }
    }

    const DEBOUNCE: Debounce =
        Debounce { quiet: Duration::from_millis(200), max_delay: Duration::from_secs(2) };

    /// Sends a change at each offset (from the start), then keeps the channel open.
    fn changes_at(offsets_ms: Vec<u64>) -> (Scripted, tokio::task::JoinHandle<mpsc::UnboundedSender<()>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for ms in offsets_ms {
                sleep_until(start + Duration::from_millis(ms)).await;
                tx.send(()).unwrap();
            }
            tx
        });
        (Scripted(rx), sender)
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_waits_for_a_quiet_period_after_the_last_change() {
        let (mut changes, _sender) = changes_at(vec![100, 250]);
        let start = Instant::now();
        assert_eq!(DEBOUNCE.settle(&mut changes).await, Wake::Changed);
        // Last change at 250 ms + 200 ms of quiet.
        assert_eq!(start.elapsed(), Duration::from_millis(450));
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_without_further_changes_waits_the_quiet_period_only() {
        let (mut changes, _sender) = changes_at(vec![]);
        let start = Instant::now();
        assert_eq!(DEBOUNCE.settle(&mut changes).await, Wake::Changed);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_gives_up_waiting_at_the_max_delay_under_a_steady_trickle() {
        // A change every 150 ms for 10 s: never 200 ms of quiet.
        let (mut changes, _sender) = changes_at((1..=66).map(|i| i * 150).collect());
        let start = Instant::now();
        assert_eq!(DEBOUNCE.settle(&mut changes).await, Wake::Changed);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_returns_at_once_on_shutdown() {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let mut changes = Scripted(rx);
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(tx);
        });
        assert_eq!(DEBOUNCE.settle(&mut changes).await, Wake::Shutdown);
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }
}
