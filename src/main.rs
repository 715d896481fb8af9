use std::process::ExitCode;

use clap::Parser;
use cloudflared_routes::cli::{run, Cli};

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    cloudflared_routes::run::memory::set_release(glibc::trim);
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
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
