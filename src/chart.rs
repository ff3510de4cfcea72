//! The run's chart as a self-contained SVG: offered load, the processor's measured total and
//! moving average (left axis, requests/s), desired and running replicas (right axis), and a
//! marker per scale event (old → new replicas, and the rule that caused it when known). Pure.
//!
//! From top to bottom, each in its own band: the title, the scale events' labels (up to
//! [`MARK_ROWS`] rows), the plot, the x-axis labels, the axis name, the legend.

use std::fmt::Write as _;

use crate::score::Second;
use processor::decisions::Record;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
/// Rows of scale-event labels above the plot.
pub const MARK_ROWS: usize = 3;
const MARK_ROW_HEIGHT: f64 = 12.0;
/// Baseline of the first row of scale-event labels.
const MARK_TOP: f64 = 44.0;
/// The plot's top edge: below the last row of labels.
const TOP: f64 = MARK_TOP + (MARK_ROWS as f64 - 1.0) * MARK_ROW_HEIGHT + 8.0;
const PLOT_HEIGHT: f64 = 330.0;
/// Baselines below the plot's bottom edge: x-axis labels, the axis name, the legend.
const X_LABELS: f64 = 18.0;
const X_NAME: f64 = 36.0;
const LEGEND: f64 = 60.0;
const HEIGHT: f64 = TOP + PLOT_HEIGHT + LEGEND + 14.0;
/// Rough widths of a character of the 12-px and 10-px labels (sans-serif), for layout.
const CHAR_WIDTH: f64 = 7.0;
const SMALL_CHAR_WIDTH: f64 = 6.0;
/// The colour of the desired-replicas line, also the scale events'.
const DESIRED_COLOR: &str = "#d62728";
/// The scale events' legend entry.
const MARK_LEGEND: &str = "scale event: old→new";

/// One change of the desired replica count, as the chart marks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleMark {
    /// The second at which the new count was first seen.
    pub t: u64,
    /// Desired replicas before and after.
    pub from: i64,
    pub to: i64,
    /// The rule that caused it (from the processor's decision records), when known.
    pub rule: Option<String>,
}

impl ScaleMark {
    /// The label: `2→3`, then the rule if there is one.
    fn label(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{}→{} {rule}", self.from, self.to),
            None => format!("{}→{}", self.from, self.to),
        }
    }
}

/// The scale events of a run: every second whose desired count differs from the one before
/// (several changes within one second show as one). Without a rule: the seconds do not say.
pub fn scale_marks(seconds: &[Second]) -> Vec<ScaleMark> {
    seconds
        .windows(2)
        .filter(|pair| pair[1].desired != pair[0].desired)
        .map(|pair| ScaleMark {
            t: pair[1].t,
            from: pair[0].desired,
            to: pair[1].desired,
            rule: None,
        })
        .collect()
}

/// Names the rule behind each mark from the processor's decision records (`records`, any
/// order; `start_ns` is the run's second 0 on the processor clock): the change record nearest
/// in time (within 2 s) that set the mark's new count gives its rules (`policy`, `burst`,
/// ...), or `raw` when no rule shaped it (the count is what the `.replicas()` lambda asked).
pub fn attach_rules(marks: &mut [ScaleMark], records: &[Record], start_ns: i64) {
    for mark in marks.iter_mut() {
        let at = start_ns as f64 + mark.t as f64 * 1e9;
        let nearest = records
            .iter()
            .filter(|r| r.outcome.is_change() && r.desired == Some(mark.to))
            .map(|r| ((r.time_ns as f64 - at).abs(), r))
            .filter(|(distance, _)| *distance <= 2e9)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, record)) = nearest {
            let mut names: Vec<&str> = record.rules.iter().map(|s| s.rule.name()).collect();
            names.dedup();
            mark.rule = Some(if names.is_empty() {
                "raw".to_owned()
            } else {
                names.join("+")
            });
        }
    }
}

/// Renders `seconds` with `title` and the scale events `marks`; `target_rps` scales the replica
/// axis (1 replica = target).
pub fn svg(title: &str, seconds: &[Second], target_rps: f64, marks: &[ScaleMark]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = PLOT_HEIGHT;
    let bottom = TOP + plot_h;
    let t_max = seconds.last().map_or(1.0, |s| s.t.max(1) as f64);
    let rps_max = seconds
        .iter()
        .flat_map(|s| [Some(s.offered_rps), s.measured_rps, s.smoothed_rps])
        .flatten()
        .chain(
            seconds
                .iter()
                .map(|s| s.actual.max(s.desired) as f64 * target_rps),
        )
        .fold(100.0_f64, f64::max)
        * 1.1;
    let rps_max = (rps_max / 100.0).ceil() * 100.0;
    let x = |t: f64| LEFT + t / t_max * plot_w;
    let y = |rps: f64| bottom - rps / rps_max * plot_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and axes.
    let step = nice_step(rps_max);
    let mut tick = 0.0;
    while tick <= rps_max + 0.5 {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y0:.1}" y2="{y0:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end">{tick}</text><text x="{}" y="{:.1}">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            WIDTH - RIGHT + 6.0,
            y(tick) + 4.0,
            (tick / target_rps).round(),
            y0 = y(tick),
        );
        tick += step;
    }
    let t_step = nice_step(t_max);
    let mut t = 0.0;
    while t <= t_max + 0.5 {
        let _ = writeln!(
            out,
            r#"<text class="x-label" x="{:.1}" y="{}" text-anchor="middle">{t}</text>"#,
            x(t),
            bottom + X_LABELS
        );
        t += t_step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">requests/s</text><text x="{}" y="{}" transform="rotate(90 {} {})" text-anchor="middle">replicas</text>"#,
        LEFT + plot_w / 2.0,
        bottom + X_NAME,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        WIDTH - 14.0,
        TOP + plot_h / 2.0,
        WIDTH - 14.0,
        TOP + plot_h / 2.0
    );
    write_marks(&mut out, marks, x);
    let series: [Series; 5] = [
        (
            "offered",
            "#888888",
            "6 3",
            Box::new(|s: &Second| Some(s.offered_rps)),
        ),
        (
            "measured total",
            "#1f77b4",
            "",
            Box::new(|s: &Second| s.measured_rps),
        ),
        (
            "moving average",
            "#2ca02c",
            "",
            Box::new(|s: &Second| s.smoothed_rps),
        ),
        (
            "desired replicas",
            DESIRED_COLOR,
            "2 2",
            Box::new(move |s: &Second| Some(s.desired as f64 * target_rps)),
        ),
        (
            "running replicas",
            "#ff7f0e",
            "",
            Box::new(move |s: &Second| Some(s.actual as f64 * target_rps)),
        ),
    ];
    let legend_y = bottom + LEGEND;
    let mut lx = LEFT + 10.0;
    for (name, color, dash, value) in &series {
        let mut path = String::new();
        let mut pen_down = false;
        let stepped = name.ends_with("replicas");
        for s in seconds {
            match value(s) {
                Some(v) => {
                    let (px, py) = (x(s.t as f64), y(v));
                    if !pen_down {
                        let _ = write!(path, "M{px:.1},{py:.1} ");
                    } else if stepped {
                        let _ = write!(path, "H{px:.1} V{py:.1} ");
                    } else {
                        let _ = write!(path, "L{px:.1},{py:.1} ");
                    }
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = writeln!(
            out,
            r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#
        );
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text class="legend" x="{}" y="{legend_y}">{name}</text>"#,
            lx + 22.0,
            legend_y - 4.0,
            legend_y - 4.0,
            lx + 26.0,
        );
        lx += legend_width(name);
    }
    let _ = writeln!(
        out,
        r#"<path d="{}" fill="{DESIRED_COLOR}"/><text class="legend" x="{}" y="{legend_y}">{MARK_LEGEND}</text>"#,
        triangle(lx + 11.0, legend_y - 9.0, true),
        lx + 26.0,
    );
    out.push_str("</svg>\n");
    out
}

/// Each scale event: a dotted line across the plot, a triangle on its top edge pointing the
/// way the count went, a tooltip, and its label in the first row above the plot with room for
/// it (none when every row is taken there: the tooltip still says it).
fn write_marks(out: &mut String, marks: &[ScaleMark], x: impl Fn(f64) -> f64) {
    let labels: Vec<String> = marks.iter().map(ScaleMark::label).collect();
    let spans: Vec<(f64, f64)> = marks
        .iter()
        .zip(&labels)
        .map(|(mark, label)| {
            let width = label.chars().count() as f64 * SMALL_CHAR_WIDTH;
            let start = (x(mark.t as f64) - width / 2.0).clamp(4.0, WIDTH - 4.0 - width);
            (start, start + width)
        })
        .collect();
    let rows = place_labels(&spans, MARK_ROWS);
    for ((mark, label), ((start, _), row)) in marks.iter().zip(&labels).zip(spans.iter().zip(rows))
    {
        let px = x(mark.t as f64);
        let _ = write!(
            out,
            r##"<g class="scale-event"><title>{}</title><line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="{DESIRED_COLOR}" stroke-opacity="0.35" stroke-dasharray="1 3"/><path d="{}" fill="{DESIRED_COLOR}"/>"##,
            escape(&format!("{} s: {label}", mark.t)),
            TOP + PLOT_HEIGHT,
            triangle(px, TOP, mark.to > mark.from),
        );
        if let Some(row) = row {
            let _ = write!(
                out,
                r#"<text class="scale-label" x="{start:.1}" y="{}" font-size="10">{}</text>"#,
                MARK_TOP + row as f64 * MARK_ROW_HEIGHT,
                escape(label)
            );
        }
        out.push_str("</g>\n");
    }
}

/// A 8-px triangle hanging from (`x`, `top`): pointing up for an increase, down for a decrease.
fn triangle(x: f64, top: f64, up: bool) -> String {
    let (tip, base) = if up {
        (top, top + 7.0)
    } else {
        (top + 7.0, top)
    };
    format!(
        "M{:.1},{base:.1} L{:.1},{base:.1} L{x:.1},{tip:.1} Z",
        x - 4.0,
        x + 4.0
    )
}

/// Greedy label layout: each span (start, end), in order, goes to the first of `rows` rows
/// whose last label ends at least 4 px before it starts; `None` when no row has room.
fn place_labels(spans: &[(f64, f64)], rows: usize) -> Vec<Option<usize>> {
    let mut ends = vec![f64::NEG_INFINITY; rows];
    spans
        .iter()
        .map(|&(start, end)| {
            let row = ends.iter().position(|&last| last + 4.0 <= start)?;
            ends[row] = end;
            Some(row)
        })
        .collect()
}

/// Horizontal room for one legend entry: its sample line, its name and a gap.
fn legend_width(name: &str) -> f64 {
    26.0 + name.chars().count() as f64 * CHAR_WIDTH + 18.0
}

/// A line of the chart: name, colour, dash pattern and how to read its value from a second.
type Series<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Box<dyn Fn(&Second) -> Option<f64> + 'a>,
);

/// 1, 2 or 5 times a power of ten, giving 4 to 10 ticks over `span`.
fn nice_step(span: f64) -> f64 {
    let raw = span.max(1.0) / 8.0;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time_ns: i64, outcome: &str, desired: i64, rules: &[&str]) -> Record {
        let rules: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| serde_json::json!({"rule": r, "before": 0, "after": 0}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "time": "", "time_ns": time_ns, "task": "autoscale", "node": "k8s_autoscale6",
            "target": {"namespace": "default", "kind": "deployments", "name": "app"},
            "inputs": {"fields": {}, "time": "", "age_seconds": 0.0},
            "current": 1, "raw": 2.0, "desired": desired, "rules": rules,
            "outcome": outcome, "delay_seconds": 0.5
        }))
        .expect("a record")
    }

    #[test]
    fn each_mark_names_the_rules_of_the_change_record_that_set_its_count() {
        let start = 1_000 * 1_000_000_000;
        let mut marks = vec![
            ScaleMark {
                t: 10,
                from: 1,
                to: 5,
                rule: None,
            },
            ScaleMark {
                t: 20,
                from: 5,
                to: 9,
                rule: None,
            },
            ScaleMark {
                t: 30,
                from: 9,
                to: 4,
                rule: None,
            },
            ScaleMark {
                t: 40,
                from: 4,
                to: 3,
                rule: None,
            },
        ];
        let records = [
            record(start + 9_500_000_000, "increased", 5, &["policy", "policy"]),
            record(start + 9_900_000_000, "held", 5, &["cooldown"]),
            record(start + 19_800_000_000, "increased", 9, &["burst", "max"]),
            record(start + 29_700_000_000, "decreased", 4, &[]),
            // Too far from t = 40 to be its cause.
            record(start + 45_000_000_000, "decreased", 3, &["stabilization"]),
        ];
        attach_rules(&mut marks, &records, start);
        let rules: Vec<Option<&str>> = marks.iter().map(|m| m.rule.as_deref()).collect();
        assert_eq!(
            rules,
            [Some("policy"), Some("burst+max"), Some("raw"), None]
        );
    }

    fn run() -> Vec<Second> {
        (0..30)
            .map(|t| Second {
                t,
                offered_rps: 300.0,
                measured_rps: (t > 3).then_some(290.0),
                smoothed_rps: (t > 12).then_some(295.0),
                desired: match t {
                    0..10 => 1,
                    10..20 => 3,
                    _ => 2,
                },
                actual: if t > 12 { 3 } else { 1 },
                p99_ms: None,
            })
            .collect()
    }

    /// The `y` attribute of every element whose opening tag has `class="{class}"`.
    fn ys(svg: &str, class: &str) -> Vec<f64> {
        svg.match_indices(&format!(r#"class="{class}""#))
            .map(|(at, _)| {
                let tag = &svg[at..at + svg[at..].find('>').unwrap()];
                let y = tag.split(" y=\"").nth(1).unwrap();
                y[..y.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn a_run_renders_as_one_svg_with_every_series() {
        let svg = svg("ramp <test>", &run(), 100.0, &[]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("ramp &lt;test&gt;"));
        // Five series and the scale-event legend's triangle.
        assert_eq!(svg.matches("<path").count(), 6);
        for name in [
            "offered",
            "measured total",
            "moving average",
            "desired replicas",
            "running replicas",
            "scale event",
        ] {
            assert!(svg.contains(&format!(">{name}")), "{name}");
        }
    }

    #[test]
    fn the_legend_sits_below_the_axis_labels_and_inside_the_chart() {
        let svg = svg("ramp", &run(), 100.0, &[]);
        let axis = ys(&svg, "x-label");
        let legend = ys(&svg, "legend");
        assert!(!axis.is_empty() && legend.len() == 6, "{axis:?} {legend:?}");
        let lowest_axis_label = axis.iter().copied().fold(f64::MIN, f64::max);
        for y in legend {
            // A 12-px line of text above its baseline: clear of the axis labels and the
            // axis name 18 px below them, and above the chart's bottom edge.
            assert!(
                y - 12.0 > lowest_axis_label + 18.0,
                "{y} vs {lowest_axis_label}"
            );
            assert!(y < HEIGHT, "{y} vs {HEIGHT}");
        }
        // The last legend entry ends inside the chart.
        let names = [
            "offered",
            "measured total",
            "moving average",
            "desired replicas",
            "running replicas",
        ];
        let end = LEFT + 10.0 + names.iter().map(|n| legend_width(n)).sum::<f64>();
        let mark_end = end + 26.0 + MARK_LEGEND.chars().count() as f64 * CHAR_WIDTH;
        assert!(mark_end <= WIDTH, "the legend ends at {mark_end}");
    }

    #[test]
    fn scale_events_come_from_changes_of_the_desired_count() {
        let marks = scale_marks(&run());
        assert_eq!(
            marks,
            [
                ScaleMark {
                    t: 10,
                    from: 1,
                    to: 3,
                    rule: None
                },
                ScaleMark {
                    t: 20,
                    from: 3,
                    to: 2,
                    rule: None
                },
            ]
        );
    }

    #[test]
    fn every_scale_event_is_marked_with_its_counts_and_rule() {
        let mut marks = scale_marks(&run());
        marks[1].rule = Some("decrease <cooldown> over".into());
        let svg = svg("ramp", &run(), 100.0, &marks);
        assert_eq!(svg.matches(r#"class="scale-event""#).count(), 2);
        assert!(svg.contains("<title>10 s: 1→3</title>"));
        assert!(svg.contains(">1→3</text>"));
        assert!(svg.contains(">3→2 decrease &lt;cooldown&gt; over</text>"));
        // Labels sit above the plot.
        assert!(ys(&svg, "scale-label").iter().all(|&y| y < TOP));
        // An increase points up (tip on the plot's edge), a decrease down.
        assert!(svg.contains(&triangle(LEFT + 10.0 / 29.0 * 840.0, TOP, true)));
        assert!(svg.contains(&triangle(LEFT + 20.0 / 29.0 * 840.0, TOP, false)));
    }

    #[test]
    fn crowded_labels_take_the_next_row_or_none() {
        let spans = [
            (0.0, 20.0),
            (10.0, 30.0),
            (12.0, 40.0),
            (20.0, 50.0),
            (60.0, 80.0),
        ];
        assert_eq!(
            place_labels(&spans, 3),
            [Some(0), Some(1), Some(2), None, Some(0)]
        );
        // One row: only labels that do not touch the previous one.
        assert_eq!(
            place_labels(&spans, 1),
            [Some(0), None, None, None, Some(0)]
        );
    }

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(700.0), 100.0);
        assert_eq!(nice_step(60.0), 10.0);
        assert_eq!(nice_step(330.0), 50.0);
    }
}
