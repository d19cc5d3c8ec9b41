//! Results: a markdown table on stdout, every figure in `<out>/results.json`, a chart in `<out>/throughput.png`.

use crate::load::{quantile, Throughput};
use serde::Serialize;
use std::path::Path;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One Ferrite figure next to its limit.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub unit: String,
    pub ferrite: f64,
    pub limit_name: String,
    pub limit: f64,
    /// ferrite / limit (for latency: limit / ferrite is not used; see `target`).
    pub ratio: f64,
    /// The target for `ratio`, if any (a minimum).
    pub target_min_ratio: Option<f64>,
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub broker_cpu_s_per_gb: Option<f64>,
    pub broker_rss_mib: Option<f64>,
}

impl Row {
    pub fn throughput(
        scenario: &str,
        t: &Throughput,
        limit_name: &str,
        limit: f64,
        target: Option<f64>,
    ) -> Row {
        let ferrite = t.mb_per_s();
        Row {
            scenario: scenario.to_string(),
            unit: "MB/s".into(),
            ferrite,
            limit_name: limit_name.to_string(),
            limit,
            ratio: if limit > 0.0 { ferrite / limit } else { 0.0 },
            target_min_ratio: target,
            messages: t.messages,
            bytes: t.bytes,
            seconds: t.seconds,
            msgs_per_s: t.msgs_per_s(),
            broker_cpu_s_per_gb: None,
            broker_rss_mib: None,
        }
    }

    pub fn with_cpu(mut self, cpu_s_per_gb: f64, rss_bytes: u64) -> Row {
        self.broker_cpu_s_per_gb = Some(cpu_s_per_gb);
        self.broker_rss_mib = Some(rss_bytes as f64 / (1024.0 * 1024.0));
        self
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub rate_msgs_per_s: f64,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub target_p99_max_ms: f64,
    /// Share of the machine's CPU time the hypervisor took during the run, and share left idle.
    pub cpu_stolen_percent: f64,
    pub cpu_idle_percent: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Restart {
    pub largest_topic_partitions: i32,
    pub partitions_total: u64,
    pub start_seconds: f64,
    pub rss_mib_after_start: f64,
    pub rss_mib_before_restart: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub quick: bool,
    pub total_seconds: f64,
    pub rows: Vec<Row>,
    pub latency: Option<Latency>,
    pub restart: Option<Restart>,
    /// Scenarios skipped and why.
    pub notes: Vec<String>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {}: {:.1} {} vs {} {:.1} ({:.0}%)",
            row.scenario,
            row.ferrite,
            row.unit,
            row.limit_name,
            row.limit,
            row.ratio * 100.0
        );
        self.rows.push(row);
    }

    /// Messages per second of the first scenario (1 KiB, acks=1): the "measured maximum" for latency.
    pub fn first_msgs_per_s(&self) -> f64 {
        self.rows.first().map(|r| r.msgs_per_s).unwrap_or(0.0)
    }

    pub fn latency(
        &mut self,
        rate: f64,
        sorted_us: &[u64],
        stolen_percent: f64,
        idle_percent: f64,
    ) {
        self.latency = Some(Latency {
            cpu_stolen_percent: stolen_percent,
            cpu_idle_percent: idle_percent,
            rate_msgs_per_s: rate,
            samples: sorted_us.len(),
            p50_ms: ms(quantile(sorted_us, 0.50)),
            p99_ms: ms(quantile(sorted_us, 0.99)),
            p999_ms: ms(quantile(sorted_us, 0.999)),
            max_ms: ms(sorted_us.last().copied().unwrap_or(0)),
            target_p99_max_ms: 5.0,
        });
    }

    pub fn restart(
        &mut self,
        partitions: i32,
        total: u64,
        start_seconds: f64,
        rss_after: u64,
        rss_before: u64,
    ) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        self.restart = Some(Restart {
            largest_topic_partitions: partitions,
            partitions_total: total,
            start_seconds,
            rss_mib_after_start: mib(rss_after),
            rss_mib_before_restart: mib(rss_before),
        });
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| # | scenario | ferrite | limit (same run) | ratio | target | broker CPU s/GB | broker RSS MiB |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let opt =
            |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
        for (i, r) in self.rows.iter().enumerate() {
            let target = match r.target_min_ratio {
                Some(t) if r.ratio >= t => format!(">= {:.0}% met", t * 100.0),
                Some(t) => format!(">= {:.0}% **missed**", t * 100.0),
                None => String::new(),
            };
            s += &format!(
                "| {} | {} | {:.1} {} ({:.0} msg/s) | {}: {:.1} | {:.0}% | {} | {} | {} |\n",
                i + 1,
                r.scenario,
                r.ferrite,
                r.unit,
                r.msgs_per_s,
                r.limit_name,
                r.limit,
                r.ratio * 100.0,
                target,
                opt(r.broker_cpu_s_per_gb, 2),
                opt(r.broker_rss_mib, 0),
            );
        }
        if let Some(l) = &self.latency {
            let verdict = if l.p99_ms <= l.target_p99_max_ms {
                "met"
            } else {
                "**missed**"
            };
            s += &format!(
                "| | e2e latency 1 KiB acks=1 at {:.0} msg/s (half max), {} samples | p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms | CPU meanwhile: {:.0}% idle, {:.1}% stolen by the hypervisor | | p99 <= {} ms {verdict} | | |\n",
                l.rate_msgs_per_s, l.samples, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.cpu_idle_percent, l.cpu_stolen_percent, l.target_p99_max_ms
            );
        }
        if let Some(r) = &self.restart {
            s += &format!(
                "| | restart holding data in {} partitions (largest topic {}) | start {:.2} s, RSS {:.0} MiB after start ({:.0} MiB before restart) | | | | | |\n",
                r.partitions_total, r.largest_topic_partitions, r.start_seconds, r.rss_mib_after_start, r.rss_mib_before_restart
            );
        }
        for note in &self.notes {
            s += &format!("\n{note}");
        }
        s += &format!(
            "\nTotal run time {:.0} s{}.\n",
            self.total_seconds,
            if self.quick { " (--quick)" } else { "" }
        );
        s
    }

    pub fn write(&self, out: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(out)?;
        let table = self.markdown();
        println!("{table}");
        std::fs::write(out.join("results.md"), &table)?;
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        match crate::chart::draw(self, &out.join("throughput.png")) {
            Ok(()) => eprintln!("chart: {}", out.join("throughput.png").display()),
            Err(e) => eprintln!("no chart: {e}"),
        }
        eprintln!("results: {}", out.join("results.json").display());
        Ok(())
    }
}
