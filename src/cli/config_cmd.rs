//! Owns `review-lsp config show` (every resolved setting with where it came from) and
//! `review-lsp trust` (the folders allowed to choose sensitive settings).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::store_cmd::ListFormat;
use super::store_cmd::emit;
use crate::config::{self, Resolved, TrustStore};
use crate::escape;

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every resolved setting with the layer it came from, the withheld keys and
    /// whether the workspace is trusted.
    Show {
        /// The workspace folder whose `review-lsp.toml` is read.
        #[arg(long, value_name = "DIR", default_value = ".")]
        root: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Resolve as `scan --trust-workspace-config` would.
        #[arg(long)]
        trust_workspace_config: bool,
    },
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The folder to trust (default: the current one).
    #[arg(value_name = "DIR", conflicts_with_all = ["list", "revoke"])]
    pub dir: Option<PathBuf>,
    /// List the trusted folders.
    #[arg(long, conflicts_with = "revoke")]
    pub list: bool,
    /// Stop trusting DIR.
    #[arg(long, value_name = "DIR")]
    pub revoke: Option<PathBuf>,
}

pub fn config(action: &ConfigAction) -> Result<ExitCode, String> {
    let ConfigAction::Show { root, format, trust_workspace_config } = action;
    if !root.is_dir() {
        return Err(format!("{} is not a directory", escape::path(root)));
    }
    let mut sources = config::Sources::new(Some(root));
    sources.trust_workspace = *trust_workspace_config || config::trust_from_env();
    let resolved = config::load(sources);
    let text = match format {
        ListFormat::Json => serde_json::to_string_pretty(&resolved.report()).map_err(|e| e.to_string())? + "\n",
        ListFormat::Text => show_text(&resolved),
    };
    emit(&text)
}

/// Like `git config --show-origin`: `origin<TAB>key = value`, one per line, then the trust
/// state and what was withheld. Everything is escaped: keys and values come from files.
fn show_text(resolved: &Resolved) -> String {
    let mut out = String::new();
    for setting in resolved.entries() {
        out.push_str(&format!(
            "{}\t{} = {}\n",
            escape::line(&setting.origin.to_string()),
            escape::line(&setting.key),
            escape::line(&setting.value.to_string())
        ));
    }
    let file = resolved.workspace_file.as_deref().map_or_else(|| "none".to_string(), escape::path);
    let trust = if resolved.workspace_trusted { "trusted" } else { "not trusted" };
    out.push_str(&format!("\nworkspace file: {file} ({trust})\n"));
    if let Some(message) = resolved.withheld_message() {
        out.push_str(&format!("withheld: {message}\n"));
    }
    for problem in &resolved.problems {
        out.push_str(&format!("problem: {problem}\n"));
    }
    out
}

pub fn trust(args: &TrustArgs) -> Result<ExitCode, String> {
    let store = TrustStore::default_store();
    if args.list {
        let entries = store.list()?;
        let text: String = entries.iter().map(|e| format!("{}\t{}\n", escape::path(&e.path), e.config_hash)).collect();
        return emit(&text);
    }
    if let Some(dir) = &args.revoke {
        let message = if store.revoke(dir)? {
            format!("no longer trusted: {}", escape::path(dir))
        } else {
            format!("{} was not trusted", escape::path(dir))
        };
        super::output::stderr::say(message);
        return Ok(ExitCode::SUCCESS);
    }
    let dir = args.dir.as_deref().unwrap_or(Path::new("."));
    let canonical = store.trust(dir)?;
    super::output::stderr::say(format_args!(
        "trusted: {} with its current {} (any change to that file makes it untrusted again)",
        escape::path(&canonical),
        config::CONFIG_FILE_NAME
    ));
    Ok(ExitCode::SUCCESS)
}
