//! Owns the byte stream from the editor. tower-lsp-server's reader ends the whole session
//! at its first undecodable frame (tokio-util's `FramedRead` stops after an error), so one
//! malformed message would kill the server. We reframe stdin first: every frame whose
//! body is not a JSON-RPC message is replaced by a `$/review-lsp/malformed` notification,
//! which the server logs and reports, and the session goes on.

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Request, Response};

pub const MALFORMED: &str = "$/review-lsp/malformed";

/// Largest frame we accept. Bigger is almost surely a corrupt header; skipping it beats
/// trying to allocate it.
const MAX_FRAME: usize = 256 << 20;

/// Returns a reader carrying only well-formed frames, fed by a task reading `input`. The
/// reader ends at the end of `input` or as soon as `stop` fires, whichever comes first.
pub fn sanitized<R: AsyncRead + Unpin + Send + 'static>(input: R, stop: CancellationToken) -> DuplexStream {
    let (mut tx, rx) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let mut reader = BufReader::new(input);
        loop {
            let read = tokio::select! {
                _ = stop.cancelled() => break,
                frame = read_frame(&mut reader) => frame,
            };
            let frame = match read {
                Frame::Eof => break,
                Frame::Body(body) => checked(body),
                Frame::BadHeader(why) => notice(&why),
            };
            let header = format!("Content-Length: {}\r\n\r\n", frame.len());
            if tx.write_all(header.as_bytes()).await.is_err() || tx.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = tx.shutdown().await;
    });
    rx
}

enum Frame {
    Body(Vec<u8>),
    BadHeader(String),
    Eof,
}

async fn read_frame<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> Frame {
    let mut length: Option<usize> = None;
    let mut saw_header = false;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return Frame::Eof,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if saw_header {
                break;
            }
            continue; // stray blank line between frames
        }
        saw_header = true;
        if let Some((name, value)) = text.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let Some(length) = length.filter(|n| *n <= MAX_FRAME) else {
        return Frame::BadHeader("a message header without a usable Content-Length".into());
    };
    let mut body = vec![0; length];
    match reader.read_exact(&mut body).await {
        Ok(_) => Frame::Body(body),
        Err(_) => Frame::Eof,
    }
}

/// The body itself if tower-lsp can decode it, else a notice describing why not.
fn checked(body: Vec<u8>) -> Vec<u8> {
    if serde_json::from_slice::<Request>(&body).is_ok() || serde_json::from_slice::<Response>(&body).is_ok() {
        return body;
    }
    let why = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => "a JSON value that is not a JSON-RPC message".to_string(),
        Err(e) => format!("invalid JSON ({e})"),
    };
    notice(&why)
}

fn notice(why: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": MALFORMED, "params": {"reason": why}})).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(input: &'static [u8]) -> Vec<serde_json::Value> {
        let mut out = sanitized(input, CancellationToken::new());
        let mut all = Vec::new();
        out.read_to_end(&mut all).await.unwrap();
        let mut reader = BufReader::new(&all[..]);
        let mut msgs = Vec::new();
        while let Frame::Body(b) = read_frame(&mut reader).await {
            msgs.push(serde_json::from_slice(&b).unwrap());
        }
        msgs
    }

    #[tokio::test]
    async fn good_frames_pass_and_bad_ones_become_notices() {
        let input: &[u8] = b"Content-Length: 9\r\n\r\n{garbage}Content-Length: 2\r\n\r\n[]Content-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}";
        let msgs = roundtrip(input).await;
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["method"], MALFORMED);
        assert!(msgs[0]["params"]["reason"].as_str().unwrap().contains("invalid JSON"));
        assert_eq!(msgs[1]["method"], MALFORMED);
        assert_eq!(msgs[2]["method"], "initialized");
    }

    #[tokio::test]
    async fn a_header_without_length_is_reported_and_reading_goes_on() {
        let input: &[u8] =
            b"Content-Type: x\r\n\r\nContent-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}";
        let msgs = roundtrip(input).await;
        assert_eq!(msgs[0]["method"], MALFORMED);
        assert_eq!(msgs[1]["method"], "initialized");
    }

    #[tokio::test]
    async fn stop_ends_the_stream_while_input_stays_open() {
        let (_keep_open, input) = tokio::io::duplex(64);
        let stop = CancellationToken::new();
        let mut out = sanitized(input, stop.clone());
        stop.cancel();
        let mut all = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), out.read_to_end(&mut all)).await;
        assert!(matches!(read, Ok(Ok(0))), "the stream ended: {read:?}");
    }
}
