//! What one benchmark measured, and the two ways of showing it: one JSON object a line for
//! scripts (peerbench's compare.sh keeps the lines that start with `{`), and a table for
//! people.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::measure::Recorder;

/// Figures a write benchmark adds, from the engine's own counters.
pub struct WriteFigures {
    /// Bytes of the keys and values the benchmark wrote.
    pub bytes_written: u64,
    /// WAL syncs during the benchmark: one per write under `--sync` with one thread, fewer
    /// when concurrent writers share a sync.
    pub wal_syncs: u64,
    /// Engine bytes written (WAL + flushes + compactions) over user bytes, since open.
    pub write_amp: f64,
}

pub struct Outcome {
    pub name: String,
    pub secs: f64,
    pub rec: Recorder,
    /// For benchmarks that read: how many reads, of which `rec.found` hit.
    pub reads: Option<u64>,
    pub writes: Option<WriteFigures>,
    pub disk_bytes: u64,
    /// Benchmark-specific figures (threads, the writer's ops in readwhilewriting...).
    pub extra: Map<String, Value>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.rec.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    pub fn json(&self) -> Value {
        let r = &self.rec;
        let round2 = |x: f64| (x * 100.0).round() / 100.0;
        let mut obj = json!({
            "benchmark": self.name,
            "ops": r.ops,
            "secs": (self.secs * 1000.0).round() / 1000.0,
            "ops_per_sec": self.ops_per_sec().round(),
            "p50_us": round2(r.quantile_us(0.50)),
            "p95_us": round2(r.quantile_us(0.95)),
            "p99_us": round2(r.quantile_us(0.99)),
            "max_us": round2(r.max_us()),
            "disk_bytes": self.disk_bytes,
        });
        let Value::Object(map) = &mut obj else {
            unreachable!("json! of an object literal is an object")
        };
        if let Some(reads) = self.reads {
            map.insert("found".into(), r.found.into());
            map.insert("misses".into(), reads.saturating_sub(r.found).into());
        }
        if let Some(w) = &self.writes {
            map.insert("bytes_written".into(), w.bytes_written.into());
            map.insert("write_amp".into(), round2(w.write_amp).into());
            map.insert("wal_syncs".into(), w.wal_syncs.into());
        }
        map.extend(self.extra.clone());
        obj
    }
}

/// The results table, one row per benchmark, under a line naming the settings.
pub fn table(title: &str, outcomes: &[Outcome]) -> Vec<String> {
    let header = [
        "benchmark",
        "ops",
        "ops/s",
        "p50",
        "p95",
        "p99",
        "max",
        "found",
        "written",
        "on disk",
        "w-amp",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for o in outcomes {
        let r = &o.rec;
        let dash = || "-".to_string();
        rows.push(vec![
            o.name.clone(),
            r.ops.to_string(),
            format!("{:.0}", o.ops_per_sec()),
            latency(r.quantile_us(0.50)),
            latency(r.quantile_us(0.95)),
            latency(r.quantile_us(0.99)),
            latency(r.max_us()),
            o.reads
                .map_or_else(dash, |reads| format!("{}/{reads}", r.found)),
            o.writes
                .as_ref()
                .map_or_else(dash, |w| bytes(w.bytes_written)),
            bytes(o.disk_bytes),
            o.writes
                .as_ref()
                .map_or_else(dash, |w| format!("{:.2}", w.write_amp)),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut lines = vec![title.to_string()];
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        lines.push(cells.join("  ").trim_end().to_string());
    }
    lines
}

fn latency(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// Bytes of every file under `dir` (what the database takes on disk).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_at_a_glance() {
        assert_eq!(latency(3.24), "3.2µs");
        assert_eq!(latency(1500.0), "1.50ms");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(3 << 20), "3.0MiB");
    }
}
