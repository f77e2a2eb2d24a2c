//! `GET /metrics`: request counts and latencies by method, route and status, and the
//! engine's figures, in the Prometheus text format 0.0.4. Names follow Prometheus'
//! conventions: the `lsmdb_` prefix, `_total` counters, `_seconds` and `_bytes` units. Labels
//! never hold keys or raw paths, so the number of series stays small.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds: from a cached read (well under a
/// millisecond) to a large batch waiting for a sync.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    method: &'static str,
    route: &'static str,
    code: u16,
}

#[derive(Default)]
struct Series {
    /// Cumulative as Prometheus wants it is computed when rendering; these are per bucket.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<SeriesKey, Series>>,
}

/// The method as a label: the standard ones by name, anything else as `OTHER`, so a client
/// cannot create series at will.
pub fn method_label(method: &tiny_http::Method) -> &'static str {
    use tiny_http::Method::*;
    match method {
        Get => "GET",
        Head => "HEAD",
        Post => "POST",
        Put => "PUT",
        Delete => "DELETE",
        Connect => "CONNECT",
        Options => "OPTIONS",
        Trace => "TRACE",
        Patch => "PATCH",
        NonStandard(_) => "OTHER",
    }
}

impl Metrics {
    pub fn record(&self, method: &'static str, route: &'static str, code: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut series = self.series.lock();
        let s = series
            .entry(SeriesKey {
                method,
                route,
                code,
            })
            .or_default();
        s.count += 1;
        s.sum_seconds += secs;
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            s.buckets[i] += 1;
        }
    }

    /// The whole exposition: the HTTP series, then the engine's.
    pub fn render(&self, stats: &crate::Stats) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_http(&mut out);
        render_engine(&mut out, stats);
        out
    }

    fn render_http(&self, out: &mut String) {
        let series = self.series.lock();
        header(
            out,
            "lsmdb_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route and status code.",
        );
        for (k, s) in series.iter() {
            let _ = writeln!(
                out,
                "lsmdb_http_requests_total{{{}}} {}",
                labels(k),
                s.count
            );
        }
        header(
            out,
            "lsmdb_http_request_duration_seconds",
            "histogram",
            "Time from receiving a request's head to having its reply ready to send.",
        );
        for (k, s) in series.iter() {
            let name = "lsmdb_http_request_duration_seconds";
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{},le=\"{bound}\"}} {cumulative}",
                    labels(k)
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{},le=\"+Inf\"}} {}",
                labels(k),
                s.count
            );
            let _ = writeln!(out, "{name}_sum{{{}}} {}", labels(k), s.sum_seconds);
            let _ = writeln!(out, "{name}_count{{{}}} {}", labels(k), s.count);
        }
    }
}

fn labels(k: &SeriesKey) -> String {
    format!(
        "method=\"{}\",route=\"{}\",code=\"{}\"",
        k.method, k.route, k.code
    )
}

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(super) fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn render_engine(out: &mut String, s: &crate::Stats) {
    let counters: [(&str, &str, u64); 17] = [
        (
            "lsmdb_writes_total",
            "Write batches applied (a put or a delete is a batch of one).",
            s.writes,
        ),
        ("lsmdb_gets_total", "Point reads served.", s.gets),
        (
            "lsmdb_user_written_bytes_total",
            "Bytes of keys and values written by users.",
            s.user_bytes_written,
        ),
        (
            "lsmdb_wal_written_bytes_total",
            "Bytes appended to the write-ahead log.",
            s.wal_bytes_written,
        ),
        (
            "lsmdb_wal_syncs_total",
            "fdatasync calls on the write-ahead log.",
            s.wal_syncs,
        ),
        (
            "lsmdb_flushes_total",
            "Memtables written to tables.",
            s.flushes,
        ),
        (
            "lsmdb_flush_written_bytes_total",
            "Bytes of tables written by flushes.",
            s.flush_bytes_written,
        ),
        ("lsmdb_compactions_total", "Compactions run.", s.compactions),
        (
            "lsmdb_compaction_trivial_moves_total",
            "Tables moved down a level without rewriting.",
            s.trivial_moves,
        ),
        (
            "lsmdb_compaction_read_bytes_total",
            "Bytes read by compactions.",
            s.compaction_bytes_read,
        ),
        (
            "lsmdb_compaction_written_bytes_total",
            "Bytes written by compactions.",
            s.compaction_bytes_written,
        ),
        (
            "lsmdb_block_cache_hits_total",
            "Block cache hits.",
            s.block_cache.hits,
        ),
        (
            "lsmdb_block_cache_misses_total",
            "Block cache misses.",
            s.block_cache.misses,
        ),
        (
            "lsmdb_write_stall_slowdowns_total",
            "Writes slowed down for compaction to catch up.",
            s.stall_slowdowns,
        ),
        (
            "lsmdb_write_stall_stops_total",
            "Writes stopped until compaction caught up.",
            s.stall_stops,
        ),
        (
            "lsmdb_background_errors_total",
            "Errors in background flushes and compactions.",
            s.background_errors,
        ),
        (
            "lsmdb_obsolete_file_delete_failures_total",
            "Obsolete files that could not be deleted.",
            s.obsolete_file_delete_failures,
        ),
    ];
    for (name, help, value) in counters {
        metric(out, name, "counter", help, value);
    }
    metric(
        out,
        "lsmdb_write_stall_seconds_total",
        "counter",
        "Time writers spent stalled.",
        s.stall_micros as f64 / 1e6,
    );
    let gauges: [(&str, &str, f64); 9] = [
        (
            "lsmdb_memtable_bytes",
            "Bytes in the active memtable.",
            s.memtable_bytes as f64,
        ),
        (
            "lsmdb_immutable_memtables",
            "Memtables waiting to be flushed.",
            s.immutable_memtables as f64,
        ),
        (
            "lsmdb_block_cache_bytes",
            "Bytes held by the block cache.",
            s.block_cache.usage_bytes as f64,
        ),
        (
            "lsmdb_block_cache_capacity_bytes",
            "Capacity of the block cache.",
            s.block_cache.capacity_bytes as f64,
        ),
        (
            "lsmdb_table_index_filter_bytes",
            "Memory held by open tables' indexes and filters.",
            s.table_index_filter_bytes as f64,
        ),
        (
            "lsmdb_pending_compaction_bytes",
            "Bytes compaction still has to rewrite.",
            s.pending_compaction_bytes as f64,
        ),
        (
            "lsmdb_write_amplification",
            "(WAL + flush + compaction bytes written) / user bytes written.",
            s.write_amplification,
        ),
        (
            "lsmdb_last_sequence",
            "Sequence number of the last write.",
            s.last_sequence as f64,
        ),
        (
            "lsmdb_writes_stopped",
            "1 when an earlier failure stopped writes (reopen to recover).",
            f64::from(u8::from(s.writes_stopped.is_some())),
        ),
    ];
    for (name, help, value) in gauges {
        metric(out, name, "gauge", help, value);
    }
    type LevelFigure = fn(&crate::LevelStats) -> f64;
    let per_level: [(&str, &str, LevelFigure); 3] = [
        ("lsmdb_sst_bytes", "Bytes of tables per level.", |l| {
            l.bytes as f64
        }),
        ("lsmdb_sst_tables", "Tables per level.", |l| l.tables as f64),
        (
            "lsmdb_level_score",
            "Compaction score per level; compaction is due at 1.",
            |l| l.score,
        ),
    ];
    for (name, help, value) in per_level {
        header(out, name, "gauge", help);
        for l in &s.levels {
            let _ = writeln!(out, "{name}{{level=\"{}\"}} {}", l.level, value(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_labelled() {
        let m = Metrics::default();
        m.record("GET", "/keys", 200, Duration::from_micros(50));
        m.record("GET", "/keys", 200, Duration::from_millis(3));
        m.record("GET", "/keys", 200, Duration::from_secs(5));
        let text = m.render(&crate::Stats::default());
        let labels = "method=\"GET\",route=\"/keys\",code=\"200\"";
        assert!(text.contains(&format!("lsmdb_http_requests_total{{{labels}}} 3\n")));
        let bucket = |le: &str| {
            format!("lsmdb_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}")
        };
        assert!(text.contains(&format!("{} 1\n", bucket("0.0001"))));
        assert!(text.contains(&format!("{} 2\n", bucket("0.005"))));
        assert!(text.contains(&format!("{} 2\n", bucket("1"))));
        assert!(text.contains(&format!("{} 3\n", bucket("+Inf"))));
        assert!(text.contains("# TYPE lsmdb_writes_total counter\nlsmdb_writes_total 0\n"));
    }
}
