//! The admin console: server-rendered askama pages (`web/templates/`), one module per area.
//! Every page works without JavaScript; the stylesheet and the one small script are compiled into
//! the binary and served from `/console/static/`; every response carries a strict
//! Content-Security-Policy. Shared pieces live in [`view`]: the page chrome (navigation, user,
//! CSRF token, demo banner), pagination, sortable columns, UTC times with relative age, and
//! error pages that say what to do next. URLs and form fields are listed in `docs/console.md`.

#[allow(dead_code)] // Shared helpers; pages adopt them as they land.
pub(crate) mod view;

#[cfg(test)]
#[allow(dead_code)] // Used by the page modules' tests as they land.
pub(crate) mod testing;

mod advisories;
mod audit;
mod dashboard;
mod findings;
mod images;
#[cfg(test)]
mod lint;
mod policies;
mod scans;
mod vex;

use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::RouteTable;

pub(crate) use view::{Chrome, render};

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    let table = table.public(
        Method::GET,
        "/console/static/{file}",
        "the console's stylesheet and script, compiled into the binary; no data",
        static_file,
    );
    let table = dashboard::routes(table);
    let table = scans::routes(table);
    let table = images::routes(table);
    let table = findings::routes(table);
    let table = advisories::routes(table);
    let table = vex::routes(table);
    let table = policies::routes(table);
    audit::routes(table)
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
