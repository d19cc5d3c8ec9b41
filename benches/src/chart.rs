//! The chart: Ferrite's throughput next to its same-run limit for every scenario (numbered as in the table),
//! and the end-to-end latency percentiles. Text needs a TrueType font; DejaVu Sans (Debian's
//! `fonts-dejavu-core`) or `$FERRITE_BENCH_FONT` is used, and without one the chart is skipped.

use crate::report::{Error, Report};
use plotters::prelude::*;
use std::path::Path;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn load_font() -> Result<(), Error> {
    let from_env = std::env::var("FERRITE_BENCH_FONT").ok();
    let path = from_env
        .iter()
        .map(String::as_str)
        .chain(FONT_PATHS.iter().copied())
        .find(|p| Path::new(p).exists())
        .ok_or("no TrueType font found (install fonts-dejavu-core or set FERRITE_BENCH_FONT)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("cannot load font {path}"))?;
    Ok(())
}

pub fn draw(report: &Report, path: &Path) -> Result<(), Error> {
    load_font()?;
    let root = BitMapBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(620);
    let rows = &report.rows;
    let n = rows.len().max(1) as f64;
    let ymax = rows
        .iter()
        .map(|r| r.ferrite.max(r.limit))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Throughput per scenario: ferrite (blue) vs limit measured in the same run (grey)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len() + 1)
        .x_label_formatter(&|v: &f64| {
            let i = v.round();
            if (v - i).abs() < 0.05 && i >= 0.0 {
                format!("#{}", i as usize + 1)
            } else {
                String::new()
            }
        })
        .x_desc("scenario (row of the table)")
        .y_desc("MB/s")
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let x = i as f64;
        Rectangle::new([(x - 0.4, 0.0), (x, r.ferrite)], BLUE.filled())
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let x = i as f64;
        Rectangle::new(
            [(x, 0.0), (x + 0.4, r.limit)],
            RGBColor(170, 170, 170).filled(),
        )
    }))?;
    if let Some(l) = &report.latency {
        let values = [
            ("p50", l.p50_ms),
            ("p99", l.p99_ms),
            ("p99.9", l.p999_ms),
            ("max", l.max_ms),
        ];
        let lmax = values
            .iter()
            .map(|v| v.1)
            .fold(l.target_p99_max_ms, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&lower)
            .caption(
                format!(
                    "End-to-end latency, 1 KiB acks=1 at {:.0} msg/s (half the measured maximum); red: 5 ms target",
                    l.rate_msgs_per_s
                ),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..3.5, 0.0..lmax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(5)
            .x_label_formatter(&|v: &f64| {
                let i = v.round();
                if (v - i).abs() < 0.05 && (0.0..4.0).contains(&i) {
                    values[i as usize].0.to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Rectangle::new(
                [(i as f64 - 0.3, 0.0), (i as f64 + 0.3, v.1)],
                BLUE.filled(),
            )
        }))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, l.target_p99_max_ms), (3.5, l.target_p99_max_ms)],
            RED.stroke_width(2),
        )))?;
    }
    root.present()?;
    Ok(())
}
