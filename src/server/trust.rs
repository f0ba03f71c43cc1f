//! Owns workspace trust in the editor: asking the user, once per folder and workspace-file
//! hash, to trust a folder whose `review-lsp.toml` sets sensitive keys; the
//! `review-lsp.trustWorkspace` command; and the editor's own trust flag (VS Code's
//! `isTrusted`), which is only ever read from the editor's settings, never from a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{MessageActionItem, MessageType};

use super::folders::Folder;
use super::session::Session;
use crate::config::{ReadFile, TrustStore};

pub const TRUST: &str = "Trust";
pub const NOT_NOW: &str = "Not now";

/// Removes the editor's `{"trust": {"workspace": bool}}` from its settings (it is not a
/// setting of the schema) and returns the flag.
pub fn take_editor_trust(settings: &mut Value) -> Option<bool> {
    let trust = settings.as_object_mut()?.remove("trust")?;
    let flag = trust.get("workspace").and_then(Value::as_bool);
    if flag.is_none() {
        tracing::warn!("ignored editor setting `trust`: expected {{\"workspace\": true|false}}");
    }
    flag
}

/// For each folder whose workspace file had sensitive keys withheld, asks once (per folder
/// and file hash) whether to trust it; "Not now" lasts until the file changes or the session
/// ends. Requests to the client wait for the user, so each is sent from its own task: no
/// handler ever waits on it.
pub fn ask_where_withheld(session: &Arc<Session>, folders: Vec<Arc<Folder>>) {
    for folder in folders {
        let state = folder.trust();
        let Some((file, hash)) = state.file.clone() else { continue };
        if state.withheld.is_empty() || state.trusted {
            continue;
        }
        if !session.trust_asked.lock().unwrap_or_else(|p| p.into_inner()).insert((file, hash.clone())) {
            continue;
        }
        // VS Code decides trust itself (its restricted mode is the answer): tell, do not ask.
        let editor_decides = session.editor_trust.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        let session = session.clone();
        tokio::spawn(async move {
            if editor_decides || !session.info().message_requests {
                let message = warning(&folder, &state.withheld, editor_decides);
                tracing::warn!("{}", crate::escape::line(&message));
                super::messages::show(&session.client, MessageType::WARNING, message).await;
                return;
            }
            let question = question(&folder, &state.withheld);
            let actions = vec![action(TRUST), action(NOT_NOW)];
            match super::messages::ask(&session.client, MessageType::WARNING, question, actions).await {
                Ok(Some(choice)) if choice.title == TRUST => {
                    if let Err(e) = trust_folder(&session, &folder, Some(&hash)).await {
                        super::messages::show(&session.client, MessageType::ERROR, format!("review-lsp: {e}")).await;
                    }
                }
                Ok(_) => tracing::info!(folder = %folder.display(), "workspace not trusted for this session"),
                Err(e) => tracing::warn!(folder = %folder.display(), "trust prompt failed: {e}"),
            }
        });
    }
}

fn action(title: &str) -> MessageActionItem {
    MessageActionItem { title: title.into(), properties: Default::default() }
}

/// "<folder>'s review-lsp.toml sets <keys>, which decide where your code and keys go"
fn what_it_sets(folder: &Folder, withheld: &[String]) -> String {
    let keys = withheld.iter().map(|k| crate::escape::line(k).into_owned()).collect::<Vec<_>>().join(", ");
    format!("review-lsp: {}'s review-lsp.toml sets {keys}, which decide where your code and keys go", folder.display())
}

fn question(folder: &Folder, withheld: &[String]) -> String {
    format!("{}. Trust this workspace?", what_it_sets(folder, withheld))
}

fn warning(folder: &Folder, withheld: &[String], editor_decides: bool) -> String {
    let how = if editor_decides {
        "trust the workspace in the editor (VS Code: Workspaces: Manage Workspace Trust)".to_string()
    } else {
        format!(
            "run the command {} or `review-lsp trust {}` in a terminal",
            super::commands::TRUST_WORKSPACE,
            folder.display()
        )
    };
    format!("{}; these are ignored settings until you trust this workspace: {how}.", what_it_sets(folder, withheld))
}

/// `review-lsp.trustWorkspace [folderUri]`: trusts a folder's workspace file as it is now and
/// reloads that folder. Without an argument, the only folder; with several, an error naming
/// them.
pub async fn trust_workspace_command(session: &Arc<Session>, args: &[Value]) -> Result<Value> {
    let folder = match super::commands::folder_arg(session, args)? {
        Some(folder) => folder,
        None => match session.folders.all().as_slice() {
            [only] => only.clone(),
            [] => return Err(Error::invalid_params("no workspace folder to trust")),
            many => {
                let names = many.iter().filter_map(|f| f.uri.as_ref()).map(|u| u.as_str()).collect::<Vec<_>>();
                let names = crate::escape::line(&names.join(", ")).into_owned();
                return Err(Error::invalid_params(format!("several workspace folders are open; give one of: {names}")));
            }
        },
    };
    let file = trust_folder(session, &folder, None).await.map_err(Error::invalid_params)?;
    Ok(json!({"folder": folder.uri.as_ref().map(|u| u.as_str()), "trusted": true, "file": file}))
}

/// Records the folder's workspace file in the trust store (blocking pool) and reloads the
/// folder. With `expected`, the file must still be the version the user was asked about, or
/// the trust is taken back. Returns the folder trusted.
async fn trust_folder(
    session: &Arc<Session>,
    folder: &Arc<Folder>,
    expected: Option<&str>,
) -> std::result::Result<PathBuf, String> {
    let root = folder.root.clone().ok_or("files outside the workspace folders have no workspace file")?;
    let expected = expected.map(str::to_string);
    let recorded =
        tokio::task::spawn_blocking(move || record(&TrustStore::default_store(), &root, expected.as_deref()))
            .await
            .map_err(|e| format!("trusting failed: {e}"))?;
    let trusted = recorded?;
    tracing::info!(folder = %folder.display(), "workspace trusted");
    super::settings::reload_folder(session.clone(), folder.clone());
    Ok(trusted)
}

/// Blocking: adds the folder's workspace file, as it is now, to the user's trust store.
fn record(store: &TrustStore, root: &Path, expected: Option<&str>) -> std::result::Result<PathBuf, String> {
    let trusted = store.trust(root)?;
    let now = match crate::config::read_config_file(&root.join(crate::config::CONFIG_FILE_NAME)) {
        Ok(ReadFile::Text(text)) => Some(blake3::hash(text.as_bytes()).to_hex().to_string()),
        _ => None,
    };
    if expected.is_some_and(|e| now.as_deref() != Some(e)) {
        // The file changed between the question and the answer: the user never saw this one.
        store.revoke(root)?;
        return Err(format!(
            "{}'s review-lsp.toml changed while you were asked; not trusted",
            crate::escape::path(root)
        ));
    }
    Ok(trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str) -> String {
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }

    #[test]
    fn a_file_changed_since_the_question_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::at(dir.path().join("state"));
        let root = dir.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("review-lsp.toml"), "[llm]\nbase_url = \"http://127.0.0.1:9/v1\"\n").unwrap();
        let asked = hash("[llm]\nbase_url = \"http://127.0.0.1:1/v1\"\n");
        let err = record(&store, &root, Some(&asked)).unwrap_err();
        assert!(err.contains("changed while you were asked"), "{err}");
        assert!(!store.is_trusted(&root));

        let now = hash(&std::fs::read_to_string(root.join("review-lsp.toml")).unwrap());
        record(&store, &root, Some(&now)).unwrap();
        assert!(store.is_trusted(&root));
    }

    #[test]
    fn the_editor_trust_flag_is_taken_out_of_the_settings() {
        let mut settings = serde_json::json!({"review": {"debounce_ms": 5}, "trust": {"workspace": true}});
        assert_eq!(take_editor_trust(&mut settings), Some(true));
        assert_eq!(settings, serde_json::json!({"review": {"debounce_ms": 5}}));
        let mut bad = serde_json::json!({"trust": "yes"});
        assert_eq!(take_editor_trust(&mut bad), None);
        assert_eq!(take_editor_trust(&mut serde_json::json!({})), None);
    }
}
