//! Owns finding and loading the files a workspace review covers: which files to review
//! ([`discover`]) and reading one safely ([`load`]). Shared by the `scan` CLI and the
//! server's workspace scan, so it knows nothing of LSP or of output formats.
//!
//! What is reviewed, and why:
//! - Directories are walked honouring `.gitignore` (also outside a git repository: people
//!   keep one in unversioned trees, and honouring it is what they expect), `.ignore`,
//!   git's global and `info/exclude` files, and our own `.reviewignore` (gitignore syntax,
//!   for things to keep in git but out of reviews, such as vendored code).
//! - Hidden files and directories (`.git`, `.venv`, ...) are skipped, and so are a few
//!   directory names that only ever hold third-party code ([`ALWAYS_SKIPPED_DIRS`]).
//! - A path named explicitly as a root is always taken, even if an ignore file or the hidden
//!   rule would exclude it: naming a file is a request to review it (ruff does the same without
//!   `--force-exclude`). A root directory is walked even if hidden or ignored itself.
//! - Only files whose extension maps to a [`Language`] are returned.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use crate::syntax::Language;

/// Our ignore file, in gitignore syntax.
pub const REVIEW_IGNORE_FILE: &str = ".reviewignore";

/// Directory names never descended into, ignore files or not: they hold installed
/// third-party code, and reviewing it would swamp a scan that has no `.gitignore`.
pub const ALWAYS_SKIPPED_DIRS: &[&str] = &["node_modules", "site-packages", "__pypackages__"];

/// How much of a file is searched for a NUL byte to call it binary (git looks at 8000 bytes).
const BINARY_SNIFF_LEN: usize = 8 * 1024;

/// The reviewable files under `roots`, sorted and without duplicates. Paths keep the form
/// of the root they came from (`src` gives `src/a.py`), minus a leading `./`.
///
/// Roots that do not exist are logged and skipped: the caller, which knows whether that is a
/// usage error, should have checked them.
pub fn discover(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for root in roots {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => dirs.push(root.as_path()),
            Ok(_) if Language::from_path(root).is_some() => files.push(tidy(root)),
            Ok(_) => tracing::warn!("{}: not a language review-lsp understands; skipped", root.display()),
            Err(err) => tracing::warn!("{}: {err}; skipped", root.display()),
        }
    }
    if !dirs.is_empty() {
        files.extend(walk(&dirs));
    }
    files.sort_unstable();
    files.dedup();
    files
}

/// Walks `dirs` in parallel. On a cold disk the walk is dominated by `readdir`/`stat`
/// latency, which threads overlap; on a warm one the parallel walker costs about the same
/// as the serial one.
fn walk(dirs: &[&Path]) -> Vec<PathBuf> {
    let mut builder = WalkBuilder::new(dirs[0]);
    for dir in &dirs[1..] {
        builder.add(dir);
    }
    builder
        .standard_filters(true)
        .require_git(false)
        .add_custom_ignore_filename(REVIEW_IGNORE_FILE)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .filter_entry(|entry| {
            let skipped = entry.depth() > 0
                && entry.file_type().is_some_and(|t| t.is_dir())
                && entry.file_name().to_str().is_some_and(|name| ALWAYS_SKIPPED_DIRS.contains(&name));
            !skipped
        });

    let found = Mutex::new(Vec::new());
    builder.build_parallel().run(|| {
        // Each walker thread collects locally and hands its list over once, when it is done:
        // no lock per file.
        let mut local = Collector { files: Vec::new(), into: &found };
        Box::new(move |entry| {
            match entry {
                Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => {
                    let path = entry.path();
                    if Language::from_path(path).is_some() {
                        local.files.push(tidy(path));
                    } else {
                        tracing::debug!("{}: not a supported language; skipped", path.display());
                    }
                }
                Ok(_) => {}
                // An unreadable directory or a broken ignore file: say so and carry on.
                Err(err) => tracing::warn!("{err}"),
            }
            WalkState::Continue
        })
    });
    found.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Whether `.gitignore`, `.ignore` or `.reviewignore` (in `root` or any folder between it
/// and the file), or a skipped folder such as `node_modules`, excludes `file`. The editor
/// may open any file; this keeps ignored ones from ever reaching a model. Without a usable
/// `root` the file's own folders up to the filesystem root are consulted.
pub fn is_ignored(root: Option<&Path>, file: &Path) -> bool {
    let stop = root.filter(|r| file.starts_with(r));
    let mut dirs: Vec<&Path> = file.ancestors().skip(1).take_while(|d| stop.is_none_or(|r| d.starts_with(r))).collect();
    dirs.reverse();
    if file.components().any(|c| c.as_os_str().to_str().is_some_and(|n| ALWAYS_SKIPPED_DIRS.contains(&n))) {
        return true;
    }
    for dir in dirs {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
        let mut any = false;
        for name in [".gitignore", ".ignore", REVIEW_IGNORE_FILE] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                any = true;
                if let Some(err) = builder.add(&candidate) {
                    tracing::warn!("{}: {err}", candidate.display());
                }
            }
        }
        if !any {
            continue;
        }
        match builder.build() {
            Ok(matcher) if matcher.matched_path_or_any_parents(file, false).is_ignore() => return true,
            Ok(_) => {}
            Err(err) => tracing::warn!("{}: {err}", dir.display()),
        }
    }
    false
}

struct Collector<'a> {
    files: Vec<PathBuf>,
    into: &'a Mutex<Vec<PathBuf>>,
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        let mut all = self.into.lock().unwrap_or_else(|e| e.into_inner());
        all.append(&mut self.files);
    }
}

/// `./src/a.py` → `src/a.py`, so the same file reached from `.` and from `src` dedups.
fn tidy(path: &Path) -> PathBuf {
    let mut components = path.components();
    if path.components().next() == Some(Component::CurDir) && path != Path::new(".") {
        components.next();
        return components.as_path().to_path_buf();
    }
    path.to_path_buf()
}

/// Why a discovered file is not reviewed. `Display` says it in one line; the caller adds
/// the path (`skipped big.py: 3.2 MB is over the 1 MB limit (review.max_file_size)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// A NUL byte in the first 8 KiB.
    Binary,
    /// `offset` is the byte offset of the first byte that is not valid UTF-8.
    InvalidUtf8 {
        offset: usize,
    },
    /// A FIFO, socket or device named where a file was expected: reading it could block
    /// forever or never end. The text says which kind.
    NotRegular(&'static str),
    Io(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::TooLarge { size, limit } => {
                let (mut size_text, mut limit_text) = (human_size(*size), human_size(*limit));
                // Rounded, 1 048 577 bytes and a 1 MiB limit both read "1 MB"; exact numbers then.
                if size_text == limit_text {
                    (size_text, limit_text) = (format!("{size} bytes"), format!("{limit} bytes"));
                }
                write!(f, "{size_text} is over the {limit_text} limit (review.max_file_size)")
            }
            Skip::Binary => f.write_str("binary file (it has a NUL byte)"),
            Skip::InvalidUtf8 { offset } => {
                write!(f, "not valid UTF-8 (first bad byte at offset {offset})")
            }
            Skip::NotRegular(kind) => write!(f, "not a regular file ({kind})"),
            Skip::Io(err) => write!(f, "cannot read it: {err}"),
        }
    }
}

impl std::error::Error for Skip {}

/// Binary units, written the way people say them (`1 MB` for 1 MiB), one decimal at most.
fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            let value = bytes as f64 / unit as f64;
            let text = format!("{value:.1}");
            return format!("{} {name}", text.strip_suffix(".0").unwrap_or(&text));
        }
    }
    format!("{bytes} bytes")
}

/// Reads `path` as UTF-8 text for review. The size is checked from the open file's metadata
/// before anything is read, so a huge file costs one `fstat`. Opened non-blocking, because
/// opening a FIFO for reading otherwise waits for a writer that may never come; the type is
/// then checked on the open file (not the path, which could be swapped in between).
pub fn load(path: &Path, max_size: u64) -> Result<String, Skip> {
    let io = |e: std::io::Error| Skip::Io(e.to_string());
    let mut file = open_nonblocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Skip::NotRegular(kind_of(&meta.file_type())));
    }
    let size = meta.len();
    if size > max_size {
        return Err(Skip::TooLarge { size, limit: max_size });
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    // `take` bounds the read if the file grows between the check and the read.
    (&mut file).take(max_size.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max_size {
        return Err(Skip::TooLarge { size: bytes.len() as u64, limit: max_size });
    }
    if bytes[..bytes.len().min(BINARY_SNIFF_LEN)].contains(&0) {
        return Err(Skip::Binary);
    }
    String::from_utf8(bytes).map_err(|e| Skip::InvalidUtf8 { offset: e.utf8_error().valid_up_to() })
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() { "a directory" } else { "not a file" }
}

#[cfg(test)]
mod ignore_tests {
    use super::*;

    #[test]
    fn ignored_files_are_recognised_for_editor_documents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("secret/deep")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join(".gitignore"), "secret/\n").unwrap();
        std::fs::write(root.join("src/.reviewignore"), "generated_*.py\n").unwrap();
        assert!(is_ignored(Some(root), &root.join("secret/deep/keys.py")));
        assert!(is_ignored(Some(root), &root.join("src/generated_api.py")));
        assert!(!is_ignored(Some(root), &root.join("src/app.py")));
        assert!(is_ignored(Some(root), &root.join("node_modules/x/index.js")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &[u8]) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn rel(root: &Path, files: Vec<PathBuf>) -> Vec<String> {
        files.iter().map(|f| f.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/")).collect()
    }

    #[test]
    fn honours_ignore_files_hidden_dirs_and_languages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".gitignore", b"build/\n*.gen.py\n");
        write(root, ".reviewignore", b"vendor/\n");
        write(root, "src/.ignore", b"skip_me.rs\n");
        for f in [
            "a.py",
            "src/b.rs",
            "src/skip_me.rs",
            "build/c.py",
            "x.gen.py",
            "vendor/d.go",
            ".hidden/e.py",
            "node_modules/m/i.js",
            "README.md",
            "web/app.tsx",
        ] {
            write(root, f, b"x\n");
        }
        let found = rel(root, discover(&[root.to_path_buf()]));
        assert_eq!(found, ["a.py", "src/b.rs", "web/app.tsx"]);
    }

    #[test]
    fn explicit_files_are_taken_even_if_ignored_and_duplicates_merge() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".gitignore", b"ignored.py\n");
        write(root, "ignored.py", b"x\n");
        write(root, "a.py", b"x\n");
        write(root, "notes.txt", b"x\n");
        let roots = [root.join("ignored.py"), root.to_path_buf(), root.join("a.py"), root.join("notes.txt")];
        assert_eq!(rel(root, discover(&roots)), ["a.py", "ignored.py"]);
    }

    #[test]
    fn leading_dot_is_dropped() {
        assert_eq!(tidy(Path::new("./src/a.py")), Path::new("src/a.py"));
        assert_eq!(tidy(Path::new("src/a.py")), Path::new("src/a.py"));
        assert_eq!(tidy(Path::new(".")), Path::new("."));
    }

    #[test]
    fn load_classifies_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "ok.py", "x = 'é'\n".as_bytes());
        write(root, "bin.py", b"x\0y");
        write(root, "latin1.py", b"ab\xe9cd");
        write(root, "big.py", &[b'a'; 100]);
        assert_eq!(load(&root.join("ok.py"), 100).unwrap(), "x = 'é'\n");
        assert_eq!(load(&root.join("bin.py"), 100), Err(Skip::Binary));
        assert_eq!(load(&root.join("latin1.py"), 100), Err(Skip::InvalidUtf8 { offset: 2 }));
        assert_eq!(load(&root.join("big.py"), 99), Err(Skip::TooLarge { size: 100, limit: 99 }));
        assert!(load(&root.join("big.py"), 100).is_ok());
        assert!(matches!(load(&root.join("missing.py"), 100), Err(Skip::Io(_))));
    }

    /// Opening a FIFO for reading used to block until a writer came: forever, in a scan.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_device_is_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.py");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(load(&fifo, 100)).unwrap());
        let loaded = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("load returned");
        assert_eq!(loaded, Err(Skip::NotRegular("a FIFO")));
        assert_eq!(load(Path::new("/dev/null"), 100), Err(Skip::NotRegular("a device")));
        assert_eq!(Skip::NotRegular("a FIFO").to_string(), "not a regular file (a FIFO)");
    }

    #[test]
    fn skip_messages_read_well() {
        let big = Skip::TooLarge { size: 3_355_443, limit: 1 << 20 };
        assert_eq!(big.to_string(), "3.2 MB is over the 1 MB limit (review.max_file_size)");
        let close = Skip::TooLarge { size: (1 << 20) + 1, limit: 1 << 20 };
        assert_eq!(close.to_string(), "1048577 bytes is over the 1048576 bytes limit (review.max_file_size)");
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
    }
}
