//! Owns what `scan` shows while the LLM agents run: how many calls have gone out and, when the
//! rate limit holds them back, how long they wait and for which limit. A long scan that sits
//! silent looks hung; one that says "waiting 12 s for the rate limit" does not.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::llm::limits::Waiting;
use crate::review::llm_agents::gate;

const TICK: Duration = Duration::from_millis(250);
/// Without a terminal (CI logs) a line is printed when waiting starts, then at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Shorter waits are the limiter's normal pacing, not worth a line in a log.
const WORTH_SAYING: Duration = Duration::from_secs(1);

/// Runs until dropped (the caller races it against the calls).
pub async fn report(planned_files: usize) {
    let bar = io::stderr().is_terminal().then(|| {
        // Cleared when the caller drops this future, so the report starts on a clean line.
        let bar =
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_finish(ProgressFinish::AndClear);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar
    });
    let start_sent = calls_sent();
    let mut last_line: Option<Instant> = None;
    loop {
        let sent = calls_sent() - start_sent;
        let waiting = gate().waiting().into_iter().next().filter(|w| w.wait >= WORTH_SAYING);
        let line = describe(planned_files, sent, waiting.as_ref());
        match &bar {
            Some(bar) => {
                // The limit's name holds a settings value (the endpoint URL).
                bar.set_message(crate::escape::line(&line).into_owned());
                bar.tick();
            }
            None if waiting.is_some() && last_line.is_none_or(|t| t.elapsed() >= LOG_EVERY) => {
                super::output::stderr::say(&line);
                last_line = Some(Instant::now());
            }
            None if waiting.is_none() => last_line = None,
            None => {}
        }
        tokio::time::sleep(TICK).await;
    }
}

fn calls_sent() -> u64 {
    gate().snapshot().endpoints.iter().map(|e| e.limiter.admitted).sum()
}

fn describe(files: usize, sent: u64, waiting: Option<&Waiting>) -> String {
    let head = format!("LLM agents reviewing {files} files: {sent} calls sent");
    match waiting {
        None => head,
        Some(w) => format!(
            "{head}; waiting {} s for the rate limit of {} ({} calls queued)",
            w.wait.as_secs_f64().ceil() as u64,
            w.limit,
            w.calls
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_how_long_and_why() {
        let w = Waiting { limit: "openai:m@http://x/v1".into(), calls: 3, wait: Duration::from_millis(11_200) };
        assert_eq!(
            describe(40, 7, Some(&w)),
            "LLM agents reviewing 40 files: 7 calls sent; waiting 12 s for the rate limit of openai:m@http://x/v1 (3 calls queued)"
        );
        assert_eq!(describe(2, 0, None), "LLM agents reviewing 2 files: 0 calls sent");
    }
}
