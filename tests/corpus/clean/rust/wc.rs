//! A tiny `wc` clone: counts lines, words and bytes of files or stdin.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    lines: usize,
    words: usize,
    bytes: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.lines += other.lines;
        self.words += other.words;
        self.bytes += other.bytes;
    }
}

fn count<R: Read>(reader: R) -> io::Result<Counts> {
    let mut counts = Counts::default();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        counts.bytes += n;
        counts.lines += usize::from(line.ends_with('\n'));
        counts.words += line.split_whitespace().count();
    }
    Ok(counts)
}

fn print(counts: Counts, name: Option<&str>) {
    match name {
        Some(name) => println!("{:>8} {:>8} {:>8} {name}", counts.lines, counts.words, counts.bytes),
        None => println!("{:>8} {:>8} {:>8}", counts.lines, counts.words, counts.bytes),
    }
}

fn run(paths: &[PathBuf]) -> io::Result<()> {
    if paths.is_empty() {
        print(count(io::stdin().lock())?, None);
        return Ok(());
    }
    let mut total = Counts::default();
    for path in paths {
        let counts = count(File::open(path)?)?;
        print(counts, Some(&path.display().to_string()));
        total += counts;
    }
    if paths.len() > 1 {
        print(total, Some("total"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    match run(&paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wc: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_words_and_bytes() {
        let counts = count("one two\nthree\n".as_bytes()).unwrap();
        assert_eq!(counts, Counts { lines: 2, words: 3, bytes: 14 });
    }

    #[test]
    fn last_line_without_newline_is_not_a_line() {
        let counts = count("a b".as_bytes()).unwrap();
        assert_eq!((counts.lines, counts.words), (0, 2));
    }

    #[test]
    fn nan_is_detected_properly() {
        let x = f64::NAN;
        assert!(x.is_nan());
        assert!(x != 1.0);
    }
}
