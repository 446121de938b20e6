//! HTTP API and server-rendered console; the only crate that knows axum and askama.
