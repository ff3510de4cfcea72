//! The run's chart as a self-contained SVG: offered load, the processor's measured total and
//! moving average (left axis, requests/s), desired and running replicas (right axis). Pure.

use std::fmt::Write as _;

use crate::score::Second;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Renders `seconds` with `title`; `target_rps` scales the replica axis (1 replica = target).
pub fn svg(title: &str, seconds: &[Second], target_rps: f64) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
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
    let y = |rps: f64| TOP + plot_h - rps / rps_max * plot_h;
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
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t}</text>"#,
            x(t),
            HEIGHT - BOTTOM + 18.0
        );
        t += t_step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">requests/s</text><text x="{}" y="{}" transform="rotate(90 {} {})" text-anchor="middle">replicas</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        WIDTH - 14.0,
        TOP + plot_h / 2.0,
        WIDTH - 14.0,
        TOP + plot_h / 2.0
    );
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
            "#d62728",
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
    for (index, (name, color, dash, value)) in series.iter().enumerate() {
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
        let lx = LEFT + 10.0 + index as f64 * 165.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{name}</text>"#,
            lx + 22.0,
            HEIGHT - 32.0 + 4.0 - 8.0,
            HEIGHT - 32.0 + 4.0 - 8.0,
            lx + 26.0,
            HEIGHT - 32.0 + 8.0 - 8.0
        );
    }
    out.push_str("</svg>\n");
    out
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

    #[test]
    fn a_run_renders_as_one_svg_with_every_series() {
        let seconds: Vec<Second> = (0..30)
            .map(|t| Second {
                t,
                offered_rps: 300.0,
                measured_rps: (t > 3).then_some(290.0),
                smoothed_rps: (t > 12).then_some(295.0),
                desired: 3,
                actual: if t > 5 { 3 } else { 1 },
                p99_ms: None,
            })
            .collect();
        let svg = svg("ramp <test>", &seconds, 100.0);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("ramp &lt;test&gt;"));
        assert_eq!(svg.matches("<path").count(), 5);
        for name in [
            "offered",
            "measured total",
            "moving average",
            "running replicas",
        ] {
            assert!(svg.contains(name));
        }
    }

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(700.0), 100.0);
        assert_eq!(nice_step(60.0), 10.0);
        assert_eq!(nice_step(330.0), 50.0);
    }
}
