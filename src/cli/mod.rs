//! Owns the command line: argument parsing and dispatch. `review-lsp`, `review-lsp --stdio`
//! and `review-lsp serve [--stdio]` run the language server; `review-lsp scan` reviews files
//! and prints a report ([`scan`]).
//!
//! Exit codes: 0 clean, 1 findings at or above `--fail-on`, 2 usage or configuration error
//! (clap's own errors already exit with 2).

mod config_cmd;
mod llm_progress;
pub mod output;
pub mod scan;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::review::finding::Severity;

/// Exit code for a usage or configuration error, the same as clap's.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "review-lsp",
    version,
    about = "A language server that reviews code; `scan` runs the same review from the command line.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run the language server over stdin/stdout (what running with no command does).
    #[arg(long)]
    pub stdio: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the language server.
    Serve {
        /// Talk LSP over stdin/stdout (the only transport; accepted because editors pass it).
        #[arg(long)]
        stdio: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics (`9464` means 127.0.0.1:9464).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<String>,
    },
    /// Review files and print the findings.
    Scan(ScanArgs),
    /// Inspect or prune the result cache of a workspace.
    Cache {
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        #[command(subcommand)]
        action: store_cmd::CacheAction,
    },
    /// Scan reports kept in the store (JSON, SARIF and a markdown summary).
    Report {
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        #[command(subcommand)]
        action: store_cmd::ReportAction,
    },
    /// Show the resolved settings and where each came from.
    Config {
        #[command(subcommand)]
        action: config_cmd::ConfigAction,
    },
    /// Allow a folder's `review-lsp.toml` to choose sensitive settings (endpoints, keys,
    /// cache, log and metrics places) until the file changes; `--list`, `--revoke DIR`.
    Trust(config_cmd::TrustArgs),
    /// Past reviews of a workspace: when, what, with which model, tokens, time, outcome.
    History {
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        #[command(flatten)]
        args: store_cmd::HistoryArgs,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to review. Paths in the report are relative to the first one
    /// (its parent if it is a file), which is also where `review-lsp.toml` is read from.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Settings file to use instead of `<root>/review-lsp.toml` (trusted: it is your choice).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Let the scanned tree's `review-lsp.toml` choose sensitive settings (endpoints, keys,
    /// cache, log and metrics places). Also REVIEW_LSP_TRUST_WORKSPACE=1. Never with a fork's
    /// pull request and secrets.
    #[arg(long)]
    pub trust_workspace_config: bool,

    /// Neither read nor write the result cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Exit with 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,

    /// Review with this provider as well as the offline rules (overrides `llm.provider`).
    #[arg(long, value_parser = ["offline", "openai", "anthropic", "gemini"])]
    pub provider: Option<String>,

    /// Model name (overrides `llm.model`).
    #[arg(long)]
    pub model: Option<String>,

    /// Provider endpoint, e.g. an OpenAI-compatible local server (overrides `llm.base_url`).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Write Prometheus metrics (text format) to FILE at the end of the run, for CI.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    /// GitHub Actions workflow commands: one annotation per finding.
    Github,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Hint,
    None,
}

impl FailOn {
    /// The least severe finding that fails the run; `None` for `--fail-on none`.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Hint => Some(Severity::Hint),
            FailOn::None => None,
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version print to stdout and exit 0; real errors go to stderr with 2.
            let _ = err.print();
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    match cli.command {
        Some(Command::Scan(args)) => scan::run(&args),
        Some(Command::Cache { store, action }) => finish(store_cmd::cache(&store, &action)),
        Some(Command::Report { store, action }) => finish(store_cmd::report(&store, &action)),
        Some(Command::History { store, args }) => finish(store_cmd::history(&store, &args)),
        Some(Command::Config { action }) => finish(config_cmd::config(&action)),
        Some(Command::Trust(args)) => finish(config_cmd::trust(&args)),
        Some(Command::Serve { metrics_addr, .. }) => serve(crate::server::ServeOptions { metrics_addr }),
        None => serve(crate::server::ServeOptions::default()),
    }
}

/// Logs like `scan`, and turns an error into its message and exit code 2.
fn finish(result: Result<ExitCode, String>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(message) => {
            output::stderr::error(message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn serve(options: crate::server::ServeOptions) -> ExitCode {
    // The server sets up its own runtime and logging (`logging::init_server`).
    // On success `serve_stdio` ends the process itself, with the session's exit code.
    match crate::server::serve_stdio(options) {
        Ok(never) => match never {},
        Err(err) => {
            output::stderr::say(format_args!("review-lsp: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("review-lsp").chain(args.iter().copied()))
    }

    #[test]
    fn server_spellings() {
        assert!(parse(&[]).unwrap().command.is_none());
        assert!(parse(&["--stdio"]).unwrap().stdio);
        assert!(matches!(parse(&["serve", "--stdio"]).unwrap().command, Some(Command::Serve { stdio: true, .. })));
        assert!(matches!(parse(&["serve"]).unwrap().command, Some(Command::Serve { stdio: false, .. })));
    }

    #[test]
    fn scan_defaults_and_options() {
        let Some(Command::Scan(a)) = parse(&["scan"]).unwrap().command else { panic!() };
        assert_eq!(a.paths, [PathBuf::from(".")]);
        assert_eq!((a.format, a.fail_on, a.no_cache), (Format::Text, FailOn::Error, false));
        let Some(Command::Scan(a)) = parse(&[
            "scan",
            "src",
            "lib",
            "--format",
            "sarif",
            "--fail-on",
            "none",
            "--no-cache",
            "--config",
            "c.toml",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.paths.len(), 2);
        assert_eq!((a.format, a.fail_on, a.no_cache), (Format::Sarif, FailOn::None, true));
        assert_eq!(a.config, Some(PathBuf::from("c.toml")));
    }

    #[test]
    fn bad_usage_exits_2() {
        let err = parse(&["scan", "--format", "xml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(parse(&["--bogus"]).unwrap_err().exit_code(), 2);
    }
}
