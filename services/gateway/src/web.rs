//! The web port: a page to try the cluster, and the public API over
//! gRPC-Web for it (and for pages of the origins allowed by CORS). The
//! page's files (its script built by `make web`) are embedded here: no Node
//! at run time.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderName, HeaderValue, Method, Request};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The page: its markup and style, and its script built from `web/` (see
/// `make web`).
const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

/// The page loads only its own files and images it made itself (blob: and
/// data: URLs), and talks only to this origin.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Headers a gRPC-Web call sends and reads beyond the CORS-safe ones.
const REQUEST_HEADERS: [&str; 5] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
];
const RESPONSE_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "retry-after",
];

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("web origin {0:?} is not a valid origin (e.g. https://example.com)")]
    Origin(String),
    #[error("the web port failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The page and `service` (the public API, authenticated as on the gRPC
/// port) over gRPC-Web, with CORS for `origins`.
pub fn router<S>(service: S, origins: &[String]) -> Result<Router, WebError>
where
    S: tower::Service<Request<tonic::body::Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    let grpc = tonic::service::Routes::new(service);
    let grpc_web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(inpaint_common::metrics::GrpcMetricsLayer)
        .layer(inpaint_common::trace::ServerTraceLayer)
        .service(grpc);
    let page = Router::new()
        .route("/", get(|| asset(INDEX_HTML, "text/html; charset=utf-8")))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .fallback_service(grpc_web);
    Ok(match cors(origins)? {
        Some(cors) => page.layer(cors),
        None => page,
    })
}

async fn asset(body: &'static str, kind: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, kind),
            (CONTENT_SECURITY_POLICY, POLICY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The files change with the binary: revalidate on each load.
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// CORS for the allowed origins, None when there are none.
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, WebError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed = origins
        .iter()
        .map(|o| {
            let o = o.trim().trim_end_matches('/');
            let valid = (o.starts_with("http://") || o.starts_with("https://"))
                && !o["https://".len().min(o.len())..].contains('/');
            valid
                .then(|| HeaderValue::from_str(o).ok())
                .flatten()
                .ok_or_else(|| WebError::Origin(o.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names = |names: &[&'static str]| -> Vec<HeaderName> {
        names.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::POST, Method::OPTIONS])
            .allow_headers(names(&REQUEST_HEADERS))
            .expose_headers(names(&RESPONSE_HEADERS))
            .max_age(Duration::from_secs(600)),
    ))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    tracing::info!(addr = ?listener.local_addr().ok(), "web page and gRPC-Web");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cors;

    #[test]
    fn origins_are_checked() {
        assert!(cors(&[]).unwrap().is_none());
        assert!(
            cors(&["https://tools.example.com".into()])
                .unwrap()
                .is_some()
        );
        assert!(cors(&["http://localhost:3000/".into()]).unwrap().is_some());
        for bad in ["tools.example.com", "https://a.example/page", "*"] {
            assert!(cors(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
