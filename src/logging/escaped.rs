//! Owns the rule "one event, one line" for every log sink. A log line can carry outside text
//! (a file name, a settings key, a provider's error body); written raw, an ESC sequence would
//! reach the terminal reading stderr and a newline would forge a second log line. This wraps
//! a writer so each record is escaped with [`crate::escape::line`] except its final newline.
//!
//! It relies on `tracing_subscriber::fmt` handing each formatted event to one `write_all`
//! call on a fresh writer, which it does: the event is formatted into a buffer first.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] whose writers escape what they are given; see the module doc.
#[derive(Clone, Debug)]
pub struct Escaped<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaped<M> {
    type Writer = EscapedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EscapedWriter(self.0.make_writer_for(meta))
    }
}

/// Escapes each buffer it is given as one record: its final `\n` stays, every other unsafe
/// character (newlines, CR, ESC, C1, bidi controls) is spelled out.
#[derive(Debug)]
pub struct EscapedWriter<W>(pub W);

impl<W: Write> Write for EscapedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        match crate::escape::line(body) {
            // Nothing to escape and valid UTF-8: pass the bytes on as they are.
            std::borrow::Cow::Borrowed(_) if matches!(text, std::borrow::Cow::Borrowed(_)) => self.0.write_all(buf)?,
            escaped => self.0.write_all(format!("{escaped}{end}").as_bytes())?,
        }
        // All of `buf` was consumed, even though more (or fewer) bytes went out.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(record: &[u8]) -> String {
        let mut w = EscapedWriter(Vec::new());
        w.write_all(record).unwrap();
        String::from_utf8(w.0).unwrap()
    }

    #[test]
    fn a_record_stays_one_line_with_its_newline() {
        let forged = "INFO logging to /tmp/a\n2026-01-01 ERROR forged line\u{1b}]0;pwned\u{7}\r\u{202e}\n";
        let out = through(forged.as_bytes());
        assert_eq!(out, "INFO logging to /tmp/a\\n2026-01-01 ERROR forged line\\u{1b}]0;pwned\\u{7}\\r\\u{202e}\n");
        assert_eq!(out.matches('\n').count(), 1);
        assert!(!out.trim_end_matches('\n').chars().any(crate::escape::is_unsafe));
    }

    #[test]
    fn plain_records_pass_unchanged_and_invalid_utf8_is_replaced() {
        assert_eq!(through(b"INFO all is well\n"), "INFO all is well\n");
        assert_eq!(through(b"no newline"), "no newline");
        assert_eq!(through(b"bad \xff byte\n"), "bad \u{fffd} byte\n");
    }

    #[test]
    fn tracing_events_go_through_as_single_escaped_lines() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let made = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Escaped(move || made.clone()))
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(path = "a\nb", "cannot open \u{1b}[2J{}", "x\r\n::error::forged \u{202e}\u{9b}\u{7f}");
            tracing::info!("second");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // tracing-subscriber spells out some controls itself (`\x1b`); bidi and C1 it leaves.
        assert!(lines[0].contains("::error::forged \\u{202e}\\u{9b}"), "{text}");
        assert!(!text.chars().any(|c| c != '\n' && crate::escape::is_unsafe(c)), "{text}");
    }
}
