//! Counts prompt tokens before a call, to respect budgets and to batch.
//!
//! OpenAI models get their real tokenizer (tiktoken-rs, whose BPE tables are compiled into
//! the binary: nothing is downloaded): `o200k_base` for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and
//! the o-series, `cl100k_base` for older gpt-4 and gpt-3.5. Every other model (Claude,
//! Gemini, local models) gets an estimate: non-blank characters / [`CHARS_PER_TOKEN`] plus
//! [`TOKENS_PER_LINE`] per line.
//!
//! Why two terms: prompts are numbered code, and each line costs its number, `: `, its
//! indentation and its newline whatever its length. Calibrated against o200k on the
//! rendered, stripped chunks of `tests/corpus/clean` (17 files, 5 languages; `cargo test
//! --test prompt_reply calibrate_estimate -- --ignored --nocapture`): o200k averages 3.3
//! characters per token there, from 2.65 (Go: tabs) to 3.8 (Python). Plain chars / 3.6
//! was off by -26 %..+5 % per file; this estimate is off by -6 %..+21 % per file, +4 %
//! overall. Checked on larger corpora (`strip_token_saving`): -3.3 % on the Python stdlib,
//! -0.6 % on five Rust crates, -4.0 % on npm's JavaScript. So budgets built on it need a
//! margin of a few percent, more for Claude, whose tokenizer cuts code finer than o200k.

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

/// Non-blank characters per token of the estimate; see the module doc for the calibration.
pub const CHARS_PER_TOKEN: f64 = 4.4;
/// Tokens each line costs on top of its characters (number, indentation, newline).
pub const TOKENS_PER_LINE: f64 = 4.0;

/// Which counter a model gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    O200k,
    Cl100k,
    Estimate,
}

// Building a BPE parses its embedded table (a few hundred ms); do it once, on first use.
// `None` only if the embedded table failed to load, which falls back to the estimate.
static O200K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::o200k_base().ok());
static CL100K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::cl100k_base().ok());

/// The tokenizer for a model name as configured (`gpt-4o-mini`, `openai/gpt-4.1`,
/// `openai:o3-mini`, `gpt-4o-2024-08-06`).
pub fn tokenizer_for(model: &str) -> Tokenizer {
    let m = model.rsplit('/').next().unwrap_or(model).trim().to_ascii_lowercase();
    // `openai:gpt-4o` names a provider; `gpt-oss:20b` (an Ollama tag) does not.
    let m = match m.split_once(':') {
        Some((provider, rest)) if ["openai", "azure", "anthropic", "gemini", "ollama"].contains(&provider) => {
            rest.to_string()
        }
        _ => m,
    };
    let o_series = ["o1", "o3", "o4"].iter().any(|p| m == *p || m.starts_with(&format!("{p}-")));
    if o_series || ["gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss"].iter().any(|p| m.starts_with(p)) {
        Tokenizer::O200k
    } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") || m.starts_with("text-embedding-") {
        Tokenizer::Cl100k
    } else {
        Tokenizer::Estimate
    }
}

/// Tokens `text` costs as input to `model`.
pub fn count(model: &str, text: &str) -> usize {
    let bpe = match tokenizer_for(model) {
        Tokenizer::O200k => O200K.as_ref(),
        Tokenizer::Cl100k => CL100K.as_ref(),
        Tokenizer::Estimate => None,
    };
    match bpe {
        // `encode_ordinary`: text that looks like a special token is counted as text.
        Some(bpe) => bpe.encode_ordinary(text).len(),
        None => estimate(text),
    }
}

/// The calibrated estimate, for models without a tokenizer here.
pub fn estimate(text: &str) -> usize {
    let visible = text.chars().filter(|c| !c.is_whitespace()).count() as f64;
    (visible / CHARS_PER_TOKEN + text.lines().count() as f64 * TOKENS_PER_LINE).ceil() as usize
}

/// Loads the model's tokenizer now, so the first review does not pay for it.
pub fn warm_up(model: &str) {
    count(model, "");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_get_their_tokenizer() {
        for m in ["gpt-4o-mini", "openai/gpt-4.1", "openai:o3-mini", "o1", "gpt-5", "GPT-4o-2024-08-06", "gpt-oss:20b"]
        {
            assert_eq!(tokenizer_for(m), Tokenizer::O200k, "{m}");
        }
        assert_eq!(tokenizer_for("gpt-4-turbo"), Tokenizer::Cl100k);
        assert_eq!(tokenizer_for("gpt-3.5-turbo"), Tokenizer::Cl100k);
        for m in ["claude-sonnet-4-5", "gemini-2.5-flash", "llama3.1:8b", "qwen2.5-coder", "o1x"] {
            assert_eq!(tokenizer_for(m), Tokenizer::Estimate, "{m}");
        }
    }

    #[test]
    fn real_counts_match_known_values() {
        // "hello world" is two tokens in both encodings.
        assert_eq!(count("gpt-4o", "hello world"), 2);
        assert_eq!(count("gpt-4", "hello world"), 2);
        assert_eq!(count("gpt-4o", ""), 0);
        // 14 visible characters on 2 lines: 14 / 4.4 + 2 * 4 = 11.2.
        assert_eq!(count("claude-3-5-haiku", "abc = 1\nreturn abc"), 12);
        assert_eq!(count("gemini-2.5-pro", ""), 0);
    }
}
