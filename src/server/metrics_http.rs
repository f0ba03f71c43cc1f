//! Owns `/metrics` over HTTP: a tiny hyper server started after `initialize` when
//! `serve --metrics-addr` or `[metrics] addr` asks for it. It binds to loopback unless the user
//! names another interface, and refreshes the gauges that mirror session state (queue depth,
//! breakers, budget, Redis) right before each scrape.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::session::Session;
use crate::scheduler::Lane;

/// `9464` alone means `127.0.0.1:9464`: exposing metrics beyond the machine must be explicit.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().map_err(|_| format!("metrics address {text:?} is neither host:port nor a port"))
}

/// Sets the gauges that mirror state, so a scrape sees it as it is now.
pub fn refresh(session: &Session) {
    let stats = session.scheduler.stats();
    for lane in Lane::ALL {
        crate::metrics::set_queue_depth(lane.as_str(), stats.lane(lane).depth);
    }
    crate::review::llm_agents::export_metrics();
    if let Some(store) = session.folders.primary().store() {
        crate::metrics::set_redis_up(store.team().map(|t| t.state() == crate::store::redis_backend::BackendState::Up));
    }
}

/// Serves until the process ends. Returns an error only if the address cannot be bound.
pub async fn serve(session: Arc<Session>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "serving Prometheus metrics at /metrics");
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!("metrics accept failed: {e}");
                    continue;
                }
            };
            let session = session.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let session = session.clone();
                    async move { Ok::<_, Infallible>(respond(&session, &req)) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(bound)
}

fn respond<B>(session: &Session, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = kind.parse() {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    if req.method() != hyper::Method::GET || req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "review-lsp serves /metrics only\n".into());
    }
    refresh(session);
    reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", crate::metrics::encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_binds_loopback_and_other_hosts_are_explicit() {
        assert_eq!(parse_addr("9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_addr("0.0.0.0:9000").unwrap(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(parse_addr("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
        assert!(parse_addr("localhost").unwrap_err().contains("neither"));
    }
}
