//! Request durations per route, for `/metrics` as the Prometheus histogram
//! `jwtx_http_request_duration_seconds`.
//!
//! Routes are the ones the router declares (`jwt_exchange::axum::routes()` and the
//! operational ones), matched by axum, so a series is labelled with a route *pattern* and a
//! method from a fixed list: a request for any other path or method counts under
//! `route="unmatched"`, so nobody can grow the exposition by requesting new paths, and a path
//! (which may carry a secret someone pasted into a URL) never reaches the metrics.
//!
//! Each series is a set of atomic counters, so recording a request takes no lock and no
//! allocation: two clock reads, a reference-count increment for the matched route and three
//! relaxed atomic additions.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::cmd::serve::{escape, family};

/// Upper bounds of the buckets, in nanoseconds (written out in seconds). From 100 µs (a bearer
/// check) to 10 s (a request timeout or a stuck store): a login is 20–60 µs of CPU, and its
/// latency over a network is mostly queueing and the store's round trip.
const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The label of requests that matched no declared route.
const UNMATCHED: &str = "unmatched";

/// One histogram: a count per bucket (not cumulative; the exposition sums them), the total
/// count and the sum of the observations in nanoseconds.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS_NS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, nanos: u64) {
        // Bucket `i` holds observations in (BOUNDS_NS[i-1], BOUNDS_NS[i]]; above the last bound
        // only `count` grows (the `+Inf` bucket is the count).
        if let Some(i) = BOUNDS_NS.iter().position(|b| nanos <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        // The count is read first, so a request recorded in between may show in a bucket and
        // not in the count; capping each cumulative figure at the count keeps the series
        // monotonic up to `+Inf`, which is the count.
        let count = self.count.load(Ordering::Relaxed);
        let mut cumulative = 0u64;
        for (bound, bucket) in BOUNDS_NS.iter().zip(&self.buckets) {
            cumulative = cumulative
                .saturating_add(bucket.load(Ordering::Relaxed))
                .min(count);
            let le = *bound as f64 / 1e9;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// One series: a declared route and method.
struct Series {
    method: Method,
    route: &'static str,
    histogram: Histogram,
}

/// The request-duration histograms of every declared route, plus one for the rest.
///
/// Shared by the recording layer and the `/metrics` handler.
pub(crate) struct Latency {
    series: Box<[Series]>,
    unmatched: Histogram,
}

/// The metric family's name.
pub(crate) const FAMILY: &str = "jwtx_http_request_duration_seconds";

impl Latency {
    /// Histograms for `routes` (method and path pattern, as the router declares them), and for
    /// `HEAD` on each `GET` route (axum answers it with the `GET` handler; probes use it).
    pub(crate) fn new(routes: impl IntoIterator<Item = (Method, &'static str)>) -> Arc<Self> {
        let series = routes
            .into_iter()
            .flat_map(|(method, route)| {
                let head = (method == Method::GET).then_some((Method::HEAD, route));
                std::iter::once((method, route)).chain(head)
            })
            .map(|(method, route)| Series {
                method,
                route,
                histogram: Histogram::default(),
            })
            .collect();
        Arc::new(Latency {
            series,
            unmatched: Histogram::default(),
        })
    }

    fn histogram(&self, method: &Method, route: Option<&str>) -> &Histogram {
        route
            .and_then(|r| {
                self.series
                    .iter()
                    .find(|s| s.method == *method && same_route(s.route, r))
            })
            .map_or(&self.unmatched, |s| &s.histogram)
    }

    /// Appends the family (`# HELP`, `# TYPE` and the series that have seen a request).
    pub(crate) fn write(&self, out: &mut String) {
        family(
            out,
            FAMILY,
            "histogram",
            "Time from a request's head to its response's head, by route.",
        );
        for s in &*self.series {
            if s.histogram.count.load(Ordering::Relaxed) > 0 {
                let labels = format!(
                    "method=\"{}\",route=\"{}\"",
                    escape(s.method.as_str()),
                    escape(s.route)
                );
                s.histogram.write(out, FAMILY, &labels);
            }
        }
        if self.unmatched.count.load(Ordering::Relaxed) > 0 {
            let labels = format!("method=\"\",route=\"{UNMATCHED}\"");
            self.unmatched.write(out, FAMILY, &labels);
        }
    }
}

/// Whether `declared`, a route in the OpenAPI spelling of `jwt_exchange::axum::routes()`, is
/// `matched`, axum's spelling of it: the same but for a catch-all, `{path}` there and `{*path}`
/// here (axum allows one, at the end). Compared in place: the Envoy ext_authz routes are
/// catch-alls and on the forward-auth path, so no string is built per request.
fn same_route(declared: &str, matched: &str) -> bool {
    match matched.split_once("{*") {
        None => declared == matched,
        Some((head, tail)) => declared
            .strip_prefix(head)
            .and_then(|rest| rest.strip_prefix('{'))
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(str::is_empty),
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`) that records each request. Added
/// with `Router::layer`, it runs after routing, so the matched route pattern is known.
pub(crate) async fn record(
    State(latency): State<Arc<Latency>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    latency
        .histogram(&method, route.as_ref().map(MatchedPath::as_str))
        .observe(nanos);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &Latency) -> Vec<String> {
        let mut out = String::new();
        l.write(&mut out);
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let l = Latency::new([(Method::POST, "/auth/jwt/login")]);
        let h = l.histogram(&Method::POST, Some("/auth/jwt/login"));
        h.observe(100_000); // exactly 100 µs: the first bucket (le is inclusive)
        h.observe(100_001); // just above: the second
        h.observe(3_000_000); // 3 ms: le=0.005
        h.observe(60_000_000_000); // a minute: only +Inf
        let out = lines(&l);
        let labels = "method=\"POST\",route=\"/auth/jwt/login\"";
        for (le, n) in [
            ("0.0001", 1),
            ("0.00025", 2),
            ("0.0025", 2),
            ("0.005", 3),
            ("10", 3),
            ("+Inf", 4),
        ] {
            let want = format!("{FAMILY}_bucket{{{labels},le=\"{le}\"}} {n}");
            assert!(out.contains(&want), "{want} in {out:#?}");
        }
        assert!(out.contains(&format!("{FAMILY}_count{{{labels}}} 4")));
        assert!(out.contains(&format!("{FAMILY}_sum{{{labels}}} 60.003200001")));
    }

    #[test]
    fn unknown_routes_and_methods_share_one_series_and_idle_routes_are_not_listed() {
        let l = Latency::new([
            (Method::GET, "/auth/check"),
            (Method::GET, "/healthz"),
            (Method::POST, "/auth/check/{path}"),
        ]);
        l.histogram(&Method::GET, Some("/auth/check")).observe(1);
        l.histogram(&Method::PUT, Some("/auth/check")).observe(1);
        l.histogram(&Method::GET, None).observe(1);
        l.histogram(&Method::HEAD, Some("/healthz")).observe(1);
        l.histogram(&Method::GET, Some("/auth/check/{*pat}"))
            .observe(1);
        l.histogram(&Method::POST, Some("/auth/check/{*path}"))
            .observe(1);
        let out = lines(&l).join("\n");
        assert!(out.contains(&format!(
            "{FAMILY}_count{{method=\"GET\",route=\"/auth/check\"}} 1"
        )));
        assert!(out.contains(&format!(
            "{FAMILY}_count{{method=\"\",route=\"unmatched\"}} 3"
        )));
        assert!(out.contains(&format!(
            "{FAMILY}_count{{method=\"POST\",route=\"/auth/check/{{path}}\"}} 1"
        )));
        assert!(out.contains(&format!(
            "{FAMILY}_count{{method=\"HEAD\",route=\"/healthz\"}} 1"
        )));
        assert!(!out.contains("method=\"GET\",route=\"/healthz\""), "{out}");
        assert!(out.starts_with(&format!("# HELP {FAMILY} ")));
    }
}

#[cfg(test)]
mod same_route_tests {
    use super::same_route;

    #[test]
    fn catch_alls_match_their_openapi_spelling_only() {
        assert!(same_route("/auth/check", "/auth/check"));
        assert!(same_route("/auth/check/{path}", "/auth/check/{*path}"));
        assert!(same_route("/auth/sessions/{id}", "/auth/sessions/{id}"));
        for (declared, matched) in [
            ("/auth/check/{path}", "/auth/check/{path}x"),
            ("/auth/check/{path}", "/auth/check/{*pat}"),
            ("/auth/check/{path}", "/auth/{*path}"),
            ("/auth/check", "/auth/check/{*path}"),
            ("/auth/check/{path}", "/auth/check"),
        ] {
            assert!(!same_route(declared, matched), "{declared} vs {matched}");
        }
    }
}
