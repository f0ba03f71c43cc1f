//! Owns every line the command line writes to stderr outside of logging: errors, warnings,
//! skip notes. Each message is escaped as one line ([`crate::escape::line`]), so a file name,
//! settings key or provider error cannot move the cursor, retitle the terminal, or start a
//! line of its own (in a GitHub Actions log, a line starting `::error` is a workflow
//! command). A failed write to stderr is ignored rather than a panic, unlike `eprintln!`.

use std::fmt::Display;
use std::io::Write;

/// `error: MESSAGE`
pub fn error(message: impl Display) {
    say(format_args!("error: {message}"));
}

/// `warning: MESSAGE`
pub fn warning(message: impl Display) {
    say(format_args!("warning: {message}"));
}

/// One line, as given, escaped.
pub fn say(message: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{}", crate::escape::line(&message.to_string()));
}
