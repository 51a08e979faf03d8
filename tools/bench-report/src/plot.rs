//! The plots, as SVG files (plotters' SVG backend: text is left to the viewer's fonts).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Result;
use crate::data::Data;

const SIZE: (u32, u32) = (860, 520);
const FOOTER: u32 = 28;

/// Series colours, one per variant in the order the benches measured them.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// A white canvas at `path` with `footer` written along its bottom; returns the area above.
fn canvas<'p>(
    root: &DrawingArea<SVGBackend<'p>, Shift>,
    footer: &str,
) -> Result<DrawingArea<SVGBackend<'p>, Shift>> {
    root.fill(&WHITE)?;
    let (plot, foot) = root.split_vertically(SIZE.1 - FOOTER);
    foot.draw_text(
        footer,
        &("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
        (12, 8),
    )?;
    Ok(plot)
}

/// Draws `chart`'s legend at `at`, and writes the file.
fn finish<'p, CT: CoordTranslate>(
    root: &DrawingArea<SVGBackend<'p>, Shift>,
    chart: &mut ChartContext<'p, SVGBackend<'p>, CT>,
    at: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Counts are drawn at their base-2 logarithm, so 1, 2, 4 ... 64 are evenly spaced.
fn log2(n: usize) -> f64 {
    (n.max(1) as f64).log2()
}

/// The label of a position on a base-2 logarithmic axis: the count there, when whole.
fn powers_of_two(x: &f64) -> String {
    let n = 2f64.powf(*x);
    if (n - n.round()).abs() < 0.01 {
        format!("{n:.0}")
    } else {
        String::new()
    }
}

/// A line with its points, labelled for the legend.
macro_rules! line {
    ($chart:expr, $points:expr, $i:expr, $label:expr) => {{
        let c = colour($i);
        let points: Vec<(f64, f64)> = $points;
        $chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label($label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        $chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    }};
}

/// Cycles per second against the number of tasks, one line per variant of `client`.
pub(crate) fn rates(path: &Path, data: &Data, client: &str, footer: &str) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let plot = canvas(&root, footer)?;
    let counts = data.task_counts(client);
    let variants = data.variants_of(client);
    let top = variants
        .iter()
        .flat_map(|v| counts.iter().filter_map(|&t| data.rate(client, v, t)))
        .fold(1.0f64, f64::max);
    let max_tasks = log2(counts.last().copied().unwrap_or(2).max(2));
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!("Uncontended lock + release cycles per second, {client}"),
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..max_tasks + 0.2, 0f64..top * 1.1)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_labels(max_tasks as usize + 1)
        .x_desc("concurrent tasks (log scale)")
        .y_desc("cycles per second")
        .x_label_formatter(&powers_of_two)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, variant) in variants.iter().enumerate() {
        let points = counts
            .iter()
            .filter_map(|&t| data.rate(client, variant, t).map(|r| (log2(t), r)))
            .collect();
        line!(chart, points, i, variant.as_str());
    }
    finish(&root, &mut chart, SeriesLabelPosition::UpperLeft)
}

/// The distribution (CDF) of `what` (µs samples) at `processes` (`who`: "processes", or
/// "tasks"), one line per variant, on a log scale of milliseconds.
pub(crate) fn cdf(
    path: &Path,
    data: &Data,
    what: &str,
    (processes, who): (usize, &str),
    footer: &str,
) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let plot = canvas(&root, footer)?;
    let variants = data.variants_with_samples(processes);
    let all: Vec<&[u64]> = variants
        .iter()
        .map(|v| data.samples(what, v, processes))
        .collect();
    let lowest = all
        .iter()
        .filter_map(|s| s.first())
        .min()
        .copied()
        .unwrap_or(1)
        .max(10) as f64
        / 1000.0;
    let highest = all
        .iter()
        .filter_map(|s| s.last())
        .max()
        .copied()
        .unwrap_or(1000) as f64
        / 1000.0;
    let (title, unit) = match what {
        "handover" => ("Hand-over", "hand-overs"),
        "wait" => ("Wait in the acquire", "turns"),
        other => (other, "samples"),
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!("{title}: distribution, {processes} {who}"),
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (lowest * 0.8..highest.max(lowest * 2.0) * 1.2).log_scale(),
            0f64..1f64,
        )?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("milliseconds (log scale)")
        .y_desc("fraction of turns at most this")
        .x_label_formatter(&|x| {
            if *x < 1.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.0}")
            }
        })
        .draw()?;
    for (i, (variant, samples)) in variants.iter().zip(&all).enumerate() {
        if samples.is_empty() {
            continue;
        }
        // At most 400 points per line: the quantiles, evenly spaced.
        let n = samples.len();
        let step = (n / 400).max(1);
        let points = (0..n)
            .step_by(step)
            .chain(std::iter::once(n - 1))
            .map(|k| {
                let ms = (samples[k] as f64 / 1000.0).max(lowest * 0.8);
                (ms, (k + 1) as f64 / n as f64)
            })
            .collect::<Vec<_>>();
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(format!("{variant} ({n} {unit})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    finish(&root, &mut chart, SeriesLabelPosition::LowerRight)
}

/// A figure against the number of processes, one line per variant.
pub(crate) fn per_processes(
    path: &Path,
    data: &Data,
    what: &str,
    title: &str,
    footer: &str,
) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let plot = canvas(&root, footer)?;
    let series = data.series(what);
    let top = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, v)| *v))
        .fold(1.0f64, f64::max);
    let max_p = log2(
        series
            .iter()
            .flat_map(|(_, points)| points.iter().map(|(p, _)| *p))
            .max()
            .unwrap_or(2)
            .max(4),
    );
    let mut chart = ChartBuilder::on(&plot)
        .caption(format!("{title}, by waiting processes"), ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.8f64..max_p + 0.2, 0f64..top * 1.2)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_labels(max_p as usize + 1)
        .x_desc("processes (log scale)")
        .y_desc(title)
        .x_label_formatter(&powers_of_two)
        .draw()?;
    for (i, (variant, points)) in series.iter().enumerate() {
        let points = points.iter().map(|&(p, v)| (log2(p), v)).collect();
        line!(chart, points, i, variant.as_str());
    }
    finish(&root, &mut chart, SeriesLabelPosition::UpperLeft)
}
