use std::process::ExitCode;

use clap::Parser;
use cloudflared_routes::cli::{eprint, run, Cli};

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::tune();
        cloudflared_routes::run::memory::set_release(glibc::trim);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprint(&format!("error: {}\n", failure.message));
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    extern "C" {
        fn malloc_trim(pad: usize) -> c_int;
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    // <malloc.h>
    const M_MMAP_THRESHOLD: c_int = -3;
    const M_ARENA_MAX: c_int = -8;

    /// A fixed mmap threshold and at most two arenas (`cloudflared_routes::run::memory` says
    /// why).
    pub fn tune() {
        // SAFETY: mallopt takes no pointer; it is called first thing in main, before any
        // other thread exists.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 4 << 20);
            mallopt(M_ARENA_MAX, 2);
        }
    }

    /// glibc's `malloc_trim(0)`: returns the free pages of every arena to the kernel
    /// (`cloudflared_routes::run::memory` says why and when).
    pub fn trim() {
        // SAFETY: malloc_trim takes no pointer and works under the allocator's own locks; it
        // may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
