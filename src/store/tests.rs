//! Unit tests of the result cache, on real redb files in temporary directories.

use super::codec::FORMAT_VERSION;
use super::*;
use crate::review::finding::{Category, Fix, Severity, Span};
use std::sync::atomic::AtomicU64;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const TTL: Duration = Duration::from_secs(3600);

fn finding(n: u32) -> Finding {
    Finding {
        rule: format!("python/security/rule{n}"),
        category: Category::Security,
        severity: Severity::Warning,
        source: "offline".into(),
        message: format!("finding number {n}"),
        span: Span { start_line: n, start_col: 0, end_line: n, end_col: 4 },
        fix: (n % 2 == 0).then(|| Fix { start_line: n, end_line: n, replacement: "pass\n".into() }),
    }
}

fn findings(n: u32) -> Vec<Finding> {
    (0..n % 4).map(|i| finding(n * 10 + i)).collect()
}

fn settings() -> StoreSettings {
    StoreSettings { ttl: TTL, ..StoreSettings::default() }
}

fn tags(n: u32) -> Tags {
    Tags { path: format!("src/m{}/f{n}.py", n % 3), agents: "security".into(), models: "offline".into() }
}

fn key(n: u32) -> CacheKey {
    CacheKey::derive(&[b"content", &n.to_le_bytes(), b"security", b"offline", b"rules-v1"])
}

/// Shows the cache's log in a failing test's output (the test writer is captured otherwise).
fn logs() {
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_test_writer().try_init();
}

fn manual_clock(start: u64) -> (Clock, Arc<AtomicU64>) {
    let time = Arc::new(AtomicU64::new(start));
    (Clock(Some(Arc::clone(&time))), time)
}

/// A temporary cache dir and a workspace dir that exists, so it canonicalizes.
struct Dirs {
    root: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("ws")).unwrap();
        Dirs { root }
    }
    fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }
    fn ws(&self) -> PathBuf {
        self.root.path().join("ws")
    }
    fn open(&self) -> Store {
        Store::open(&self.cache_dir(), &self.ws(), &settings())
    }
    fn db_path(&self) -> PathBuf {
        self.cache_dir().join(file_name(&self.ws()))
    }
    /// Files in the cache dir other than the database itself.
    fn others(&self) -> Vec<PathBuf> {
        let db = self.db_path();
        let mut found: Vec<PathBuf> =
            std::fs::read_dir(self.cache_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| *p != db).collect();
        found.sort();
        found
    }
}

fn pending_len(cache: &Store) -> usize {
    cache.shared.lock_pending().map.len()
}

/// Reads a raw value straight from the file, bypassing the pending map.
fn raw_on_disk(cache: &Store, key: &CacheKey) -> Option<Vec<u8>> {
    let db = cache.shared.database("test", Duration::from_secs(5)).expect("persistent cache");
    let txn = db.begin_read().unwrap();
    let table = match txn.open_table(CACHE) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return None,
        Err(err) => panic!("{err}"),
    };
    table.get(&key.0).unwrap().map(|v| v.value().to_vec())
}

fn write_raw(cache: &Store, key: &CacheKey, value: &[u8]) {
    let db = cache.shared.database("test", Duration::from_secs(5)).expect("persistent cache");
    let txn = db.begin_write().unwrap();
    txn.open_table(CACHE).unwrap().insert(&key.0, value).unwrap();
    txn.commit().unwrap();
}

#[test]
fn derive_separates_part_boundaries() {
    assert_ne!(CacheKey::derive(&[b"ab", b"c"]), CacheKey::derive(&[b"a", b"bc"]));
    assert_ne!(CacheKey::derive(&[b"abc"]), CacheKey::derive(&[b"ab", b"c"]));
    assert_ne!(CacheKey::derive(&[]), CacheKey::derive(&[b""]));
    assert_ne!(CacheKey::derive(&[b""]), CacheKey::derive(&[b"", b""]));
    assert_ne!(CacheKey::derive(&[b"a", b"b"]), CacheKey::derive(&[b"b", b"a"]));
    assert_eq!(CacheKey::derive(&[b"a", b"b"]), CacheKey::derive(&[b"a", b"b"]));
    // Not a plain hash of the concatenation either.
    assert_ne!(CacheKey::derive(&[b"abc"]).0, *blake3::hash(b"abc").as_bytes());
}

#[test]
fn file_name_is_16_hex_of_the_canonical_workspace() {
    let dirs = Dirs::new();
    let name = file_name(&dirs.ws());
    assert_eq!(name.len(), 16 + ".redb".len(), "{name}");
    assert!(name[..16].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    let expected = blake3::hash(std::fs::canonicalize(dirs.ws()).unwrap().as_os_str().as_encoded_bytes());
    assert_eq!(name[..16], expected.to_hex()[..16]);
    // The same workspace spelled differently shares the file; another workspace does not.
    assert_eq!(file_name(&dirs.ws().join(".").join("..").join("ws")), name);
    assert_ne!(file_name(dirs.root.path()), name);
}

#[test]
fn put_then_get_before_and_after_flush() {
    let dirs = Dirs::new();
    let cache = dirs.open();
    assert!(cache.stats().persistent);
    assert_eq!(cache.path(), Some(dirs.db_path().as_path()));
    assert!(cache.get(&key(7)).is_none());

    cache.put(key(7), &findings(7), tags(7));
    cache.put(key(8), &[], tags(8));
    // Straight after the put: served from memory, whatever the writer is doing.
    assert_eq!(cache.get(&key(7)), Some(findings(7)));
    assert_eq!(cache.get(&key(8)), Some(vec![]), "an empty result is a hit, not a miss");

    cache.flush();
    // After the flush everything is on disk and nothing is left pending.
    assert_eq!(pending_len(&cache), 0);
    assert!(raw_on_disk(&cache, &key(7)).is_some());
    assert_eq!(cache.get(&key(7)), Some(findings(7)));
    assert_eq!(cache.get(&key(8)), Some(vec![]));
    assert_eq!(cache.get(&key(9)), None);

    // A second put of a key replaces the value.
    cache.put(key(7), &findings(5), tags(7));
    assert_eq!(cache.get(&key(7)), Some(findings(5)));
    cache.flush();
    assert_eq!(cache.get(&key(7)), Some(findings(5)));

    let stats = cache.stats();
    assert_eq!((stats.hits(), stats.misses, stats.entries), (6, 2, 2), "{stats:?}");
}

#[test]
fn value_layout_is_version_time_json() {
    let dirs = Dirs::new();
    let (clock, _) = manual_clock(1_700_000_000);
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &settings(), clock);
    cache.put(key(3), &findings(3), tags(3));
    cache.flush();
    let raw = raw_on_disk(&cache, &key(3)).unwrap();
    assert_eq!(raw[0], FORMAT_VERSION);
    assert_eq!(u64::from_le_bytes(raw[1..9].try_into().unwrap()), 1_700_000_000);
    assert_eq!(serde_json::from_slice::<Vec<Finding>>(&raw[9..]).unwrap(), findings(3));
}

#[test]
fn entries_survive_drop_and_reopen() {
    let dirs = Dirs::new();
    {
        let cache = dirs.open();
        for n in 0..1500 {
            cache.put(key(n), &findings(n), tags(n));
        }
        // No flush: dropping the last handle must commit.
    }
    let cache = dirs.open();
    assert!(cache.stats().persistent, "the drop must have released the file lock");
    for n in 0..1500 {
        assert_eq!(cache.get(&key(n)), Some(findings(n)), "entry {n}");
    }
    assert_eq!(cache.stats().entries, 1500);
    assert!(dirs.others().is_empty(), "{:?}", dirs.others());
}

#[test]
fn entries_older_than_ttl_are_misses() {
    let dirs = Dirs::new();
    let ttl = Duration::from_secs(60);
    let (clock, time) = manual_clock(1_000_000);
    let short = StoreSettings { ttl, ..settings() };
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &short, Clock::clone(&clock));
    cache.put(key(1), &findings(1), tags(1));
    time.store(1_000_030, Ordering::Relaxed);
    cache.put(key(2), &findings(2), tags(2));

    // In memory.
    time.store(1_000_060, Ordering::Relaxed);
    assert_eq!(cache.get(&key(1)), Some(findings(1)), "exactly ttl old is still fresh");
    time.store(1_000_061, Ordering::Relaxed);
    assert_eq!(cache.get(&key(1)), None);
    assert_eq!(cache.get(&key(2)), Some(findings(2)));

    // On disk, after a reopen.
    drop(cache);
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &short, clock);
    assert_eq!(pending_len(&cache), 0);
    assert_eq!(cache.get(&key(1)), None);
    assert_eq!(cache.get(&key(2)), Some(findings(2)));
    time.store(1_000_091, Ordering::Relaxed);
    assert_eq!(cache.get(&key(2)), None);
    // A put refreshes the entry.
    cache.put(key(2), &findings(2), tags(2));
    cache.flush();
    assert_eq!(cache.get(&key(2)), Some(findings(2)));

    // A clock that went backwards does not invalidate entries.
    time.store(999_000, Ordering::Relaxed);
    assert_eq!(cache.get(&key(2)), Some(findings(2)));
}

#[test]
fn clear_drops_memory_and_disk_entries() {
    let dirs = Dirs::new();
    let cache = dirs.open();
    for n in 0..10 {
        cache.put(key(n), &findings(n), tags(n));
    }
    cache.flush();
    for n in 10..20 {
        cache.put(key(n), &findings(n), tags(n)); // some still queued when the clear comes
    }
    cache.clear().unwrap();
    for n in 0..20 {
        assert_eq!(cache.get(&key(n)), None, "entry {n}");
    }
    assert_eq!(cache.stats().entries, 0);

    // Puts after a clear are kept, and the cleared ones stay gone across a reopen.
    cache.put(key(100), &findings(100), tags(100));
    drop(cache);
    let cache = dirs.open();
    assert_eq!(cache.get(&key(100)), Some(findings(100)));
    for n in 0..20 {
        assert_eq!(cache.get(&key(n)), None, "entry {n}");
    }

    let memory = Store::memory(&settings());
    memory.put(key(1), &findings(1), tags(1));
    memory.clear().unwrap();
    assert_eq!(memory.get(&key(1)), None);
}

#[test]
fn undecodable_values_are_misses() {
    logs();
    let dirs = Dirs::new();
    let cache = dirs.open();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut header = vec![FORMAT_VERSION];
    header.extend_from_slice(&now.to_le_bytes());

    write_raw(&cache, &key(1), b"");
    write_raw(&cache, &key(2), &[FORMAT_VERSION, 1, 2]);
    write_raw(&cache, &key(3), &[header.as_slice(), b"{not json"].concat());
    write_raw(&cache, &key(4), &[&[FORMAT_VERSION + 1], &header[1..], b"[]"].concat());
    write_raw(&cache, &key(5), &[header.as_slice(), br#"[{"rule": 3}]"#].concat());
    write_raw(&cache, &key(6), &[header.as_slice(), b"[]"].concat());
    for n in 1..=5 {
        assert_eq!(cache.get(&key(n)), None, "value {n}");
    }
    assert_eq!(cache.get(&key(6)), Some(vec![]), "the control value decodes");
    let stats = cache.stats();
    assert_eq!((stats.hits(), stats.misses), (1, 5));
    assert!(stats.persistent, "a bad value is not a reason to give up the file");
}

#[test]
fn garbage_file_is_moved_aside_and_replaced() {
    logs();
    // Short text and a page-sized run of pseudo-random bytes fail in different places in redb.
    let mut noise = Vec::with_capacity(64 * 1024);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    for garbage in [b"this is not a redb file".to_vec(), noise] {
        let dirs = Dirs::new();
        std::fs::create_dir_all(dirs.cache_dir()).unwrap();
        std::fs::write(dirs.db_path(), &garbage).unwrap();

        let cache = dirs.open();
        let aside = dirs.others();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let name = aside[0].file_name().unwrap().to_str().unwrap();
        let prefix = format!("{}.corrupt-", file_name(&dirs.ws()));
        assert!(name.starts_with(&prefix), "{name}");
        assert!(name[prefix.len()..].parse::<u64>().is_ok(), "{name}");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "moved aside untouched");

        // A fresh file replaced it, and works.
        assert!(cache.stats().persistent);
        cache.put(key(1), &findings(1), tags(1));
        drop(cache);
        let cache = dirs.open();
        assert_eq!(cache.get(&key(1)), Some(findings(1)));
        assert_eq!(dirs.others().len(), 1);
    }
}

#[test]
fn damaged_database_never_panics() {
    logs();
    // Everything after redb's header page, a run in the middle (data pages, so the open itself
    // may succeed and a later read or commit trips), and the tail of the file.
    // Last, a few bytes inside one stored value, which only decoding can notice.
    type Damage = fn(&[u8]) -> std::ops::Range<usize>;
    let damages: [(&str, Damage); 4] = [
        ("after header", |b| 4096..b.len()),
        ("middle", |b| b.len() / 2..b.len() / 2 + 16 * 1024),
        ("tail", |b| b.len() - 8192..b.len()),
        ("one value", |b| {
            let at = b.windows(9).position(|w| w == b"\"message\"").unwrap();
            at + 1..at + 4
        }),
    ];
    for (what, range) in damages {
        let dirs = Dirs::new();
        {
            let cache = dirs.open();
            for n in 0..3000 {
                cache.put(key(n), &findings(n), tags(n));
            }
        }
        let mut bytes = std::fs::read(dirs.db_path()).unwrap();
        assert!(bytes.len() > 64 * 1024, "{}", bytes.len());
        let range = range(&bytes);
        for i in range.clone() {
            bytes[i] = (i as u8).wrapping_mul(31) ^ 0x5a;
        }
        std::fs::write(dirs.db_path(), &bytes).unwrap();

        // Whether redb notices on open (moved aside), on a read (file abandoned) or not at
        // all (values fail to decode), the cache must answer and keep working.
        let cache = dirs.open();
        let hits = (0..3000).filter(|&n| cache.get(&key(n)).is_some_and(|f| f == findings(n))).count();
        eprintln!(
            "damage {what} {range:?}: {hits} of 3000 still hit, stats {:?}, {} moved aside",
            cache.stats(),
            dirs.others().len()
        );
        assert!(hits < 3000, "{what}: the damage went unnoticed");
        cache.put(key(5000), &findings(5000), tags(5000));
        assert_eq!(cache.get(&key(5000)), Some(findings(5000)), "{what}");
        cache.flush();
        assert_eq!(cache.get(&key(5000)), Some(findings(5000)), "{what}");
        let _ = cache.stats();
        let _ = cache.clear();
        assert_eq!(cache.get(&key(5000)), None, "{what}");
        drop(cache);
        // And the next run starts from a usable state too.
        let cache = dirs.open();
        cache.put(key(6000), &findings(6000), tags(6000));
        assert_eq!(cache.get(&key(6000)), Some(findings(6000)), "{what}");
    }
}

#[test]
fn damage_found_after_open_abandons_the_file_and_moves_it_aside_on_drop() {
    logs();
    // redb finds most damage on open (tested above); this covers what it reports later, from
    // a read or a commit, as a Corrupted error or a panic.
    type Failure = fn() -> Result<(), redb::Error>;
    let failures: [(&str, Failure); 2] =
        [("corrupted", || Err(redb::Error::Corrupted("simulated".into()))), ("panic", || panic!("simulated damage"))];
    for (what, failure) in failures {
        let dirs = Dirs::new();
        let cache = dirs.open();
        cache.put(key(1), &findings(1), tags(1));
        cache.flush();
        assert_eq!(cache.shared.guard("read", failure), None);
        let stats = cache.stats();
        assert!(!stats.persistent, "{what}: {stats:?}");
        // Still a working (memory) cache.
        assert_eq!(cache.get(&key(1)), Some(findings(1)), "{what}: what memory holds still serves");
        cache.put(key(2), &findings(2), tags(2));
        cache.flush();
        assert_eq!(cache.get(&key(2)), Some(findings(2)), "{what}");
        cache.clear().unwrap();
        drop(cache);

        let aside = dirs.others();
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
        assert!(aside[0].to_str().unwrap().contains(".redb.corrupt-"), "{what}: {aside:?}");
        let cache = dirs.open();
        assert!(cache.stats().persistent, "{what}");
        assert_eq!(cache.get(&key(1)), None, "{what}: a fresh file");
    }

    // An I/O failure also ends the use of the file, but says nothing against its contents: it
    // stays where it is, and a clear, which cannot reach it, says so.
    let dirs = Dirs::new();
    let cache = dirs.open();
    cache.put(key(1), &findings(1), tags(1));
    cache.flush();
    assert_eq!(cache.shared.guard("read", || Err::<(), _>(redb::Error::PreviousIo)), None);
    assert!(!cache.stats().persistent);
    assert!(cache.clear().is_err());
    drop(cache);
    assert!(dirs.others().is_empty());
    assert_eq!(dirs.open().get(&key(1)), Some(findings(1)));

    // Other errors are misses, and the file stays in use.
    let dirs = Dirs::new();
    let cache = dirs.open();
    assert_eq!(cache.shared.guard("read", || Err::<(), _>(redb::Error::ValueTooLarge(1))), None);
    assert!(cache.stats().persistent);
    drop(cache);
    assert!(dirs.others().is_empty());
}

#[test]
fn two_stores_on_one_file_share_it() {
    logs();
    let dirs = Dirs::new();
    let first = dirs.open();
    first.put(key(1), &findings(1), tags(1));
    first.flush();

    // The second asks for the file; the first yields it on its next writer tick.
    let second = dirs.open();
    assert!(second.stats().persistent, "{:?}", second.stats());
    assert_eq!(second.path(), Some(dirs.db_path().as_path()));
    assert_eq!(second.get(&key(1)), Some(findings(1)), "the second reads what the first committed");
    second.put(key(2), &findings(2), tags(2));
    second.flush();
    // And the first, after asking back, reads what the second committed.
    assert_eq!(first.get(&key(2)), Some(findings(2)));
    first.put(key(3), &findings(3), tags(3));

    // The lock is not mistaken for corruption.
    assert!(dirs.others().iter().all(|p| p.extension().is_some_and(|e| e == "want")), "{:?}", dirs.others());
    drop(second);
    drop(first);

    let third = dirs.open();
    for n in 1..=3 {
        assert_eq!(third.get(&key(n)), Some(findings(n)), "entry {n}");
    }
}

#[test]
fn unusable_cache_dir_falls_back_to_memory() {
    logs();
    let dirs = Dirs::new();
    // A file where the directory should be.
    std::fs::write(dirs.cache_dir(), b"").unwrap();
    let cache = dirs.open();
    assert!(!cache.stats().persistent);
    cache.put(key(1), &findings(1), tags(1));
    assert_eq!(cache.get(&key(1)), Some(findings(1)));

    // A directory where the file should be: an I/O error, not corruption, so nothing is moved.
    let dirs = Dirs::new();
    std::fs::create_dir_all(dirs.db_path()).unwrap();
    let cache = dirs.open();
    assert!(!cache.stats().persistent);
    assert!(dirs.db_path().is_dir());
    assert!(dirs.others().is_empty(), "{:?}", dirs.others());
}

#[test]
fn memory_cache_roundtrip_and_stats() {
    let cache = Store::memory(&settings());
    assert_eq!(cache.path(), None);
    cache.put(key(1), &findings(1), tags(1));
    cache.put(key(2), &findings(2), tags(2));
    cache.flush();
    assert_eq!(cache.get(&key(1)), Some(findings(1)));
    assert_eq!(cache.get(&key(3)), None);
    let stats = cache.stats();
    assert_eq!((stats.memory_hits, stats.disk_hits, stats.misses, stats.entries), (1, 0, 1, 2), "{stats:?}");
    assert_eq!((stats.path, stats.persistent), (None, false));
}

#[test]
fn concurrent_puts_and_gets() {
    let dirs = Dirs::new();
    let cache = Arc::new(dirs.open());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                for n in (t * 1000)..(t * 1000 + 1000) {
                    cache.put(key(n), &findings(n), tags(n));
                    assert_eq!(cache.get(&key(n)), Some(findings(n)));
                    if n % 250 == 0 {
                        cache.flush();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    cache.flush();
    assert_eq!(pending_len(&cache), 0);
    assert_eq!(cache.stats().entries, 4000);
    for n in 0..4000 {
        assert_eq!(cache.get(&key(n)), Some(findings(n)));
    }
}

#[test]
fn writes_are_batched() {
    // A burst of puts must not be committed one fsync at a time: 2000 puts take a handful of
    // commits (4 full batches, plus one more whenever the 100 ms linger runs out mid-burst on a
    // slow machine), nowhere near 2000.
    let dirs = Dirs::new();
    let cache = dirs.open();
    for n in 0..2000 {
        cache.put(key(n), &findings(n), tags(n));
    }
    cache.flush();
    let commits = cache.shared.commits.load(Ordering::Relaxed);
    assert!((4..=20).contains(&commits), "{commits} commits for 2000 puts");
    // A lone put is committed by the linger deadline, without a flush.
    cache.put(key(5000), &findings(5000), tags(5000));
    let start = Instant::now();
    while pending_len(&cache) > 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pending_len(&cache), 0, "not committed after {:?}", start.elapsed());
    assert!(raw_on_disk(&cache, &key(5000)).is_some());
}

#[test]
fn records_survive_clear_and_reopen_and_do_not_expire() {
    let dirs = Dirs::new();
    let (clock, time) = manual_clock(1_000);
    {
        let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &settings(), clock.clone());
        cache.put(key(1), &findings(1), tags(1));
        cache.put_record("budget/2026-11-28", b"first");
        cache.put_record("budget/2026-11-28", b"second");
        assert_eq!(cache.get_record("budget/2026-11-28").as_deref(), Some(&b"second"[..]));
        cache.clear().unwrap();
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.get_record("budget/2026-11-28").as_deref(), Some(&b"second"[..]));
        assert_eq!(cache.stats().entries, 0, "records are not cache entries");
    }
    time.store(1_000 + 10 * TTL.as_secs(), Ordering::Relaxed);
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &settings(), clock);
    assert_eq!(pending_len(&cache), 0);
    assert_eq!(cache.get_record("budget/2026-11-28").as_deref(), Some(&b"second"[..]));
    assert_eq!(cache.get_record("budget/2026-11-29"), None);

    let memory = Store::memory(&settings());
    memory.put_record("r", b"v");
    assert_eq!(memory.get_record("r").as_deref(), Some(&b"v"[..]));
}

#[test]
fn the_size_cap_evicts_the_least_recently_used() {
    let dirs = Dirs::new();
    let (clock, time) = manual_clock(10_000);
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &settings(), clock);
    // The writer's start-up maintenance, out of the way before the cap is lowered.
    cache.gc().unwrap();
    for n in 0..200 {
        cache.put(key(n), &findings(n), tags(n));
    }
    cache.flush();
    let total = cache.stats().bytes.unwrap();
    assert!(total > 10_000, "{total}");

    // Two minutes later the first 20 are used again; the access is recorded on the next commit.
    time.store(10_120, Ordering::Relaxed);
    for n in 0..20 {
        assert!(cache.get(&key(n)).is_some());
    }
    cache.flush();

    cache.set_settings(&StoreSettings { max_bytes: total / 2, ..settings() });
    let report = cache.gc().unwrap();
    assert!(report.evicted > 0 && report.expired == 0, "{report:?}");
    assert!(report.bytes <= total / 2 / 10 * 9, "trimmed to 90 % of the cap: {report:?}");
    assert_eq!(cache.stats().bytes, Some(report.bytes));
    for n in 0..20 {
        assert!(raw_on_disk(&cache, &key(n)).is_some(), "recently used entry {n} was evicted");
    }
    let kept = (20..200).filter(|&n| raw_on_disk(&cache, &key(n)).is_some()).count() as u64;
    assert_eq!(kept + 20, report.entries);
    assert!(kept < 180);
}

#[test]
fn gc_expires_by_ttl_with_the_clock_the_test_controls() {
    let dirs = Dirs::new();
    let (clock, time) = manual_clock(50_000);
    let cache = Store::open_with_clock(&dirs.cache_dir(), &dirs.ws(), &settings(), clock);
    // The writer's own start-up maintenance, run now so it cannot run later, with the clock
    // moved, and take this test's expiry from under it.
    cache.gc().unwrap();
    cache.put(key(1), &findings(1), tags(1));
    time.store(50_000 + TTL.as_secs() / 2, Ordering::Relaxed);
    cache.put(key(2), &findings(2), tags(2));
    cache.flush();
    time.store(50_000 + TTL.as_secs() + 1, Ordering::Relaxed);
    let report = cache.gc().unwrap();
    assert_eq!((report.expired, report.entries), (1, 1), "{report:?}");
    assert!(raw_on_disk(&cache, &key(1)).is_none());
    assert!(raw_on_disk(&cache, &key(2)).is_some());
}

#[test]
fn invalidate_drops_what_the_filter_matches_in_memory_and_on_disk() {
    let dirs = Dirs::new();
    let cache = dirs.open();
    for n in 0..30 {
        cache.put(key(n), &findings(n), tags(n));
    }
    cache.flush();
    cache.put(key(30), &findings(30), tags(30)); // still pending
    // tags(n) puts n in src/m{n % 3}/.
    let dropped = cache.invalidate(&Filter::new(Some("src/m0/**"), None, None).unwrap()).unwrap();
    assert_eq!(dropped, 11);
    for n in 0..31 {
        assert_eq!(cache.get(&key(n)).is_some(), n % 3 != 0, "entry {n}");
    }
    assert_eq!(cache.invalidate(&Filter::new(None, Some("security"), Some("gpt-4.1")).unwrap()).unwrap(), 0);
    assert_eq!(cache.invalidate(&Filter::new(None, Some("security"), Some("offline")).unwrap()).unwrap(), 20);
    assert_eq!(cache.stats().entries, 0);
}

/// A huge `memory_entries` used to reserve the LRU's room up front and abort the process.
#[test]
fn huge_memory_entries_allocates_nothing_up_front() {
    let store = Store::memory(&StoreSettings { memory_entries: 100_000_000_000, ..settings() });
    store.put(key(1), &findings(3), tags(1));
    assert_eq!(store.get(&key(1)), Some(findings(3)));
    store.set_settings(&StoreSettings { memory_entries: usize::MAX / 2, ..settings() });
    assert_eq!(store.get(&key(1)), Some(findings(3)));
}
