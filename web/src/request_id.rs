//! Every request carries a request id: the caller's `x-request-id` when it is a sane token,
//! otherwise a fresh one. It is echoed in the response and recorded in the request's log span.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header name, lower-case as HTTP/2 requires.
pub const HEADER: &str = "x-request-id";

/// A request's id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static COUNTER: AtomicU64 = AtomicU64::new(0);
// Per-process random prefix, so ids from two daemon runs do not collide in one audit log.
static PREFIX: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(std::process::id()));

fn fresh() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}-{n:08x}", *PREFIX)
}

fn acceptable(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware that assigns, records and echoes the request id.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(fresh, str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_header_injection_and_oversize_ids() {
        assert!(acceptable("abc-123"));
        assert!(!acceptable("a b"));
        assert!(!acceptable("a\r\nx: y"));
        assert!(!acceptable(&"a".repeat(129)));
        assert!(!acceptable(""));
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(fresh(), fresh());
    }
}
