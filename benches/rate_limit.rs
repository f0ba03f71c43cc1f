//! A workspace scan through the real server against a mock model held to `rpm = 60` and
//! `tpm = 100000`: how close the wall time comes to the rate-limit bound
//! `max(calls / rpm, tokens / tpm)`, whether the user saw any error, and how long an edit to the
//! active file takes to get its diagnostics while the scan is running.
//!
//! Two workspaces: many small calls (the request rate binds) and few large ones (the token rate
//! binds). The mock answers after 300 ms and reports real o200k token counts as `usage`, so the
//! limiter's estimate-then-correct path is exercised as against a vendor. The run itself lives
//! in `support/rate_limit.rs`, shared with `benches/compare.rs`.
//!
//! Run: `cargo bench --bench rate_limit`. Without `--bench` (as `cargo test --all-targets` runs
//! it) the rates are scaled up twentyfold and the workspaces shrunk: a smoke run.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/rate_limit.rs"]
mod limited;

use limited::{Workload, run};

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    // The smoke run keeps the proportions at twenty times the rates.
    let scale = if measuring { 1 } else { 20 };
    let (rpm, tpm) = (60 * scale, 100_000 * u64::from(scale));
    let workloads = [
        Workload {
            name: "many small calls",
            files: if measuring { 10 } else { 4 },
            functions: 1,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
            per_user_rpm: None,
        },
        Workload {
            name: "few large calls",
            files: if measuring { 6 } else { 3 },
            functions: 24,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
            per_user_rpm: None,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!("rpm = {rpm}, tpm = {tpm}; the mock answers in 300 ms");
    println!(
        "{:<18} {:>6} {:>9} {:>9} {:>9} {:>7} {:>7} {:>13} {:>13}",
        "workload", "calls", "tokens", "bound s", "wall s", "ratio", "errors", "edit→offline", "edit→LLM"
    );
    for w in &workloads {
        let o = run(w, rpm, tpm, &rt);
        let bound = o.bound_secs(rpm, tpm);
        println!(
            "{:<18} {:>6} {:>9} {:>9.1} {:>9.1} {:>7.2} {:>7} {:>10.0} ms {:>10.0} ms",
            w.name,
            o.calls,
            o.tokens,
            bound,
            o.wall.as_secs_f64(),
            o.wall.as_secs_f64() / bound,
            o.errors_shown,
            o.edit_to_offline.as_secs_f64() * 1000.0,
            o.edit_to_llm.as_secs_f64() * 1000.0
        );
    }
}
