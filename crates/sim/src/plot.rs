//! `simulate --plot out.svg`: what each policy paid for over time against the
//! fluid lower bound and the demand (in minions when every group has one
//! shape, in cost per hour otherwise), and below it the pods left pending and
//! each policy's scale-ups and scale-downs — the two things an operator
//! weighs, cost against waits, on one time axis.
//!
//! The legend sits right of both panels, outside the data, and names every
//! line and marker drawn; the title says what was replayed and which window.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{Report, Run, Sample, TimelineEvent};

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

/// What the title says was replayed: the scenario or trace file(s), and the
/// window's start in the trace's time (0 for a scenario).
#[derive(Clone, Debug, Default)]
pub struct Caption {
    pub source: String,
    pub start_secs: f64,
}

/// One colour per run, in order; the bound is black, the demand grey.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];
const DEMAND: RGBColor = RGBColor(0x80, 0x80, 0x80);

const WIDTH: u32 = 1500;
const HEIGHT: u32 = 900;
/// The panels take the left part; the legend starts here, right of them.
pub const LEGEND_LEFT: u32 = 1110;
const TITLE_HEIGHT: u32 = 44;
/// Height of the upper (cost) panel; the pending panel takes the rest.
const UPPER_HEIGHT: u32 = 540;
/// Windows longer than this are drawn in days, shorter ones in hours.
const DAYS_FROM_HOURS: f64 = 48.0;
/// Characters per legend line before a label wraps.
const LEGEND_WRAP: usize = 46;

/// Renders the report as an SVG document.
pub fn svg(report: &Report, caption: &Caption) -> Result<String, PlotError> {
    let mut out = String::new();
    draw(report, caption, &mut out).map_err(|e| PlotError(e.to_string()))?;
    Ok(out)
}

/// How a legend entry is drawn.
enum Key {
    Line { colour: RGBAColor, width: u32, dashed: bool },
    Up(RGBColor),
    Down(RGBColor),
    Heading,
}

/// The time axis: hours, or days for long windows.
struct Axis {
    per: f64,
    unit: &'static str,
}

impl Axis {
    fn of(duration_secs: f64) -> Self {
        if duration_secs / 3600.0 > DAYS_FROM_HOURS {
            Self { per: 86_400.0, unit: "days" }
        } else {
            Self { per: 3600.0, unit: "hours" }
        }
    }

    fn at(&self, secs: f64) -> f64 {
        secs / self.per
    }
}

fn draw(report: &Report, caption: &Caption, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let nodes = report.runs.iter().all(|r| r.series.iter().all(|s| s.bound.nodes.is_some()));
    let (actual, unit): (fn(&Sample) -> f64, &str) =
        if nodes { (|s| f64::from(s.billed), "minions") } else { (|s| s.cost_per_hour, "cost per hour") };
    let bound = |s: &Sample| if nodes { f64::from(s.bound.nodes.unwrap_or(0)) } else { s.bound.cost_per_hour };
    let axis = Axis::of(report.duration_secs);
    let span = axis.at(report.duration_secs).max(1e-3);

    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&title(report, caption, unit), ("sans-serif", 20))?;
    let (panels, legend_area) = body.split_horizontally(LEGEND_LEFT);
    let (upper, lower) = panels.split_vertically(UPPER_HEIGHT - TITLE_HEIGHT);
    let mut legend: Vec<(Key, String)> = vec![(Key::Heading, format!("upper panel: {unit}"))];

    // Upper panel: paid for against the bound and the demand.
    let top = report
        .runs
        .iter()
        .flat_map(|r| r.series.iter().flat_map(|s| [actual(s), bound(s), s.bound.demand]))
        .fold(1.0f64, f64::max)
        * 1.08;
    let mut chart = ChartBuilder::on(&upper)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..span, 0f64..top)?;
    chart.configure_mesh().x_desc(axis_desc(&axis, caption)).y_desc(unit).light_line_style(WHITE.mix(0.0)).draw()?;
    let points = |series: &[Sample], f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        series.iter().map(|s| (axis.at(s.at_secs), f(s))).collect()
    };
    let first = &report.runs[0].series;
    let demand_label =
        if nodes { "demand (minions, unrounded)" } else { "demand (cost per hour at the cheapest units)" };
    chart.draw_series(LineSeries::new(points(first, &|s| s.bound.demand), DEMAND.stroke_width(2)))?;
    legend.push((Key::Line { colour: DEMAND.to_rgba(), width: 2, dashed: false }, demand_label.into()));
    chart.draw_series(DashedLineSeries::new(points(first, &bound), 6, 4, BLACK.stroke_width(2)))?;
    legend.push((Key::Line { colour: BLACK.to_rgba(), width: 2, dashed: true }, "fluid lower bound".into()));
    for (k, run) in report.runs.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        // A run whose demand differed (HPA, jobs restarted after eviction) has its own bound.
        let own_bound = points(&run.series, &bound);
        if k > 0 && own_bound != points(first, &bound) {
            chart.draw_series(DashedLineSeries::new(own_bound, 6, 4, colour.mix(0.6).stroke_width(1)))?;
            legend.push((
                Key::Line { colour: colour.mix(0.6), width: 1, dashed: true },
                format!("fluid lower bound of {} (its own demand)", run.policy),
            ));
        }
        chart.draw_series(LineSeries::new(points(&run.series, &actual), colour.stroke_width(2)))?;
        legend.push((Key::Line { colour: colour.to_rgba(), width: 2, dashed: false }, run.label.clone()));
    }

    // Lower panel: pending pods, and each run's scale events in a lane above them.
    legend.push((Key::Heading, "lower panel: pending pods, scale events".into()));
    let pending_top =
        // At least 10 pods high: whole-pod ticks when few wait.
        report.runs.iter().flat_map(|r| r.series.iter().map(|s| f64::from(s.pending_pods))).fold(10.0f64, f64::max)
            * 1.05;
    let lane = pending_top * 0.08;
    let lanes = report.runs.len() as f64;
    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..span, 0f64..pending_top + lane * (lanes + 0.5))?;
    chart
        .configure_mesh()
        .x_desc(axis_desc(&axis, caption))
        .y_desc("pending pods")
        // The lanes above the pending pods hold markers, not counts.
        .y_label_formatter(&|v| if *v <= pending_top { format!("{v:.0}") } else { String::new() })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (k, run) in report.runs.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart.draw_series(LineSeries::new(
            points(&run.series, &|s| f64::from(s.pending_pods)),
            colour.stroke_width(1),
        ))?;
        legend.push((
            Key::Line { colour: colour.to_rgba(), width: 1, dashed: false },
            format!("{}: pending pods", run.policy),
        ));
        let y = pending_top + lane * (k as f64 + 0.5);
        let (ups, downs) = scale_events(run);
        for (times, shape) in [(ups, UP), (downs, DOWN)] {
            chart.draw_series(
                times
                    .iter()
                    .map(|&at| EmptyElement::at((axis.at(at), y)) + Polygon::new(shape.to_vec(), colour.filled())),
            )?;
        }
    }
    legend.push((Key::Up(BLACK), "scale-up (minions added), in the policy's colour and lane".into()));
    legend.push((Key::Down(BLACK), "scale-down (minions removed), in the policy's colour and lane".into()));

    draw_legend(&legend_area, &legend)?;
    root.present()?;
    Ok(())
}

/// "diurnal-week.yaml, 0 – 7d (7 days): minions over time".
fn title(report: &Report, caption: &Caption, unit: &str) -> String {
    let source = if caption.source.is_empty() { report.scenario.as_str() } else { caption.source.as_str() };
    let start = caption.start_secs;
    let end = start + report.duration_secs;
    format!(
        "{source}, {} – {} ({}): {unit} over time",
        span_text(start),
        span_text(end),
        span_text(report.duration_secs)
    )
}

fn axis_desc(axis: &Axis, caption: &Caption) -> String {
    if caption.start_secs > 0.0 {
        format!("{} since {} (trace time)", axis.unit, span_text(caption.start_secs))
    } else {
        axis.unit.to_string()
    }
}

/// A time as days, hours and minutes (`119d 8h 9m`, `0`).
fn span_text(secs: f64) -> String {
    let total = secs.round().max(0.0) as u64 / 60;
    let (days, hours, minutes) = (total / 1440, total / 60 % 24, total % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "m")]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() { "0".into() } else { parts.join(" ") }
}

/// When the run scaled up and when it scaled down (seconds).
fn scale_events(run: &Run) -> (Vec<f64>, Vec<f64>) {
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for e in &run.timeline {
        match e.event {
            TimelineEvent::ScaleUp { .. } => ups.push(e.at_secs),
            TimelineEvent::ScaleDown { .. } => downs.push(e.at_secs),
            _ => {}
        }
    }
    (ups, downs)
}

/// A scale-up marker: a triangle pointing up, in pixels around its point.
const UP: [(i32, i32); 3] = [(0, -5), (-4, 3), (4, 3)];
/// A scale-down marker: a triangle pointing down.
const DOWN: [(i32, i32); 3] = [(0, 5), (-4, -3), (4, -3)];

/// The legend, drawn in its own area right of the panels: a sample of each
/// line or marker, and its label wrapped to the area's width.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(Key, String)],
) -> Result<(), Box<dyn std::error::Error>> {
    let text = ("sans-serif", 13).into_font().color(&BLACK);
    let heading = ("sans-serif", 13).into_font().style(FontStyle::Bold).color(&BLACK);
    let mut y = 24;
    for (key, label) in entries {
        let lines = wrap(label, LEGEND_WRAP);
        let mid = y + 7;
        match key {
            Key::Heading => {
                y += 8;
                area.draw(&Text::new(label.clone(), (8, y), heading.clone()))?;
                y += 22;
                continue;
            }
            Key::Line { colour, width, dashed: false } => {
                area.draw(&PathElement::new(vec![(10, mid), (40, mid)], colour.stroke_width(*width)))?;
            }
            Key::Line { colour, width, dashed: true } => {
                for x in [10, 20, 30] {
                    area.draw(&PathElement::new(vec![(x, mid), (x + 6, mid)], colour.stroke_width(*width)))?;
                }
            }
            Key::Up(colour) => {
                area.draw(&Polygon::new(vec![(25, mid - 5), (21, mid + 3), (29, mid + 3)], colour.filled()))?;
            }
            Key::Down(colour) => {
                area.draw(&Polygon::new(vec![(25, mid + 5), (21, mid - 3), (29, mid - 3)], colour.filled()))?;
            }
        }
        for line in lines {
            area.draw(&Text::new(line, (48, y), text.clone()))?;
            y += 17;
        }
        y += 5;
    }
    Ok(())
}

/// Splits `label` into lines of at most `width` characters at spaces.
fn wrap(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in label.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PHP_APACHE, PolicyKind, Scenario, compare};

    /// The walk-through under heatscaler and the cluster-autoscaler peer.
    fn report() -> Report {
        let sc = Scenario::parse(PHP_APACHE, "php-apache.yaml").unwrap();
        compare(&sc, &[PolicyKind::HeatscalerNoWebhook, PolicyKind::CaDefaults]).unwrap()
    }

    /// Every `<text>` of the document: its x position and its content.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text ")
            .skip(1)
            .map(|t| {
                let x = t.split("x=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().parse().unwrap();
                let body = t.split('>').nth(1).unwrap().split('<').next().unwrap().trim().to_string();
                (x, body)
            })
            .collect()
    }

    /// The legend's text, lines joined (labels wrap).
    fn legend(svg: &str) -> String {
        let lines: Vec<String> =
            texts(svg).into_iter().filter(|(x, _)| *x >= f64::from(LEGEND_LEFT)).map(|(_, t)| t).collect();
        lines.join(" ")
    }

    #[test]
    fn every_line_and_marker_is_in_a_legend_outside_the_data() {
        let report = report();
        let svg = svg(&report, &Caption { source: "php-apache.yaml".into(), start_secs: 0.0 }).unwrap();
        let legend = legend(&svg);
        let mut wanted = vec![
            "demand (minions, unrounded)".to_string(),
            "fluid lower bound".into(),
            "scale-up (minions added)".into(),
            "scale-down (minions removed)".into(),
        ];
        for run in &report.runs {
            wanted.push(run.label.clone());
            wanted.push(format!("{}: pending pods", run.policy));
        }
        for label in &wanted {
            assert!(legend.contains(label.as_str()), "`{label}` not in the legend: {legend}");
        }
        // Nothing of the legend inside the panels: every label right of them.
        for label in ["fluid lower bound", "scale-up"] {
            let inside = texts(&svg).into_iter().filter(|(x, t)| t.contains(label) && *x < f64::from(LEGEND_LEFT));
            assert_eq!(inside.count(), 0, "`{label}` drawn inside the data area");
        }
    }

    #[test]
    fn two_panels_share_the_time_axis_and_the_lower_one_marks_every_scale_event() {
        let report = report();
        let svg = svg(&report, &Caption::default()).unwrap();
        let all = texts(&svg);
        let has = |s: &str| all.iter().filter(|(_, t)| t == s).count();
        assert_eq!(has("minions"), 1, "the upper panel's axis");
        assert_eq!(has("pending pods"), 1, "the lower panel's axis");
        assert_eq!(has("hours"), 2, "both panels in hours for a short run");
        let events: usize = report
            .runs
            .iter()
            .map(|r| {
                let (ups, downs) = scale_events(r);
                ups.len() + downs.len()
            })
            .sum();
        assert!(events > 0, "the walk-through scales");
        // One triangle per event, and the legend's two.
        assert_eq!(svg.matches("<polygon").count(), events + 2);
    }

    #[test]
    fn the_title_names_the_file_and_window_and_long_windows_are_in_days() {
        let mut report = report();
        // The same run stretched over 30 days, as a 30-day trace window.
        let stretch = 30.0 * 86_400.0 / report.duration_secs;
        report.duration_secs *= stretch;
        for run in &mut report.runs {
            for s in &mut run.series {
                s.at_secs *= stretch;
            }
        }
        let caption = Caption { source: "openb_pod_list_default.csv".into(), start_secs: 10_310_960.0 };
        let svg = svg(&report, &caption).unwrap();
        let title = &texts(&svg)[0].1;
        assert_eq!(
            title, "openb_pod_list_default.csv, 119d 8h 9m – 149d 8h 9m (30d): minions over time",
            "the title names the trace and the window in trace time"
        );
        let all = texts(&svg);
        assert_eq!(all.iter().filter(|(_, t)| t == "days since 119d 8h 9m (trace time)").count(), 2);
        assert_eq!(span_text(0.0), "0");
        assert_eq!(span_text(90.0 * 60.0), "1h 30m");
    }

    #[test]
    fn legend_labels_wrap_at_spaces() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("short", 46), ["short"]);
    }
}
