//! Owns the trust store: which workspace folders the user has allowed to choose sensitive
//! settings, modelled on Neovim's `vim.secure` trust database and `direnv allow`.
//!
//! An entry is the folder's canonical path and the blake3 of its `review-lsp.toml` as it was
//! when trusted (or a marker for "no file"), so any change to the file makes the folder
//! untrusted again. The store is `$XDG_STATE_HOME/review-lsp/trust.json` (default
//! `~/.local/state/review-lsp/trust.json`), written atomically (temp file + rename). A store
//! that cannot be read or parsed trusts nothing and says so.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CONFIG_FILE_NAME;
use super::load::{self, ReadFile};

/// Larger stores are refused (treated as corrupt) rather than read into memory.
const MAX_STORE_BYTES: u64 = 4 << 20;
/// The hash recorded for a folder that has no `review-lsp.toml`.
const NO_FILE: &str = "no-file";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The folder, canonical.
    pub path: PathBuf,
    /// blake3 (hex) of its `review-lsp.toml` when trusted, or `no-file`.
    pub config_hash: String,
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    entries: Vec<Entry>,
}

/// The trust database in one directory.
#[derive(Clone, Debug)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    pub fn at(dir: impl Into<PathBuf>) -> TrustStore {
        TrustStore { dir: dir.into() }
    }

    /// The state directory ([`super::default_state_dir`]).
    pub fn default_location() -> PathBuf {
        super::default_state_dir()
    }

    pub fn default_store() -> TrustStore {
        TrustStore::at(Self::default_location())
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("trust.json")
    }

    /// Whether `root` is trusted with its `review-lsp.toml` as it is now on disk. An unreadable
    /// store trusts nothing (and logs why).
    pub fn is_trusted(&self, root: &Path) -> bool {
        let content = match load::read_config_file(&root.join(CONFIG_FILE_NAME)) {
            Ok(ReadFile::Missing) => None,
            Ok(ReadFile::Text(text)) => Some(text),
            Err(_) => return false,
        };
        self.check(root, content.as_deref().map(str::as_bytes)).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            false
        })
    }

    /// Whether `root` is trusted with exactly this `review-lsp.toml` content (`None`: no file).
    /// Taking the bytes already read means the file trusted is the file used. `Err` is a
    /// store that cannot be read: nothing is trusted.
    pub fn check(&self, root: &Path, config: Option<&[u8]>) -> Result<bool, String> {
        let Ok(canonical) = std::fs::canonicalize(root) else { return Ok(false) };
        let hash = hash_of(config);
        Ok(self.read()?.entries.iter().any(|e| e.path == canonical && e.config_hash == hash))
    }

    /// Trusts `root` with its current `review-lsp.toml`; returns the canonical folder.
    pub fn trust(&self, root: &Path) -> Result<PathBuf, String> {
        let canonical =
            std::fs::canonicalize(root).map_err(|e| format!("cannot trust {}: {e}", crate::escape::path(root)))?;
        if !canonical.is_dir() {
            return Err(format!("cannot trust {}: not a folder", crate::escape::path(&canonical)));
        }
        let hash = match load::read_config_file(&canonical.join(CONFIG_FILE_NAME)).map_err(|p| p.to_string())? {
            ReadFile::Missing => hash_of(None),
            ReadFile::Text(text) => hash_of(Some(text.as_bytes())),
        };
        // A corrupt store is replaced: the user is asking to trust, and the old entries are unreadable.
        let mut store = self.read().unwrap_or_default();
        store.entries.retain(|e| e.path != canonical);
        store.entries.push(Entry { path: canonical.clone(), config_hash: hash });
        self.write(&store)?;
        Ok(canonical)
    }

    /// Forgets `root`; `Ok(false)` when it was not trusted.
    pub fn revoke(&self, root: &Path) -> Result<bool, String> {
        let target = std::fs::canonicalize(root).unwrap_or_else(|_| std::path::absolute(root).unwrap_or_default());
        let mut store = self.read()?;
        let before = store.entries.len();
        store.entries.retain(|e| e.path != target);
        if store.entries.len() == before {
            return Ok(false);
        }
        self.write(&store)?;
        Ok(true)
    }

    pub fn list(&self) -> Result<Vec<Entry>, String> {
        Ok(self.read()?.entries)
    }

    fn read(&self) -> Result<StoreFile, String> {
        let file = self.file();
        let shown = crate::escape::path(&file);
        let bytes = match std::fs::File::open(&file) {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                if len > MAX_STORE_BYTES {
                    return Err(format!(
                        "trust store {shown} is larger than {MAX_STORE_BYTES} bytes; trusting nothing"
                    ));
                }
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_STORE_BYTES), &mut bytes)
                    .map_err(|e| format!("cannot read trust store {shown}: {e}; trusting nothing"))?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::default()),
            Err(e) => return Err(format!("cannot read trust store {shown}: {e}; trusting nothing")),
        };
        serde_json::from_slice(&bytes).map_err(|e| format!("trust store {shown} is corrupt ({e}); trusting nothing"))
    }

    fn write(&self, store: &StoreFile) -> Result<(), String> {
        let shown = crate::escape::path(&self.file());
        let fail = |e: std::io::Error| format!("cannot write trust store {shown}: {e}");
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(fail)?;
        let body = serde_json::to_vec_pretty(&StoreFile { version: 1, entries: store.entries.clone() })
            .map_err(|e| format!("cannot encode trust store: {e}"))?;
        tmp.write_all(&body).and_then(|()| tmp.as_file().sync_all()).map_err(fail)?;
        tmp.persist(self.file()).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

fn hash_of(config: Option<&[u8]>) -> String {
    match config {
        Some(bytes) => blake3::hash(bytes).to_hex().to_string(),
        None => NO_FILE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, TrustStore, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let store = TrustStore::at(tmp.path().join("state"));
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join(CONFIG_FILE_NAME), "[llm]\nprovider = \"openai\"\n").unwrap();
        (tmp, store, ws)
    }

    #[test]
    fn trusted_until_the_file_changes() {
        let (_tmp, store, ws) = setup();
        assert!(!store.is_trusted(&ws));
        let canonical = store.trust(&ws).unwrap();
        assert_eq!(canonical, std::fs::canonicalize(&ws).unwrap());
        assert!(store.is_trusted(&ws));
        assert!(store.is_trusted(&ws.join(".")), "the canonical path is what counts");
        std::fs::write(ws.join(CONFIG_FILE_NAME), "[llm]\nprovider = \"gemini\"\n").unwrap();
        assert!(!store.is_trusted(&ws), "an edited file is untrusted again");
        std::fs::remove_file(ws.join(CONFIG_FILE_NAME)).unwrap();
        assert!(!store.is_trusted(&ws), "a removed file is a change too");
        store.trust(&ws).unwrap();
        assert!(store.is_trusted(&ws), "trusted with no file");
        assert_eq!(store.list().unwrap().len(), 1, "re-trusting replaces the entry");
    }

    #[test]
    fn revoke_forgets_the_folder() {
        let (_tmp, store, ws) = setup();
        store.trust(&ws).unwrap();
        assert!(store.revoke(&ws).unwrap());
        assert!(!store.is_trusted(&ws));
        assert!(!store.revoke(&ws).unwrap());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_store_trusts_nothing_and_says_so() {
        let (_tmp, store, ws) = setup();
        store.trust(&ws).unwrap();
        std::fs::write(store.file(), b"{\"version\":1,\"entries\":[{\"pa").unwrap();
        assert!(!store.is_trusted(&ws));
        let err = store.check(&ws, None).unwrap_err();
        assert!(err.contains("corrupt") && err.contains("trusting nothing"), "{err}");
        assert!(store.list().is_err());
        // Trusting again repairs it.
        store.trust(&ws).unwrap();
        assert!(store.is_trusted(&ws));
    }

    #[test]
    fn an_oversized_store_is_refused() {
        let (_tmp, store, ws) = setup();
        std::fs::create_dir_all(store.file().parent().unwrap()).unwrap();
        let f = std::fs::File::create(store.file()).unwrap();
        f.set_len(MAX_STORE_BYTES + 1).unwrap();
        assert!(store.check(&ws, None).unwrap_err().contains("larger than"));
    }
}
