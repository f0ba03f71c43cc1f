//! The store across processes: a file shared by two processes, and writers killed with
//! SIGKILL mid-commit, round after round.
//!
//! The child processes are this test binary run again, filtered to the test that spawned it,
//! with an environment variable telling that test to play the child's part.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use review_lsp::review::finding::{Category, Finding, Fix, Severity, Span};
use review_lsp::store::{CacheKey, Store, StoreSettings, Tags};

const TTL: Duration = Duration::from_secs(3600);

/// Set in a child process: the temp root it shares with the parent.
const HOLDER_ENV: &str = "REVIEW_LSP_TEST_CACHE_HOLDER_ROOT";
const CHURN_ENV: &str = "REVIEW_LSP_TEST_CACHE_CHURN_ROOT";

fn finding(n: u32) -> Finding {
    Finding {
        rule: format!("python/correctness/rule-{}", n % 17),
        category: Category::Correctness,
        severity: Severity::Warning,
        source: "offline".into(),
        message: format!("comparison to None should use `is`, not `==` (occurrence {n})"),
        span: Span { start_line: n, start_col: 4, end_line: n, end_col: 18 },
        fix: (n % 3 == 0).then(|| Fix { start_line: n, end_line: n, replacement: "    if x is None:\n".into() }),
    }
}

fn findings(n: u32) -> Vec<Finding> {
    (0..n % 5).map(|i| finding(n + i)).collect()
}

fn tags(n: u32) -> Tags {
    Tags { path: format!("src/f{n}.py"), agents: "correctness".into(), models: "offline".into() }
}

fn key(n: u32) -> CacheKey {
    CacheKey::derive(&[&n.to_le_bytes(), b"correctness", b"offline", b"rules-1"])
}

struct Layout {
    root: PathBuf,
}

impl Layout {
    fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    fn ws(&self) -> PathBuf {
        self.root.join("ws")
    }
    fn open(&self) -> Store {
        Store::open(&self.cache_dir(), &self.ws(), &StoreSettings { ttl: TTL, ..StoreSettings::default() })
    }
    fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }
    fn release(&self) -> PathBuf {
        self.root.join("release")
    }
    /// The churn child writes here the highest entry whose commit it has seen complete.
    fn committed(&self) -> PathBuf {
        self.root.join("committed")
    }
    fn child_log(&self) -> PathBuf {
        self.root.join("child.log")
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.child_log()).unwrap_or_default()
    }
    fn new(tmp: &tempfile::TempDir) -> Layout {
        let layout = Layout { root: tmp.path().to_path_buf() };
        std::fs::create_dir(layout.ws()).unwrap();
        layout
    }
}

/// Kills the child if the test fails before it has exited, so no holder outlives the test.
struct Reaped(Child);

impl Reaped {
    /// Runs `test` of this binary in a child process, with `env` set to the shared root.
    fn spawn(test: &str, env: &str, layout: &Layout) -> Reaped {
        let log = File::create(layout.child_log()).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, &layout.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Reaped(child)
    }

    /// Waits for the child to create `layout.ready()`.
    fn wait_ready(&mut self, layout: &Layout) {
        let start = Instant::now();
        while !layout.ready().exists() {
            if let Some(status) = self.0.try_wait().unwrap() {
                panic!("the child exited early ({status}):\n{}", layout.log());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the child never got ready:\n{}", layout.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The child's half: open the store, commit an entry, wait for the parent to add one through
/// the same file, then check it can read the parent's entry.
fn hold(layout: &Layout) {
    let store = layout.open();
    assert!(store.stats().persistent, "the holder could not open the store: {:?}", store.stats());
    store.put(key(1), &findings(1), tags(1));
    store.flush();
    std::fs::write(layout.ready(), std::process::id().to_string()).unwrap();
    let start = Instant::now();
    while !layout.release().exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "never released");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.get(&key(2)), Some(findings(2)), "the holder reads what the other process stored");
    store.put(key(3), &findings(3), tags(3));
    drop(store);
}

/// Two editor windows on one workspace: two processes, one redb file. Both keep a persistent
/// store, and each reads what the other committed.
#[test]
fn two_processes_share_one_store() {
    if let Some(root) = std::env::var_os(HOLDER_ENV) {
        hold(&Layout { root: root.into() });
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp);
    let mut child = Reaped::spawn("two_processes_share_one_store", HOLDER_ENV, &layout);
    child.wait_ready(&layout);

    let start = Instant::now();
    let store = layout.open();
    let opened_in = start.elapsed();
    assert!(opened_in < Duration::from_secs(5), "open took {opened_in:?}");
    assert!(store.stats().persistent, "{:?}", store.stats());
    assert_eq!(store.get(&key(1)), Some(findings(1)), "the child's entry, read through the shared file");
    store.put(key(2), &findings(2), tags(2));
    store.flush();

    std::fs::write(layout.release(), b"").unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the holder did not exit:\n{}", layout.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the holder failed ({status}):\n{}", layout.log());
    assert_eq!(store.get(&key(3)), Some(findings(3)), "the child's last entry");

    // The lock was never taken for corruption.
    let names: Vec<String> = std::fs::read_dir(layout.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("corrupt")), "{names:?}");
}

/// The child's half: write without pause, recording after each flush the highest entry it
/// knows is committed, until killed.
fn churn(layout: &Layout) {
    let store = layout.open();
    assert!(store.stats().persistent, "{:?}", store.stats());
    let mut n: u32 =
        std::fs::read_to_string(layout.committed()).ok().and_then(|s| s.trim().parse().ok()).map_or(0, |c: u32| c + 1);
    std::fs::write(layout.ready(), b"").unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        store.put(key(n), &findings(n), tags(n));
        if n % 64 == 63 {
            store.flush();
            // Written after the flush returned: everything up to `n` is committed.
            // Renamed into place, so a kill mid-write never leaves it empty.
            let tmp = layout.committed().with_extension("tmp");
            std::fs::write(&tmp, n.to_string()).unwrap();
            std::fs::rename(&tmp, layout.committed()).unwrap();
        }
        n += 1;
    }
    panic!("never killed");
}

/// Editors kill language servers. A writer killed with SIGKILL between or during commits, round
/// after round on the same file, leaves a file that reopens every time with every committed
/// entry still there.
#[test]
fn writers_killed_mid_commit_lose_nothing_committed() {
    if let Some(root) = std::env::var_os(CHURN_ENV) {
        churn(&Layout { root: root.into() });
        return;
    }

    const ROUNDS: u32 = 12;
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp);
    for round in 0..ROUNDS {
        let _ = std::fs::remove_file(layout.ready());
        let mut child = Reaped::spawn("writers_killed_mid_commit_lose_nothing_committed", CHURN_ENV, &layout);
        child.wait_ready(&layout);
        // A different moment in the commit cycle each round.
        std::thread::sleep(Duration::from_millis(150 + u64::from(round) * 37));
        child.0.kill().unwrap(); // SIGKILL: no destructor, no final commit
        child.0.wait().unwrap();

        let committed: u32 = std::fs::read_to_string(layout.committed()).unwrap().trim().parse().unwrap();
        let start = Instant::now();
        let store = layout.open();
        let opened_in = start.elapsed();
        assert!(store.stats().persistent, "round {round}: {:?}", store.stats());
        for n in 0..=committed {
            assert_eq!(store.get(&key(n)), Some(findings(n)), "round {round}: committed entry {n} lost");
        }
        println!("round {round}: reopened in {opened_in:?} with entries 0..={committed} intact");
    }
    let names: Vec<String> = std::fs::read_dir(layout.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("corrupt")), "nothing moved aside: {names:?}");
}
