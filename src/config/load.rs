//! Owns reading settings from disk and resolving every layer into one [`Resolved`]: defaults <
//! user file < workspace file (sensitive keys only when trusted) < editor < command line.
//!
//! Settings files are outside input: only regular files are read (a FIFO or device named
//! `review-lsp.toml` must not hang the server), opened without blocking, and at most
//! [`MAX_CONFIG_BYTES`].

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::layers::{Layer, Merged, Origin};
use super::trust::TrustStore;
use super::{CONFIG_FILE_NAME, Config, Problem, ranges, sensitive};

/// A settings file larger than this is not read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

pub enum ReadFile {
    Missing,
    Text(String),
}

/// Reads a settings file: missing is fine, anything but a regular UTF-8 file under the size
/// bound is a problem.
pub fn read_config_file(path: &Path) -> Result<ReadFile, Problem> {
    let origin = crate::escape::path(path);
    let fail = |message: String| Problem { origin: origin.clone(), message };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // Without O_NONBLOCK, opening a FIFO waits for a writer: the server would hang.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadFile::Missing),
        Err(e) => return Err(fail(format!("cannot read config: {e}"))),
    };
    let meta = file.metadata().map_err(|e| fail(format!("cannot read config: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file; ignored".into()));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(fail(format!("larger than {MAX_CONFIG_BYTES} bytes; ignored")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(format!("cannot read config: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!("larger than {MAX_CONFIG_BYTES} bytes; ignored")));
    }
    String::from_utf8(bytes).map(ReadFile::Text).map_err(|_| fail("not valid UTF-8; ignored".into()))
}

/// Where the user's own file and the trust store are. [`Locations::from_env`] is what the
/// program uses; tests point both into a temporary folder.
#[derive(Clone, Debug)]
pub struct Locations {
    /// `None`: no user file.
    pub user_file: Option<PathBuf>,
    pub trust_store: TrustStore,
}

impl Locations {
    pub fn from_env() -> Locations {
        Locations { user_file: user_config_path(), trust_store: TrustStore::default_store() }
    }
}

/// `$REVIEW_LSP_CONFIG`, else `$XDG_CONFIG_HOME/review-lsp/config.toml`, else
/// `~/.config/review-lsp/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v: &std::ffi::OsString| !v.is_empty());
    if let Some(file) = env("REVIEW_LSP_CONFIG") {
        return Some(PathBuf::from(file));
    }
    let base = env("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| std::env::home_dir().map(|h| h.join(".config")))?;
    Some(base.join("review-lsp").join("config.toml"))
}

/// Everything settings are resolved from.
pub struct Sources<'a> {
    /// The workspace folder whose `review-lsp.toml` is read.
    pub root: Option<&'a Path>,
    pub editor: Option<Layer>,
    pub cli: Option<Layer>,
    /// --trust-workspace-config, REVIEW_LSP_TRUST_WORKSPACE=1, or a trusted editor workspace
    pub trust_workspace: bool,
    /// `scan --config FILE` ([`Layer::from_config_flag`]): the user's own choice, trusted, in
    /// place of the workspace file.
    pub config_file: Option<Layer>,
    pub locations: Locations,
}

impl<'a> Sources<'a> {
    /// The workspace at `root`, with the user file and trust store from the environment.
    pub fn new(root: Option<&'a Path>) -> Sources<'a> {
        Sources {
            root,
            editor: None,
            cli: None,
            trust_workspace: false,
            config_file: None,
            locations: Locations::from_env(),
        }
    }
}

/// The resolved settings and how they came to be.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub config: Config,
    /// Dotted key → the layer that set it (keys no layer set come from [`Origin::Default`]).
    pub origins: BTreeMap<String, Origin>,
    pub problems: Vec<Problem>,
    /// sensitive keys an untrusted workspace file asked for, ignored
    pub withheld: Vec<String>,
    pub workspace_trusted: bool,
    pub workspace_file: Option<PathBuf>,
}

/// True when `REVIEW_LSP_TRUST_WORKSPACE` is `1` (or `true`/`yes`).
pub fn trust_from_env() -> bool {
    std::env::var("REVIEW_LSP_TRUST_WORKSPACE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Resolves every layer. Blocking file I/O (run it on the blocking pool); never fails: each
/// problem is reported and the rest applies.
pub fn load(sources: Sources) -> Resolved {
    let mut resolved = Resolved::default();
    // Each layer with whether it may choose sensitive settings.
    let mut layers: Vec<(Layer, bool)> = Vec::new();
    if let Some(path) = &sources.locations.user_file {
        layers.extend(read_layer(path, Origin::User(path.clone()), &mut resolved.problems).map(|l| (l, true)));
    }
    if let Some(layer) = sources.config_file {
        layers.push((layer, true));
        resolved.workspace_trusted = true;
    } else if let Some(root) = sources.root {
        let path = root.join(CONFIG_FILE_NAME);
        let content = match read_config_file(&path) {
            Ok(ReadFile::Text(text)) => Some(text),
            Ok(ReadFile::Missing) => None,
            Err(problem) => {
                resolved.problems.push(problem);
                None
            }
        };
        // The bytes checked against the store are the bytes parsed: no window to swap the file.
        resolved.workspace_trusted = sources.trust_workspace
            || sources.locations.trust_store.check(root, content.as_deref().map(str::as_bytes)).unwrap_or_else(|e| {
                resolved.problems.push(Problem { origin: "trust store".into(), message: e });
                false
            });
        if let Some(text) = content {
            resolved.workspace_file = Some(path.clone());
            match Layer::from_toml_str(&text, Origin::Workspace(path)) {
                Ok(layer) => layers.push((layer, resolved.workspace_trusted)),
                Err(problem) => resolved.problems.push(problem),
            }
        }
    }
    layers.extend(sources.editor.into_iter().chain(sources.cli).map(|l| (l, true)));

    let mut merged = Merged::new();
    merged.apply(serde_json::to_value(Config::default()).unwrap_or_default(), &Origin::Default);
    for (layer, trusted) in layers {
        let mut value = super::clean_layer(&layer, &mut resolved.problems);
        ranges::enforce(&mut value, &layer.origin, &mut resolved.problems);
        if !trusted {
            sensitive::strip(&mut value, &mut resolved.withheld);
            sensitive::keep_only_tighter(&mut value, &merged, &mut resolved.withheld);
        }
        merged.apply(value, &layer.origin);
    }
    resolved.config = super::parse_merged(merged.value);
    resolved.origins = merged.origins;
    resolved
}

fn read_layer(path: &Path, origin: Origin, problems: &mut Vec<Problem>) -> Option<Layer> {
    match read_config_file(path) {
        Ok(ReadFile::Text(text)) => Layer::from_toml_str(&text, origin).map_err(|p| problems.push(p)).ok(),
        Ok(ReadFile::Missing) => {
            // A missing default user file is normal; one named by REVIEW_LSP_CONFIG is a mistake.
            if std::env::var_os("REVIEW_LSP_CONFIG").is_some_and(|v| path == Path::new(&v)) {
                problems.push(Problem::new(&origin, "file not found; ignored".into()));
            }
            None
        }
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

impl Layer {
    /// A file named on the command line: it must exist and parse.
    pub fn from_config_flag(path: &Path) -> Result<Layer, Problem> {
        let origin = Origin::ConfigFlag(path.to_path_buf());
        match read_config_file(path)? {
            ReadFile::Text(text) => Layer::from_toml_str(&text, origin),
            ReadFile::Missing => Err(Problem::new(&origin, "file not found".into())),
        }
    }
}

impl Resolved {
    /// One message naming the settings an untrusted workspace asked for and how to trust it;
    /// `None` when nothing was withheld. Escaped: the keys come from the file.
    pub fn withheld_message(&self) -> Option<String> {
        if self.withheld.is_empty() {
            return None;
        }
        let keys: Vec<String> = self.withheld.iter().map(|k| crate::escape::line(k).into_owned()).collect();
        let file = self.workspace_file.as_deref().map(crate::escape::path).unwrap_or_else(|| CONFIG_FILE_NAME.into());
        let dir = self
            .workspace_file
            .as_deref()
            .and_then(Path::parent)
            .map(crate::escape::path)
            .unwrap_or_else(|| "DIR".into());
        Some(format!(
            "ignored settings from untrusted {file}: {} (they choose where code, keys or files go, or loosen \
             spend limits). To use them, trust this folder: `review-lsp trust {dir}` \
             (in CI: `--trust-workspace-config` or REVIEW_LSP_TRUST_WORKSPACE=1)",
            keys.join(", ")
        ))
    }

    /// Where `key` (dotted) came from: the layer that set it or one of its parents.
    pub fn origin_of(&self, key: &str) -> Origin {
        let mut probe = key;
        loop {
            if let Some(o) = self.origins.get(probe) {
                return o.clone();
            }
            match probe.rsplit_once('.') {
                Some((parent, _)) => probe = parent,
                None => return Origin::Default,
            }
        }
    }
}
