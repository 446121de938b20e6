//! The route table: every HTTP route is declared together with its access rule, as data, so that
//! the router and the access checks come from one list and a test can walk it. A global
//! middleware enforces the rules and denies by default: a route that reached the router without
//! going through the table (a bare `Router::route`) answers 403 to everyone.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use stella_authority::Scope;

use crate::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone. Each public route says why it is public.
    Public {
        /// The reason, for reviewers and `docs/security.md`.
        why: &'static str,
    },
    /// An access token (DPoP-bound or bearer) carrying `scope`.
    Token {
        /// The scope required.
        scope: Scope,
    },
    /// A DPoP-bound access token carrying `scope`, with a proof that carries the server's
    /// current `DPoP-Nonce` (the signer audience).
    TokenDpopNonce {
        /// The scope required.
        scope: Scope,
    },
    /// A console session whose user's role grants `scope` (any signed-in user when `None`).
    /// State-changing methods also need the session's CSRF token.
    Session {
        /// The scope the role must grant.
        scope: Option<Scope>,
    },
}

impl Access {
    /// The scope the rule requires, if any.
    pub fn scope(&self) -> Option<Scope> {
        match self {
            Self::Public { .. } => None,
            Self::Token { scope } | Self::TokenDpopNonce { scope } => Some(*scope),
            Self::Session { scope } => *scope,
        }
    }
}

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The HTTP method.
    pub method: Method,
    /// The axum path pattern, e.g. `/api/scans/{id}`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// The routes of the appliance with their access rules; turns into the [`Router`].
pub struct RouteTable {
    entries: Vec<RouteEntry>,
    router: Router<AppState>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new()
    }
}

fn filter(method: &Method) -> MethodFilter {
    match *method {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::DELETE => MethodFilter::DELETE,
        // The table only declares the methods above; anything else is a programming error
        // caught by the route-table test (the route would answer 405).
        _ => MethodFilter::TRACE,
    }
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            router: Router::new(),
        }
    }

    /// Declares a route with an explicit access rule.
    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter(&method), handler));
        self.entries.push(RouteEntry {
            method,
            path,
            access,
        });
        self
    }

    /// A public route; `why` says why it needs no credentials.
    pub fn public<H, T>(self, method: Method, path: &'static str, why: &'static str, h: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(method, path, Access::Public { why }, h)
    }

    /// An API route needing an access token with `scope`.
    pub fn scoped<H, T>(self, method: Method, path: &'static str, scope: Scope, h: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(method, path, Access::Token { scope }, h)
    }

    /// A signer route: DPoP-bound token with `scope`, proof with the server nonce.
    pub fn signer<H, T>(self, method: Method, path: &'static str, scope: Scope, h: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(method, path, Access::TokenDpopNonce { scope }, h)
    }

    /// A console route needing a session whose role grants `scope` (any user when `None`).
    pub fn console<H, T>(
        self,
        method: Method,
        path: &'static str,
        scope: Option<Scope>,
        h: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(method, path, Access::Session { scope }, h)
    }

    /// Every declared route.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// The router, with the access rules enforced by one middleware over every route.
    pub fn into_router(self, state: AppState) -> Router<AppState> {
        self.into_router_over(Router::new(), state)
    }

    /// Like [`RouteTable::into_router`], merged over `others`: routes that did not go through
    /// the table. The guard covers them too and denies them (403), which is what makes a route
    /// added without an access rule fail rather than serve unprotected.
    pub fn into_router_over(self, others: Router<AppState>, state: AppState) -> Router<AppState> {
        let mut rules: HashMap<(Method, String), Access> = HashMap::new();
        for entry in &self.entries {
            rules.insert((entry.method.clone(), entry.path.to_owned()), entry.access);
        }
        let guard = Guard {
            state,
            rules: Arc::new(rules),
        };
        others
            .merge(self.router)
            .layer(axum::middleware::from_fn_with_state(guard, enforce))
    }
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    rules: Arc<HashMap<(Method, String), Access>>,
}

async fn enforce(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        // Unmatched: the fallback answers 404.
        return next.run(request).await;
    };
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let key = (method, path);
    match guard.rules.get(&key).copied() {
        Some(access) => super::check(&guard.state, access, request, next).await,
        None if guard.rules.keys().any(|(_, p)| *p == key.1) => {
            // Known path, undeclared method: let the router answer 405.
            next.run(request).await
        }
        None => {
            tracing::error!(route = %key.1, "route has no access rule; denied");
            (
                StatusCode::FORBIDDEN,
                "route has no access rule in the route table\n",
            )
                .into_response()
        }
    }
}
