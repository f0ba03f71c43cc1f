//! The editor set-ups in `editors/` stay in step with the server: Helix's `languages.toml`
//! starts review-lsp next to each language's usual server, and the VS Code extension's
//! settings keep the server's schema so they can be forwarded verbatim.

use std::path::PathBuf;

use serde_json::Value;

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

const HELIX_LANGUAGES: [&str; 7] = ["python", "javascript", "typescript", "tsx", "jsx", "rust", "go"];

/// The server's settings sections (`review-lsp.toml`, initializationOptions).
const SECTIONS: [&str; 8] = ["review", "llm", "agents", "limits", "budget", "cache", "log", "metrics"];

#[test]
fn helix_languages_toml_adds_review_lsp_next_to_the_usual_server() {
    let table: toml::Table = repo_file("editors/helix/languages.toml").parse().expect("languages.toml is valid TOML");

    let server = table
        .get("language-server")
        .and_then(|s| s.get("review-lsp"))
        .expect("[language-server.review-lsp] is defined");
    assert_eq!(server.get("command").and_then(|c| c.as_str()), Some("review-lsp"));
    let args: Vec<&str> = server
        .get("args")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(args, ["serve"], "review-lsp runs the LSP with `serve`");
    if let Some(config) = server.get("config") {
        let config = config.as_table().expect("config is a table");
        for key in config.keys() {
            assert!(SECTIONS.contains(&key.as_str()), "config.{key} is not a settings section");
        }
    }

    let languages = table.get("language").and_then(|l| l.as_array()).expect("[[language]] entries");
    for name in HELIX_LANGUAGES {
        let entry = languages
            .iter()
            .find(|l| l.get("name").and_then(|n| n.as_str()) == Some(name))
            .unwrap_or_else(|| panic!("no [[language]] entry for {name}"));
        let servers: Vec<&str> = entry
            .get("language-servers")
            .and_then(|s| s.as_array())
            .unwrap_or_else(|| panic!("{name} has no language-servers list"))
            .iter()
            .map(|s| {
                // Either a plain name or `{ name = "...", ... }`.
                s.as_str()
                    .or_else(|| s.get("name").and_then(|n| n.as_str()))
                    .unwrap_or_else(|| panic!("{name}: unexpected language-servers item {s:?}"))
            })
            .collect();
        let at = servers
            .iter()
            .position(|s| *s == "review-lsp")
            .unwrap_or_else(|| panic!("{name}: review-lsp missing from {servers:?}"));
        assert!(at > 0, "{name}: the language's usual server must come before review-lsp, got {servers:?}");
    }
}

#[test]
fn vscode_extension_commands_and_settings_match_the_server() {
    let package: Value = serde_json::from_str(&repo_file("editors/vscode/package.json")).expect("package.json is JSON");
    assert_eq!(package["name"], "review-lsp");
    assert_eq!(package["main"], "./out/extension.js");

    let titles: Vec<&str> = package["contributes"]["commands"]
        .as_array()
        .expect("contributes.commands")
        .iter()
        .filter_map(|c| c["title"].as_str())
        .collect();
    for title in ["Review: Scan Workspace", "Review: Review Current File", "Review: Clear Cache", "Review: Show Stats"]
    {
        assert!(titles.contains(&title), "command {title:?} missing from {titles:?}");
    }

    let activation: Vec<&str> =
        package["activationEvents"].as_array().expect("activationEvents").iter().filter_map(|e| e.as_str()).collect();
    for language in ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "rust", "go"] {
        let event = format!("onLanguage:{language}");
        assert!(activation.contains(&event.as_str()), "activation event {event} missing");
    }

    let properties =
        package["contributes"]["configuration"]["properties"].as_object().expect("configuration properties");
    for required in
        ["review-lsp.path", "review-lsp.trace.server", "review-lsp.review.debounce_ms", "review-lsp.llm.provider"]
    {
        assert!(properties.contains_key(required), "setting {required} missing");
    }
    for key in properties.keys() {
        if key == "review-lsp.path" || key == "review-lsp.trace.server" {
            continue;
        }
        let rest = key.strip_prefix("review-lsp.").unwrap_or_else(|| panic!("setting {key} is not under review-lsp."));
        let section = rest.split('.').next().unwrap_or_default();
        assert!(
            SECTIONS.contains(&section),
            "setting {key}: `{section}` is not a server settings section (one of {SECTIONS:?})"
        );
        // `review-lsp.<section>.<key>`, or a whole section object such as `review-lsp.agents`.
        assert!(rest.split('.').count() <= 2, "setting {key} nests deeper than section.key");
    }
}

/// VS Code's restricted mode must keep every setting a repository may not choose out of an
/// untrusted workspace's .vscode settings: the server's sensitive keys, the limits and budgets
/// a workspace may only tighten (VS Code cannot say "only lower"), and the binary's path.
#[test]
fn vscode_restricted_mode_covers_every_sensitive_setting() {
    let package: Value = serde_json::from_str(&repo_file("editors/vscode/package.json")).expect("package.json is JSON");
    let untrusted = &package["capabilities"]["untrustedWorkspaces"];
    assert_eq!(untrusted["supported"], "limited", "{untrusted}");
    let restricted: Vec<&str> = untrusted["restrictedConfigurations"]
        .as_array()
        .expect("restrictedConfigurations")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    let properties = package["contributes"]["configuration"]["properties"].as_object().unwrap();
    for key in properties.keys() {
        let rest = key.strip_prefix("review-lsp.").unwrap();
        let must = rest == "path"
            || review_lsp::config::sensitive::is_sensitive(rest)
            || rest.starts_with("limits.")
            || rest.starts_with("budget.")
            || rest == "llm.max_output_tokens"
            // A whole section object whose members are sensitive (`agents`).
            || review_lsp::config::sensitive::is_sensitive(&format!("{rest}.security.base_url"));
        assert_eq!(restricted.contains(&key.as_str()), must, "{key}: restricted in untrusted workspaces = {must}");
    }

    let commands: Vec<&str> =
        package["contributes"]["commands"].as_array().unwrap().iter().filter_map(|c| c["command"].as_str()).collect();
    assert!(commands.contains(&"reviewLsp.trustWorkspace"), "{commands:?}");
    let source = repo_file("editors/vscode/src/extension.ts");
    assert!(review_lsp::server::COMMANDS.contains(&"review-lsp.trustWorkspace"));
    assert!(source.contains("\"review-lsp.trustWorkspace\""), "the extension calls the server's trust command");
    assert!(source.contains("onDidGrantWorkspaceTrust") && source.contains("isTrusted"));
}
