//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4): requests by route and
//! status, and their latency as a histogram. Counted in the request middleware with atomics, so
//! counting costs a few nanoseconds and no lock.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Routes counted apart (anything else is "other").
const ROUTES: [&str; 7] = ["ocsp", "crl", "ca", "tsa", "healthz", "metrics", "other"];
/// Status classes counted apart.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: [[AtomicU64; CLASSES.len()]; ROUTES.len()],
    buckets: [[AtomicU64; BUCKETS.len()]; ROUTES.len()],
    count: [AtomicU64; ROUTES.len()],
    sum_micros: [AtomicU64; ROUTES.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            buckets: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            count: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The counted route of a request path.
fn route_index(path: &str) -> usize {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    ROUTES
        .iter()
        .position(|r| *r == first)
        .unwrap_or(ROUTES.len() - 1)
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn record(&self, path: &str, status: u16, latency: Duration) {
        let r = route_index(path);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(c) = self.requests.get(r).and_then(|row| row.get(class)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = latency.as_secs_f64();
        if let Some(row) = self.buckets.get(r) {
            for (b, bound) in row.iter().zip(BUCKETS) {
                if secs <= bound {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(c) = self.count.get(r) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(s) = self.sum_micros.get(r) {
            s.fetch_add(
                u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP jpki_http_requests_total HTTP requests answered, by route and status class."
        );
        let _ = writeln!(out, "# TYPE jpki_http_requests_total counter");
        for (route, row) in ROUTES.iter().zip(&self.requests) {
            for (class, c) in CLASSES.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "jpki_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP jpki_http_request_duration_seconds Time to answer an HTTP request, by route."
        );
        let _ = writeln!(out, "# TYPE jpki_http_request_duration_seconds histogram");
        for (i, route) in ROUTES.iter().enumerate() {
            let count = self.count.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            if let Some(row) = self.buckets.get(i) {
                for (b, bound) in row.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "jpki_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        b.load(Ordering::Relaxed)
                    );
                }
            }
            let _ = writeln!(
                out,
                "jpki_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let sum = self.sum_micros.get(i).map_or(0, |s| s.load(Ordering::Relaxed)) as f64 / 1e6;
            let _ = writeln!(
                out,
                "jpki_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "jpki_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_class() {
        let m = Metrics::default();
        m.record("/ocsp/sign", 200, Duration::from_micros(300));
        m.record("/ocsp", 401, Duration::from_millis(2));
        m.record("/nowhere", 404, Duration::from_secs(10));
        let text = m.render();
        assert!(
            text.contains("jpki_http_requests_total{route=\"ocsp\",status=\"2xx\"} 1"),
            "{text}"
        );
        assert!(text.contains("jpki_http_requests_total{route=\"ocsp\",status=\"4xx\"} 1"));
        assert!(text.contains("jpki_http_requests_total{route=\"other\",status=\"4xx\"} 1"));
        assert!(text.contains("jpki_http_request_duration_seconds_bucket{route=\"ocsp\",le=\"0.0005\"} 1"));
        assert!(text.contains("jpki_http_request_duration_seconds_bucket{route=\"ocsp\",le=\"0.0025\"} 2"));
        assert!(text.contains("jpki_http_request_duration_seconds_bucket{route=\"other\",le=\"5\"} 0"));
        assert!(text.contains("jpki_http_request_duration_seconds_bucket{route=\"other\",le=\"+Inf\"} 1"));
        assert!(text.contains("jpki_http_request_duration_seconds_count{route=\"ocsp\"} 2"));
    }
}
