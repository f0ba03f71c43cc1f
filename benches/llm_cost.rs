//! What the LLM agents cost against the naive baseline, on a real corpus, with a mock model.
//!
//! Naive baseline: one call per file per agent (5 agents), the whole file with line numbers,
//! comments kept. Ours: the classifier's agents, changed chunks only, comments stripped,
//! batched per agent. Tokens are real o200k counts of what the mock received (system +
//! user message); the naive side is computed from the same prompts without sending.
//! Also: the tokens sent after editing one function of a ~2,000-line file.
//! The computation lives in `support/llm_cost.rs`, shared with `benches/compare.rs`.
//!
//! Run: `cargo bench --bench llm_cost` (BENCH_CORPUS=DIR for another tree).

#[path = "support/llm_cost.rs"]
mod cost;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let server = cost::mock_model().await;
    let roots = cost::corpus(measuring);
    let cache = tempfile::tempdir().unwrap();
    let c = cost::corpus_cost(&server, &roots, cache.path()).await;
    println!(
        "corpus: {} files ({})",
        c.files,
        roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    println!(
        "LLM calls: ours {} vs naive {} ({:.1} %)",
        c.ours_calls,
        c.naive_calls,
        100.0 * c.ours_calls as f64 / c.naive_calls.max(1) as f64
    );
    println!(
        "prompt tokens: ours {} vs naive {} ({:.1} %)",
        c.ours_tokens,
        c.naive_tokens,
        100.0 * c.ours_tokens as f64 / c.naive_tokens.max(1) as f64
    );
    println!("scan stats: {}", c.stats);

    // One-function edit in a ~2,000-line file: only that function's chunk goes out again.
    let big = cost::big_file(measuring);
    let e = cost::edit_cost(&server, &big, cache.path()).await;
    println!(
        "one-function edit of {} ({} lines): {} tokens sent vs {} for the whole first review ({:.1} %) and {} naive ({:.1} %)",
        big.file_name().unwrap().to_string_lossy(),
        e.lines,
        e.edit_tokens,
        e.whole_file,
        100.0 * e.edit_tokens as f64 / e.whole_file.max(1) as f64,
        e.naive_file,
        100.0 * e.edit_tokens as f64 / e.naive_file.max(1) as f64
    );
}
