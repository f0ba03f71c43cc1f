//! The result cache across processes: a cache file held by another process, a writer killed
//! mid-commit, and timings.
//!
//! The child processes are this test binary run again, filtered to the test that spawned it,
//! with an environment variable telling that test to play the child's part.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use review_lsp::review::finding::{Category, Finding, Fix, Severity, Span};
use review_lsp::store::{Cache, CacheKey};

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
    fn open(&self) -> Cache {
        Cache::open(&self.cache_dir(), &self.ws(), TTL)
    }
    fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }
    fn release(&self) -> PathBuf {
        self.root.join("release")
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

/// The child's half: open the cache, prove it owns the file, and hold it until released.
fn hold(layout: &Layout) {
    let cache = layout.open();
    assert!(cache.stats().persistent, "the holder could not open the cache file: {:?}", cache.stats());
    cache.put(key(1), &findings(1));
    cache.flush();
    std::fs::write(layout.ready(), std::process::id().to_string()).unwrap();
    let start = Instant::now();
    while !layout.release().exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "never released");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(cache);
}

/// The parent re-runs this test binary, filtered to this very test, with `HOLDER_ENV` set; that
/// child opens the cache and keeps it open while the parent tries to.
#[test]
fn cache_held_by_another_process_falls_back_to_memory() {
    if let Some(root) = std::env::var_os(HOLDER_ENV) {
        hold(&Layout { root: root.into() });
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp);
    let mut child = Reaped::spawn("cache_held_by_another_process_falls_back_to_memory", HOLDER_ENV, &layout);
    child.wait_ready(&layout);

    // The file is locked by the child: the open must neither fail nor wait for the lock.
    let start = Instant::now();
    let cache = layout.open();
    let opened_in = start.elapsed();
    assert!(opened_in < Duration::from_secs(5), "open took {opened_in:?}");
    let stats = cache.stats();
    assert!(!stats.persistent, "{stats:?}");
    assert_eq!(stats.path, None);
    assert_eq!(cache.path(), None);
    // It is an empty memory cache (the child's entry is in the file it cannot read)...
    assert_eq!(cache.get(&key(1)), None);
    // ...that works.
    cache.put(key(2), &findings(2));
    assert_eq!(cache.get(&key(2)), Some(findings(2)));
    cache.flush();
    cache.clear().unwrap();
    assert_eq!(cache.get(&key(2)), None);
    drop(cache);

    // The locked file was not taken for a corrupt one.
    let files: Vec<_> = std::fs::read_dir(layout.cache_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "{files:?}");

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

    // Once the holder is gone the file is ours, with the holder's entry in it.
    let cache = layout.open();
    assert!(cache.stats().persistent);
    assert_eq!(cache.get(&key(1)), Some(findings(1)));
}

/// The child's half: commit a known set, then write without pause until killed.
fn churn(layout: &Layout) {
    let cache = layout.open();
    assert!(cache.stats().persistent, "{:?}", cache.stats());
    for n in 0..2000 {
        cache.put(key(n), &findings(n));
    }
    cache.flush();
    std::fs::write(layout.ready(), b"").unwrap();
    let start = Instant::now();
    let mut n = 2000;
    while start.elapsed() < Duration::from_secs(120) {
        cache.put(key(n), &findings(n));
        n += 1;
        if n % 64 == 0 {
            cache.flush();
        }
    }
    panic!("never killed");
}

/// Editors kill language servers. A writer killed between or during commits leaves a file the
/// next open repairs and uses, with everything committed before the kill still there.
#[test]
fn writer_killed_mid_commit_leaves_a_usable_file() {
    if let Some(root) = std::env::var_os(CHURN_ENV) {
        churn(&Layout { root: root.into() });
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp);
    let mut child = Reaped::spawn("writer_killed_mid_commit_leaves_a_usable_file", CHURN_ENV, &layout);
    child.wait_ready(&layout);
    std::thread::sleep(Duration::from_millis(300));
    child.0.kill().unwrap(); // SIGKILL: no destructor, no final commit
    child.0.wait().unwrap();

    let start = Instant::now();
    let cache = layout.open();
    let opened_in = start.elapsed();
    let stats = cache.stats();
    assert!(stats.persistent, "{stats:?}");
    assert!(stats.entries > 2000, "the churn wrote nothing: {stats:?}");
    for n in 0..2000 {
        assert_eq!(cache.get(&key(n)), Some(findings(n)), "entry {n}");
    }
    let files: Vec<_> = std::fs::read_dir(layout.cache_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "nothing moved aside: {files:?}");
    println!("reopened after a kill with {} entries in {opened_in:?}", stats.entries);
}

/// Prints put and get latencies for a 10,000-file workspace; asserts the warm get budget.
/// `cargo test --test store_cache -- --ignored --nocapture`
#[test]
#[ignore = "timing; run with --ignored --nocapture"]
fn latency_of_a_10k_file_workspace() {
    const FILES: u32 = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp);
    let values: Vec<Vec<Finding>> = (0..FILES).map(findings).collect();
    let keys: Vec<CacheKey> = (0..FILES).map(key).collect();

    // Cold scan: every file is a miss, then a put.
    let cache = layout.open();
    assert!(cache.stats().persistent);
    let mut miss_times = Vec::with_capacity(FILES as usize);
    let mut put_times = Vec::with_capacity(FILES as usize);
    let cold = Instant::now();
    for (k, v) in keys.iter().zip(&values) {
        let t = Instant::now();
        assert!(cache.get(k).is_none());
        miss_times.push(t.elapsed());
        let t = Instant::now();
        cache.put(*k, v);
        put_times.push(t.elapsed());
    }
    let queued = cold.elapsed();
    let t = Instant::now();
    cache.flush();
    let flushed = t.elapsed();
    let file = cache.path().unwrap().to_path_buf();
    drop(cache);
    let size = std::fs::metadata(file).unwrap().len();

    // Warm rescan in a fresh `Cache`, as a new CLI run or server start would.
    let t = Instant::now();
    let cache = layout.open();
    let opened = t.elapsed();
    let mut passes = Vec::new();
    for _ in 0..2 {
        let mut times = Vec::with_capacity(FILES as usize);
        for (k, v) in keys.iter().zip(&values) {
            let t = Instant::now();
            let got = cache.get(k);
            times.push(t.elapsed());
            assert_eq!(got.as_ref(), Some(v));
        }
        passes.push(times);
    }

    println!("{FILES} files, {size} byte file, open {opened:?}");
    println!("cold: queued all puts in {queued:?}, flush {flushed:?}");
    report("  get (miss, empty file)", &mut miss_times);
    report("  put", &mut put_times);
    for (i, times) in passes.iter_mut().enumerate() {
        report(&format!("warm get, pass {}", i + 1), times);
    }
    let mean = passes[0].iter().sum::<Duration>() / FILES;
    assert!(mean < Duration::from_micros(100), "warm get mean {mean:?}");
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!("{what}: mean {mean:?}, p50 {:?}, p99 {:?}, max {:?}", pct(50), pct(99), times[times.len() - 1]);
}
