//! Owns `scan --format github`: one GitHub Actions workflow command per finding, which the
//! runner turns into an annotation on the pull request's diff (as ruff's
//! `--output-format github`):
//!
//! `::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=RULE::MESSAGE`
//!
//! Everything after the command is data from outside (file names, model messages), and the
//! runner reads every stdout line that starts with `::` as a command. So the data is first
//! made safe to show ([`crate::escape`]) and then encoded the way the runner decodes it:
//! `%`, CR and LF always, and `:` and `,` in properties too. A message can therefore never
//! end the command early or start a second one. Nothing else is printed: the summary and
//! skip notes go to stderr.

use std::io::{self, Write};

use super::Report;
use crate::escape;
use crate::review::finding::Severity;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.findings {
        let f = &r.finding;
        writeln!(
            out,
            "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            command(f.severity),
            property(&r.path),
            r.start.line,
            r.start.column,
            r.end.line,
            r.end.column,
            property(&f.rule),
            data(&escape::lines(&f.message)),
        )?;
    }
    Ok(())
}

/// GitHub has three annotation levels; info and hint are both notices.
fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Hint => "notice",
    }
}

/// The message after `::`. Newlines survive as `%0A`, which the runner shows as line breaks.
fn data(text: &str) -> String {
    encode(text, false)
}

/// A `key=value` property: one line, and `:`/`,` encoded so the value cannot end the list.
fn property(text: &str) -> String {
    encode(&escape::line(text), true)
}

fn encode(text: &str, in_property: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if in_property => out.push_str("%3A"),
            ',' if in_property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{Pos, Reported};
    use crate::review::finding::{Category, Finding, Span};

    fn reported(path: &str, rule: &str, severity: Severity, message: &str) -> Reported {
        Reported {
            path: path.into(),
            start: Pos { line: 3, column: 7 },
            end: Pos { line: 4, column: 2 },
            fix: None,
            finding: Finding {
                rule: rule.into(),
                category: Category::Security,
                severity,
                source: "offline".into(),
                message: message.into(),
                span: Span { start_line: 2, start_col: 6, end_line: 3, end_col: 1 },
                fix: None,
            },
        }
    }

    fn render(findings: Vec<Reported>) -> String {
        let report = Report { findings, ..Report::default() };
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn data_and_properties_are_encoded_as_the_runner_decodes_them() {
        assert_eq!(data("100% sure\r\nnext: a,b"), "100%25 sure%0D%0Anext: a,b");
        assert_eq!(encode("a:b,c%d\re\nf", true), "a%3Ab%2Cc%25d%0De%0Af");
        // A property is one line first: a newline in a file name is spelled out, not encoded.
        assert_eq!(property("src/x\n::error file=y::z,w.py"), "src/x\\n%3A%3Aerror file=y%3A%3Az%2Cw.py");
    }

    #[test]
    fn one_command_per_finding_with_levels() {
        let out = render(vec![
            reported("src/a.py", "python/security/eval", Severity::Error, "eval of untrusted input"),
            reported("b.py", "r", Severity::Warning, "w"),
            reported("c.py", "r", Severity::Info, "i"),
            reported("d.py", "r", Severity::Hint, "h"),
        ]);
        assert_eq!(
            out,
            "::error file=src/a.py,line=3,col=7,endLine=4,endColumn=2,title=python/security/eval::eval of untrusted input\n\
             ::warning file=b.py,line=3,col=7,endLine=4,endColumn=2,title=r::w\n\
             ::notice file=c.py,line=3,col=7,endLine=4,endColumn=2,title=r::i\n\
             ::notice file=d.py,line=3,col=7,endLine=4,endColumn=2,title=r::h\n"
        );
    }

    #[test]
    fn hostile_text_cannot_forge_a_second_command_or_reach_the_log_raw() {
        let out = render(vec![reported(
            "x\u{1b}]0;pwned\u{7}\r\u{202e}y\n::error file=x::forged.py",
            "rule,title=forged",
            Severity::Warning,
            "first\n::error file=x::forged\r\u{1b}[2J 50%",
        )]);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.starts_with("::warning file=x\\u{1b}]0;pwned\\u{7}\\r\\u{202e}y\\n%3A%3Aerror file=x%3A%3Aforged.py,")
        );
        assert!(
            out.contains(",title=rule%2Ctitle=forged::first%0A::error file=x::forged\\r\\u{1b}[2J 50%25\n"),
            "{out}"
        );
        assert!(!out.trim_end().chars().any(escape::is_unsafe));
    }
}
