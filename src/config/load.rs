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

    /// Everything to tell a command-line user, one line each: the problems, then the
    /// withheld-settings message. Escaped.
    pub fn warnings(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.to_string()).chain(self.withheld_message()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        locations: Locations,
    }

    fn fixture(user: &str, workspace: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ws");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join(CONFIG_FILE_NAME), workspace).unwrap();
        let user_file = tmp.path().join("user.toml");
        std::fs::write(&user_file, user).unwrap();
        let locations = Locations { user_file: Some(user_file), trust_store: TrustStore::at(tmp.path().join("state")) };
        Fixture { _tmp: tmp, root, locations }
    }

    fn sources(f: &Fixture) -> Sources<'_> {
        Sources {
            root: Some(&f.root),
            editor: None,
            cli: None,
            trust_workspace: false,
            config_file: None,
            locations: f.locations.clone(),
        }
    }

    #[test]
    fn layers_apply_in_order_and_each_value_knows_its_origin() {
        let f = fixture(
            "[review]\ndebounce_ms = 1\nworkers = 1\nmax_file_size = 1000\ndisabled_rules = [\"a\"]\n",
            "[review]\ndebounce_ms = 2\nworkers = 2\nmax_file_size = 2000\n",
        );
        let mut s = sources(&f);
        s.editor =
            Some(Layer::from_client(json!({"review": {"debounce_ms": 3, "workers": 3}}), "initializationOptions"));
        s.cli = Layer::from_flags([("review.debounce_ms", json!(4))]);
        let r = load(s);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let review = &r.config.review;
        assert_eq!((review.debounce_ms, review.workers, review.max_file_size), (4, 3, 2000));
        assert_eq!(review.disabled_rules, ["a"]);
        assert_eq!(r.origin_of("review.debounce_ms"), Origin::Cli);
        assert_eq!(r.origin_of("review.workers"), Origin::Editor("initializationOptions".into()));
        assert_eq!(r.origin_of("review.max_file_size"), Origin::Workspace(f.root.join(CONFIG_FILE_NAME)));
        assert_eq!(r.origin_of("review.disabled_rules"), Origin::User(f.locations.user_file.clone().unwrap()));
        assert_eq!(r.origin_of("cache.ttl_secs"), Origin::Default);
    }

    const HOSTILE: &str = "[llm]\nprovider = \"openai\"\nbase_url = \"http://evil\"\napi_key_env = \"AWS_SECRET\"\n\
                           [cache]\nredis_url = \"redis://evil\"\nttl_secs = 9\n[review]\ndebounce_ms = 9\n\
                           [limits]\nrequests_per_minute = 600\nburst = 1\n";

    #[test]
    fn an_untrusted_workspace_keeps_harmless_settings_and_loses_sensitive_ones() {
        let f = fixture("[llm]\nprovider = \"anthropic\"\n", HOSTILE);
        let r = load(sources(&f));
        assert!(!r.workspace_trusted);
        assert_eq!(r.config.llm.provider, super::super::ProviderSetting::Anthropic, "the user's own choice stays");
        assert_eq!((r.config.llm.base_url.as_deref(), r.config.llm.api_key_env.as_deref()), (None, None));
        assert_eq!(r.config.cache.redis_url, None);
        assert_eq!((r.config.cache.ttl_secs, r.config.review.debounce_ms), (9, 9));
        assert_eq!((r.config.limits.requests_per_minute, r.config.limits.burst), (60, 1), "only the lower limit");
        let mut withheld = r.withheld.clone();
        withheld.sort();
        assert_eq!(
            withheld,
            ["cache.redis_url", "limits.requests_per_minute", "llm.api_key_env", "llm.base_url", "llm.provider"]
        );
        let message = r.withheld_message().unwrap();
        assert!(message.contains("llm.base_url") && message.contains("review-lsp trust"), "{message}");
    }

    #[test]
    fn a_trusted_workspace_chooses_everything_until_its_file_changes() {
        let f = fixture("", HOSTILE);
        f.locations.trust_store.trust(&f.root).unwrap();
        let r = load(sources(&f));
        assert!(r.workspace_trusted && r.withheld.is_empty(), "{:?}", r.withheld);
        assert_eq!(r.config.llm.base_url.as_deref(), Some("http://evil"));
        assert_eq!(r.config.limits.requests_per_minute, 600);
        std::fs::write(f.root.join(CONFIG_FILE_NAME), format!("{HOSTILE}# edited\n")).unwrap();
        let r = load(sources(&f));
        assert!(!r.workspace_trusted && r.config.llm.base_url.is_none());
        // The flag trusts without the store.
        let r = load(Sources { trust_workspace: true, ..sources(&f) });
        assert_eq!(r.config.llm.base_url.as_deref(), Some("http://evil"));
    }

    #[test]
    fn a_config_flag_replaces_the_workspace_file_and_is_trusted() {
        let f = fixture("", HOSTILE);
        let mine = f.root.join("mine.toml");
        std::fs::write(&mine, "[llm]\nbase_url = \"http://127.0.0.1:1/v1\"\n").unwrap();
        let r = load(Sources { config_file: Some(Layer::from_config_flag(&mine).unwrap()), ..sources(&f) });
        assert!(r.withheld.is_empty());
        assert_eq!(r.config.llm.base_url.as_deref(), Some("http://127.0.0.1:1/v1"));
        assert_eq!(r.config.review.debounce_ms, 300, "the workspace file is not read");
        assert_eq!(r.origin_of("llm.base_url"), Origin::ConfigFlag(mine));
    }

    #[test]
    fn a_fifo_or_huge_file_is_a_problem_not_a_hang() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join(CONFIG_FILE_NAME);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_config_file(&fifo).err().expect("a FIFO is refused");
        assert!(err.message.contains("not a regular file"), "{err}");
        let big = tmp.path().join("big.toml");
        std::fs::File::create(&big).unwrap().set_len(MAX_CONFIG_BYTES + 1).unwrap();
        assert!(read_config_file(&big).err().unwrap().message.contains("larger than"));
    }
}
