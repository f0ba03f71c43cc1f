//! Cold and warm `review-lsp scan` of a large real corpus: files/s, MB/s and peak RSS.
//!
//! The corpus defaults to the Python installation's standard library and its
//! site-packages, given as two roots because a walk skips `site-packages` below a root
//! (~11,600 .py files on the CI machine). BENCH_CORPUS=DIR uses another tree.
//! Run: `cargo bench --bench scan`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn default_corpus() -> Vec<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sysconfig; p = sysconfig.get_paths(); print(p['stdlib']); print(p['purelib'])"])
        .output()
        .expect("python3 to locate its library");
    String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).collect()
}

/// Runs the binary to completion and returns (wall seconds, peak RSS in KiB, stdout).
fn run(args: &[&str], cache: &Path) -> (f64, u64, String) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_review-lsp"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn review-lsp");
    let pid = child.id() as libc::pid_t;
    // Read stdout on a thread so a large report cannot fill the pipe and stall the child.
    let mut stdout = child.stdout.expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own un-reaped child; wait4 writes into the two locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4 failed");
    let secs = started.elapsed().as_secs_f64();
    (secs, usage.ru_maxrss as u64, reader.join().unwrap_or_default())
}

fn corpus_bytes(root: &Path) -> (u64, usize) {
    let mut total = 0;
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !review_lsp::workspace::ALWAYS_SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()) {
                    stack.push(p);
                }
            } else if ft.is_file() && review_lsp::syntax::Language::from_path(&p).is_some() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
                files += 1;
            }
        }
    }
    (total, files)
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: smoke-test on the bundled
    // examples then, rather than spend CI time on the measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let roots = match std::env::var_os("BENCH_CORPUS") {
        Some(p) => vec![PathBuf::from(p)],
        None if measuring => default_corpus(),
        None => vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")],
    };
    let (mut bytes, mut files_on_disk) = (0, 0);
    for root in &roots {
        let (b, f) = corpus_bytes(root);
        bytes += b;
        files_on_disk += f;
    }
    let names: Vec<String> = roots.iter().map(|r| r.to_string_lossy().to_string()).collect();
    println!("corpus: {} ({files_on_disk} source files, {:.1} MB)", names.join(" + "), bytes as f64 / 1e6);
    let cache = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = vec!["scan"];
    args.extend(names.iter().map(String::as_str));
    args.extend(["--format", "json", "--fail-on", "none"]);
    for label in ["cold", "warm", "warm again"] {
        let (secs, rss_kib, out) = run(&args, cache.path());
        let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON object on stdout");
        let stats = &report["stats"];
        let scanned = stats["files_scanned"].as_u64().unwrap_or(0);
        println!(
            "{label:>10}: {secs:.2} s, {:.0} files/s, {:.1} MB/s, peak RSS {:.1} MiB; scanned {scanned}, skipped {}, findings {}, cache hits {}",
            scanned as f64 / secs,
            bytes as f64 / 1e6 / secs,
            rss_kib as f64 / 1024.0,
            stats["files_skipped"],
            stats["findings"],
            stats["cache_hits"],
        );
    }
}
