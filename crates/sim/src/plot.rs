//! `simulate --plot out.svg`: minions paid for over time, one line per
//! policy, against the fluid lower bound and the demand — in minions when
//! every group has one shape, in cost per hour otherwise.

use plotters::prelude::*;

use super::report::{Report, Sample};

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

/// One colour per run, in order; the bound and the demand are black and grey.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Renders the report as an SVG document.
pub fn svg(report: &Report) -> Result<String, PlotError> {
    let mut out = String::new();
    draw(report, &mut out).map_err(|e| PlotError(e.to_string()))?;
    Ok(out)
}

fn draw(report: &Report, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let nodes = report.runs.iter().all(|r| r.series.iter().all(|s| s.bound.nodes.is_some()));
    let (actual, unit): (fn(&Sample) -> f64, &str) =
        if nodes { (|s| f64::from(s.billed), "minions") } else { (|s| s.cost_per_hour, "cost per hour") };
    let bound = |s: &Sample| if nodes { f64::from(s.bound.nodes.unwrap_or(0)) } else { s.bound.cost_per_hour };
    let hours = (report.duration_secs / 3600.0).max(1e-3);
    let top = report
        .runs
        .iter()
        .flat_map(|r| r.series.iter().flat_map(|s| [actual(s), bound(s), s.bound.demand]))
        .fold(1.0f64, f64::max)
        * 1.08;
    let root = SVGBackend::with_string(out, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{} — {unit} over time", report.scenario), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..hours, 0f64..top)?;
    chart.configure_mesh().x_desc("hours").y_desc(unit).light_line_style(WHITE.mix(0.0)).draw()?;
    let points = |series: &[Sample], f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        series.iter().map(|s| (s.at_secs / 3600.0, f(s))).collect()
    };
    let first = &report.runs[0].series;
    let demand_label =
        if nodes { "demand (minions, unrounded)" } else { "demand (cost per hour at the cheapest units)" };
    chart
        .draw_series(LineSeries::new(points(first, &|s| s.bound.demand), RGBColor(0xa0, 0xa0, 0xa0).stroke_width(1)))?
        .label(demand_label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(0xa0, 0xa0, 0xa0)));
    chart
        .draw_series(DashedLineSeries::new(points(first, &bound), 6, 4, BLACK.stroke_width(2)))?
        .label("fluid lower bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (k, run) in report.runs.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // A run whose demand differed (HPA, jobs restarted after eviction) has its own bound.
        let own_bound = points(&run.series, &bound);
        if k > 0 && own_bound != points(first, &bound) {
            chart.draw_series(DashedLineSeries::new(own_bound, 6, 4, colour.mix(0.6).stroke_width(1)))?;
        }
        chart
            .draw_series(LineSeries::new(points(&run.series, &actual), colour.stroke_width(2)))?
            .label(run.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
