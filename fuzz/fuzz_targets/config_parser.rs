//! Settings never fail: arbitrary bytes as `review-lsp.toml` (and, when they happen to be
//! JSON, as editor settings) go through the layering in `config::resolve`, which must always
//! give a `Config` plus problems, never panic.
//!
//! `resolve` falls back to the defaults with a `tracing::error!` when the merged layers do
//! not parse, which its comment says cannot happen ("merging clean objects keeps them
//! clean"); an error event from `review_lsp::config` is turned into a panic so that
//! libFuzzer reports it.
//!
//! The oracle also says "no abort, bounded allocation": a counting global allocator panics on
//! any single allocation over [`MAX_ALLOCATION`] (a setting sizing an allocation, such as the
//! LRU once pre-allocated from `memory_entries`, would abort a real server), every resolved
//! number must lie in its range, and the sensitive keys stripped from an untrusted layer must
//! leave no sensitive key behind.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};

use libfuzzer_sys::fuzz_target;
use review_lsp::config::{self, Config, Layer, Origin};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// No single allocation may exceed this; inputs are at most a few KiB.
const MAX_ALLOCATION: usize = 64 << 20;

struct Bounded;

// SAFETY: forwards to the system allocator; only refuses sizes over the bound (by panicking
// before allocating, which libFuzzer reports with the input).
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        refuse_oversized(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        refuse_oversized(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        refuse_oversized(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn refuse_oversized(size: usize) {
    if size > MAX_ALLOCATION {
        // Abort rather than panic: unwinding would allocate again inside the allocator.
        eprintln!("config fuzz: one allocation of {size} bytes (bound {MAX_ALLOCATION})");
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

struct PanicOnConfigError;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicOnConfigError {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::ERROR && meta.target().starts_with("review_lsp::config") {
            panic!("config::resolve logged an error: the merged layers did not parse");
        }
    }
}

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(PanicOnConfigError);
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    });
}

fn check(layers: &[Layer]) -> Config {
    let (config, problems) = config::resolve(layers);
    for p in &problems {
        assert!(!p.message.is_empty() && !p.to_string().is_empty());
    }
    // The result is a fixed point: what resolve returns resolves to itself, without problems.
    let value = serde_json::to_value(&config).expect("config serializes");
    let again = Layer { origin: Origin::Cli, value: value.clone() };
    let (twice, more) = config::resolve(&[again]);
    assert!(more.is_empty(), "a resolved config has problems (a value out of range?): {more:?}");
    assert_eq!(twice, config);
    // The store built from these settings allocates nothing sized by them.
    let settings = review_lsp::store::StoreSettings { redis: None, ..config.cache.store_settings() };
    drop(review_lsp::store::Store::memory(&settings));
    // An untrusted layer keeps nothing sensitive.
    let mut untrusted = value;
    let mut withheld = Vec::new();
    config::sensitive::strip(&mut untrusted, &mut withheld);
    for (key, _) in config::leaves(&untrusted) {
        assert!(!config::sensitive::is_sensitive(&key), "{key} survived stripping");
    }
    config
}

fuzz_target!(|data: &[u8]| {
    init();
    let text = String::from_utf8_lossy(data);
    // The whole input as one file; then split at the first NUL into a file and a second
    // layer on top (later layers win key by key).
    let (first, second) = match text.split_once('\0') {
        Some((a, b)) => (a, Some(b)),
        None => (text.as_ref(), None),
    };
    let file = Layer::from_toml_str(first, Origin::Workspace("review-lsp.toml".into()));
    if let Err(problem) = &file {
        assert!(problem.message.starts_with("invalid TOML"));
    }
    // Even a raw, unchecked `memory_entries` must not size an allocation (ranges aside).
    if let Some(n) = file.as_ref().ok().and_then(|l| l.value.pointer("/cache/memory_entries")?.as_u64()) {
        let settings = review_lsp::store::StoreSettings { memory_entries: n as usize, ..Default::default() };
        drop(review_lsp::store::Store::memory(&settings));
    }
    let mut layers: Vec<Layer> = file.into_iter().collect();
    check(&layers);
    if let Some(second) = second {
        if let Ok(layer) = Layer::from_toml_str(second, Origin::User("second.toml".into())) {
            layers.push(layer);
        } else if let Ok(value) = serde_json::from_str(second) {
            layers.push(Layer::from_client(value, "initializationOptions"));
        }
        check(&layers);
    }
    // Editor settings arrive as JSON, possibly wrapped in {"review-lsp": ...}.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        check(&[Layer::from_client(value, "workspace/didChangeConfiguration")]);
    }
});
