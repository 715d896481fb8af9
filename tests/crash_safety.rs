//! Crash safety of the config writer: a writer process killed (SIGKILL) at random moments,
//! many times, never leaves a torn or empty config: the target is always the old or the new
//! complete file. A killed writer may leave its temp file behind; the next writer removes it
//! on start, so after the next successful write no temp file remains.
//!
//! The writer is this test binary itself, re-executed with `CRASH_SAFETY_TARGET` set: then
//! [`child_writer_loop`] loops writing two big configs alternately through the real
//! `ConfigWriter` until it is killed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloudflared_routes::run::writer::{is_temp_file_name, ConfigWriter};

const TARGET_ENV: &str = "CRASH_SAFETY_TARGET";
/// Where the child says its writes begin.
const STARTED_ENV: &str = "CRASH_SAFETY_STARTED";
const KILLS: usize = 60;

/// A config of about 4 MiB, so that a write takes long enough to be killed in the middle.
fn config(tag: char) -> Vec<u8> {
    let mut text = format!("# config {tag}\ningress:\n");
    let mut i = 0;
    while text.len() < 4 << 20 {
        text.push_str(&format!(
            "  - hostname: {tag}{i}.example.com\n    service: http://svc-{tag}.default.svc.cluster.local:80\n"
        ));
        i += 1;
    }
    text.push_str("  - service: http_status:404\n");
    text.into_bytes()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| is_temp_file_name(n))
        .collect()
}

/// The child: only does something when re-executed by [`killed_writer_never_tears_the_config`].
#[test]
fn child_writer_loop() {
    let Some(target) = std::env::var_os(TARGET_ENV) else { return };
    let (a, b) = (config('a'), config('b'));
    let writer = ConfigWriter::new(Path::new(&target)).unwrap();
    // Tell the parent the writes begin: its kill window starts here, not at spawn (a loaded
    // machine may take longer than the whole window to start a process).
    if let Some(started) = std::env::var_os(STARTED_ENV) {
        std::fs::write(started, b"").unwrap();
    }
    loop {
        writer.write(&a).unwrap();
        writer.write(&b).unwrap();
    }
}

/// A small xorshift generator seeded from the clock: kill times differ from run to run.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_writer_never_tears_the_config() {
    if std::env::var_os(TARGET_ENV).is_some() {
        return; // we are the child
    }
    let dir = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    let target = dir.path().join("config.yml");
    let (a, b) = (config('a'), config('b'));
    ConfigWriter::new(&target).unwrap().write(&a).unwrap();

    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut random = Random(seed);
    let check = |when: &str, i: usize| {
        let now = std::fs::read(&target).unwrap();
        assert!(now == a || now == b, "kill {i} ({when}): torn config of {} bytes (seed {seed})", now.len());
    };
    let (mut leftovers, mut replaced) = (0, 0);
    let mut last_inode = std::fs::metadata(&target).unwrap().ino();
    for i in 0..KILLS {
        let started = markers.path().join(format!("started-{i}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_writer_loop", "--exact", "--nocapture", "--test-threads=1"])
            .env(TARGET_ENV, &target)
            .env(STARTED_ENV, &started)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read while it starts and writes, then kill it at a random moment: up to 230 ms after
        // its writes began (each takes some ms).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started.exists() {
            assert!(Instant::now() < deadline, "kill {i}: the writer never started");
            check("while starting", i);
        }
        let kill_at = Instant::now() + Duration::from_millis(random.below(230));
        while Instant::now() < kill_at {
            check("while writing", i);
        }
        child.kill().unwrap(); // SIGKILL: no destructor runs, no cleanup
        child.wait().unwrap();
        check("after the kill", i);
        if !temp_files(dir.path()).is_empty() {
            leftovers += 1;
        }
        let inode = std::fs::metadata(&target).unwrap().ino();
        if inode != last_inode {
            replaced += 1;
            last_inode = inode;
        }
    }
    eprintln!(
        "{KILLS} kills; the file was replaced before {replaced} of them; a temp file was left behind after {leftovers} (seed {seed})"
    );
    // Otherwise the kills all came before the first write and proved nothing.
    assert!(replaced >= KILLS / 6, "only {replaced} kills came after a write");

    let writer = ConfigWriter::new(&target).unwrap();
    writer.write(&b).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b);
    assert_eq!(temp_files(dir.path()), Vec::<String>::new(), "stale temp files removed");
}
