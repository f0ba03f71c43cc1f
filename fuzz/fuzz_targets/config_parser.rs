//! Settings never fail: arbitrary bytes as `review-lsp.toml` (and, when they happen to be
//! JSON, as editor settings) go through the layering in `config::resolve`, which must always
//! give a `Config` plus problems, never panic.
//!
//! `resolve` falls back to the defaults with a `tracing::error!` when the merged layers do
//! not parse, which its comment says cannot happen ("merging clean objects keeps them
//! clean"); an error event from `review_lsp::config` is turned into a panic so that
//! libFuzzer reports it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use review_lsp::config::{self, Config, Layer};
use tracing_subscriber::layer::{Context, SubscriberExt};

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
    let again = Layer { origin: "again".into(), value: serde_json::to_value(&config).expect("config serializes") };
    let (twice, more) = config::resolve(&[again]);
    assert!(more.is_empty(), "a resolved config has problems: {more:?}");
    assert_eq!(twice, config);
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
    let file = Layer::from_toml_str(first, "review-lsp.toml".into());
    if let Err(problem) = &file {
        assert!(problem.message.starts_with("invalid TOML"));
    }
    let mut layers: Vec<Layer> = file.into_iter().collect();
    check(&layers);
    if let Some(second) = second {
        if let Ok(layer) = Layer::from_toml_str(second, "second.toml".into()) {
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
