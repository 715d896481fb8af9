//! Finding cloudflared in `/proc` for `--reload signal`: its pid file, a scan by name, and
//! what the kernel says of a process (alive or a zombie, when it started).

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The kernel's USER_HZ: the unit of /proc/PID/stat's times (100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

pub(super) fn read_pidfile(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("{} does not hold a pid: {:?}", path.display(), text.trim()))
}

/// A process that exists and is not a zombie (an exited child its parent has not reaped yet
/// still answers `kill(pid, 0)`).
pub(super) fn alive(proc_root: &Path, pid: i32) -> bool {
    let exists = match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    };
    exists && state(proc_root, pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The fields of /proc/PID/stat after the parenthesised comm (which may hold spaces): the
/// state letter is the first (field 3), the start time the 20th (field 22).
fn stat_fields(proc_root: &Path, pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(String::from).collect())
}

pub(super) fn state(proc_root: &Path, pid: i32) -> Option<char> {
    stat_fields(proc_root, pid)?.first()?.chars().next()
}

/// When the process started, by the wall clock: its start time in ticks after boot, against
/// the seconds since boot in /proc/uptime.
pub(super) fn started_at(proc_root: &Path, pid: i32) -> Option<std::time::SystemTime> {
    let ticks: f64 = stat_fields(proc_root, pid)?.get(19)?.parse().ok()?;
    let uptime = std::fs::read_to_string(proc_root.join("uptime")).ok()?;
    let uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let age = Duration::try_from_secs_f64((uptime - ticks / USER_HZ).max(0.0)).ok()?;
    std::time::SystemTime::now().checked_sub(age)
}

/// Processes named `name`, by executable, `comm` (the kernel truncates it to 15 bytes) or
/// `argv[0]`; never this process, never a zombie.
pub fn scan(proc_root: &Path, name: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(proc_root) else { return Vec::new() };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own && named(&proc_root.join(pid.to_string()), name))
        .filter(|&pid| alive(proc_root, pid))
        .collect();
    pids.sort_unstable();
    pids
}

fn named(dir: &Path, name: &str) -> bool {
    let basename = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if let Ok(exe) = std::fs::read_link(dir.join("exe")) {
        let exe = exe.to_string_lossy();
        if basename(exe.trim_end_matches(" (deleted)")) == name {
            return true;
        }
    }
    let short = &name.as_bytes()[..name.len().min(15)];
    if std::fs::read(dir.join("comm")).is_ok_and(|comm| comm.strip_suffix(b"\n").unwrap_or(&comm) == short) {
        return true;
    }
    std::fs::read(dir.join("cmdline")).is_ok_and(|cmdline| {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        basename(&String::from_utf8_lossy(argv0)) == name
    })
}
