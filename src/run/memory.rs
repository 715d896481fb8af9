//! Giving freed memory back to the system.
//!
//! A render of thousands of routes needs tens of megabytes for a moment (the translation's
//! working set, the rendered text), and the status writer's pass builds and drops a JSON
//! document per object. glibc's allocator keeps what is freed for later allocations, so the
//! resident size of the process would stay at its peak (about twice what it holds) for good.
//! Asking glibc to trim (`malloc_trim(3)`: free pages at the top of the heap and whole free
//! pages inside it go back to the kernel) after each render and each status pass keeps the
//! resident size near what is live. It costs a walk of the heap: well under a millisecond
//! with no routes, about 20 ms with 10,000, on a blocking thread after the work is done (the
//! file is already written), so no change waits for it.
//!
//! Two settings make that trim effective (`main.rs` sets them at start, for every command):
//! - A fixed mmap threshold of 4 MiB. By default glibc raises the threshold to the size of
//!   each large block freed, up to 32 MiB; the large buffers of a render of 10,000 routes (the
//!   rules, the text, the statuses while they are ordered, 4 to 7 MB each) then come from the
//!   arenas, and `malloc_trim` does not give back the top of a thread's arena, where they end:
//!   that kept about 13 MiB resident for good. Fixed at 4 MiB, buffers that large are mapped
//!   for the render and unmapped when freed, at the cost of their page faults (a fresh page
//!   costs about 3 µs on the development VM, 0.8 ms per MiB: some 15 ms per render of 10,000
//!   routes). Smaller buffers, which is all of them up to a few thousand routes, still reuse
//!   the arenas' memory: at 128 KiB, a render of 1,000 routes paid about 2 ms of page faults.
//! - At most two arenas. Renders run on tokio's blocking threads and status passes on its
//!   workers; each thread that allocates may get an arena of its own, each with its own free
//!   memory. Two keep the resident size lower (about 1 MiB with 10,000 routes, and 5 MiB at
//!   the peak) at the cost of some contention between threads that allocate at once, which
//!   here are few.
//!
//! The calls themselves are the binary's (`main.rs`): they are foreign and `unsafe`, and this crate
//! forbids unsafe code. A build without it (another libc, the tests) releases nothing.

use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers the function that gives freed memory back (once; later calls are ignored).
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Gives freed memory back to the system on a blocking thread, if a way to do it was
/// registered; returns at once.
pub fn release_soon() {
    if let Some(release) = RELEASE.get().copied() {
        // Not awaited: nothing depends on it, and the next change need not wait for it.
        drop(tokio::task::spawn_blocking(release));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn the_registered_release_runs_after_the_work() {
        set_release(count);
        let before = CALLS.load(Ordering::SeqCst);
        release_soon();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while CALLS.load(Ordering::SeqCst) == before {
            assert!(std::time::Instant::now() < deadline, "the release never ran");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}
