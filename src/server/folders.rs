//! Owns the workspace folders: each folder's settings, trust state, engine and store, and
//! which folder a file belongs to. A file belongs to the innermost folder that contains it;
//! a file outside every folder is reviewed with the user-level settings only (no workspace
//! file), as ruff's server does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tower_lsp_server::ls_types::Uri;

use super::session::{read, write};
use crate::config::{Config, Resolved};
use crate::review::Engine;
use crate::review::llm_agents::Routing;
use crate::store::Store;

/// What a folder's last settings load decided about its workspace file's sensitive keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustState {
    /// Sensitive keys the workspace file sets that were not applied because it is not trusted.
    pub withheld: Vec<String>,
    pub trusted: bool,
    /// The workspace file and the blake3 (hex) of the text that was loaded, when there is one.
    pub file: Option<(PathBuf, String)>,
}

struct Loaded {
    /// The resolved settings with each value's origin, for showStats.
    settings: Arc<Resolved>,
    config: Arc<Config>,
    engine: Arc<Engine>,
    /// The folder's store; the engine shares it as its cache when caching is on.
    store: Option<Arc<Store>>,
    trust: TrustState,
}

/// One workspace folder, or (with no root) the scope of files outside every folder.
pub struct Folder {
    pub uri: Option<Uri>,
    pub root: Option<PathBuf>,
    pub name: String,
    loaded: RwLock<Loaded>,
}

impl Folder {
    pub fn new(uri: Option<Uri>, root: Option<PathBuf>, name: String) -> Folder {
        let config = Config::default();
        let loaded = Loaded {
            settings: Arc::new(Resolved::default()),
            engine: Arc::new(Engine::new(config.review.clone(), None)),
            config: Arc::new(config),
            store: None,
            trust: TrustState::default(),
        };
        Folder { uri, root, name, loaded: RwLock::new(loaded) }
    }

    /// The scope of files outside every folder: user-level and editor settings only.
    pub fn outside() -> Folder {
        Folder::new(None, None, "(outside the workspace folders)".into())
    }

    pub fn config(&self) -> Arc<Config> {
        read(&self.loaded).config.clone()
    }

    pub fn engine(&self) -> Arc<Engine> {
        read(&self.loaded).engine.clone()
    }

    pub fn store(&self) -> Option<Arc<Store>> {
        read(&self.loaded).store.clone()
    }

    pub fn cache(&self) -> Option<Arc<Store>> {
        self.engine().cache().cloned()
    }

    pub fn trust(&self) -> TrustState {
        read(&self.loaded).trust.clone()
    }

    pub fn settings(&self) -> Arc<Resolved> {
        read(&self.loaded).settings.clone()
    }

    /// Swaps in a new engine and store. The old ones may hold the last handle to a store, whose
    /// drop waits for a final commit, so they are dropped on the blocking pool.
    pub fn install(&self, settings: Resolved, routing: Routing, store: Arc<Store>, trust: TrustState) {
        let config = settings.config.clone();
        let cache = config.cache.enabled.then(|| Arc::clone(&store));
        let engine = Arc::new(Engine::new(config.review.clone(), cache).with_llm(routing));
        let mut loaded = write(&self.loaded);
        let old_engine = std::mem::replace(&mut loaded.engine, engine);
        let old_store = loaded.store.replace(store);
        loaded.config = Arc::new(config);
        loaded.settings = Arc::new(settings);
        loaded.trust = trust;
        drop(loaded);
        tokio::task::spawn_blocking(move || drop((old_engine, old_store)));
    }

    /// The path as models and stored results name it: relative to the folder's root when
    /// inside it, else the file name.
    pub fn shown_path(&self, path: &Path) -> String {
        match self.root.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            Some(relative) => relative.to_string_lossy().into_owned(),
            None => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }

    /// How the folder is named in messages: its root path, escaped for display.
    pub fn display(&self) -> String {
        match &self.root {
            Some(root) => crate::escape::path(root),
            None => self.name.clone(),
        }
    }
}

/// The open workspace folders and the outside scope.
pub struct Folders {
    list: RwLock<Vec<Arc<Folder>>>,
    outside: Arc<Folder>,
}

impl Default for Folders {
    fn default() -> Self {
        Folders { list: RwLock::new(Vec::new()), outside: Arc::new(Folder::outside()) }
    }
}

impl Folders {
    /// The folders, in the order the client gave them.
    pub fn all(&self) -> Vec<Arc<Folder>> {
        read(&self.list).clone()
    }

    /// Every scope whose settings a reload must refresh: the folders and the outside scope.
    pub fn scopes(&self) -> Vec<Arc<Folder>> {
        let mut scopes = self.all();
        scopes.push(self.outside.clone());
        scopes
    }

    pub fn outside(&self) -> Arc<Folder> {
        self.outside.clone()
    }

    /// The scope whose settings decide process-wide things (the LLM gate, the log file,
    /// metrics): the first folder, else the outside scope.
    pub fn primary(&self) -> Arc<Folder> {
        read(&self.list).first().cloned().unwrap_or_else(|| self.outside.clone())
    }

    /// The innermost folder containing `path`, else the outside scope.
    pub fn for_path(&self, path: &Path) -> Arc<Folder> {
        read(&self.list)
            .iter()
            .filter(|f| f.root.as_deref().is_some_and(|r| path.starts_with(r)))
            .max_by_key(|f| f.root.as_ref().map_or(0, |r| r.components().count()))
            .cloned()
            .unwrap_or_else(|| self.outside.clone())
    }

    /// The folder of a document; a URI that is not a file belongs to no folder.
    pub fn for_uri(&self, uri: &Uri) -> Arc<Folder> {
        match uri.to_file_path() {
            Some(path) => self.for_path(&path),
            None => self.outside.clone(),
        }
    }

    /// The folder with this URI (or the same path spelt another way), if it is open.
    pub fn find(&self, uri: &Uri) -> Option<Arc<Folder>> {
        read(&self.list).iter().find(|f| f.is(uri)).cloned()
    }

    /// Adds a folder unless the same one is open; returns whether it was added.
    pub fn add(&self, folder: Arc<Folder>) -> bool {
        let mut list = write(&self.list);
        if list.iter().any(|f| f.root == folder.root) {
            return false;
        }
        list.push(folder);
        true
    }

    pub fn remove(&self, uri: &Uri) -> Option<Arc<Folder>> {
        let mut list = write(&self.list);
        let index = list.iter().position(|f| f.is(uri))?;
        Some(list.remove(index))
    }
}

impl Folder {
    /// Whether `uri` names this folder; `file:///w/a/` and `file:///w/a` are the same folder.
    fn is(&self, uri: &Uri) -> bool {
        self.uri.as_ref() == Some(uri) || (self.root.is_some() && uri.to_file_path().as_deref() == self.root.as_deref())
    }
}

/// A folder from the client: its URI, its path (file URIs only) and its name.
pub fn from_client(uri: Uri, name: String) -> Option<Folder> {
    let root = uri.to_file_path()?.into_owned();
    Some(Folder::new(Some(uri), Some(root), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(roots: &[&str]) -> Folders {
        let folders = Folders::default();
        for root in roots {
            let uri = Uri::from_file_path(root).unwrap();
            folders.add(Arc::new(from_client(uri, root.to_string()).unwrap()));
        }
        folders
    }

    #[test]
    fn a_file_belongs_to_the_innermost_folder() {
        let f = folders(&["/w/a", "/w/a/inner", "/w/b"]);
        assert_eq!(f.for_path(Path::new("/w/a/x.py")).root.as_deref(), Some(Path::new("/w/a")));
        assert_eq!(f.for_path(Path::new("/w/a/inner/x.py")).root.as_deref(), Some(Path::new("/w/a/inner")));
        assert_eq!(f.for_path(Path::new("/w/b/deep/x.py")).root.as_deref(), Some(Path::new("/w/b")));
    }

    #[test]
    fn a_file_outside_every_folder_gets_the_outside_scope() {
        let f = folders(&["/w/a"]);
        // A sibling whose name merely starts with the folder's is not inside it.
        assert!(f.for_path(Path::new("/w/ab/x.py")).root.is_none());
        assert!(f.for_path(Path::new("/elsewhere/x.py")).root.is_none());
    }

    #[test]
    fn removing_a_folder_moves_its_files_out() {
        let f = folders(&["/w/a", "/w/a/inner"]);
        let inner = Uri::from_file_path("/w/a/inner").unwrap();
        assert!(f.remove(&inner).is_some());
        assert_eq!(f.for_path(Path::new("/w/a/inner/x.py")).root.as_deref(), Some(Path::new("/w/a")));
        assert!(!f.add(Arc::new(from_client(Uri::from_file_path("/w/a").unwrap(), "a".into()).unwrap())));
        assert_eq!(f.all().len(), 1);
        // The same folder with a trailing slash is found and removed.
        let slashed: Uri = "file:///w/a/".parse().unwrap();
        assert!(f.remove(&slashed).is_some());
        assert!(f.all().is_empty());
    }
}
