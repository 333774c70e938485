//! The report's figures: values against weights remaining, one line per series, drawn with
//! plotters into SVG text that the HTML report inlines. Nothing here knows about HTML.
//!
//! The legend is drawn beside the plotting area, not inside it: the lines of these figures run
//! from the top left down to the right, and no corner is reliably free.

use super::weights_axis::WeightsAxis;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The report's column is about 1080 pixels wide; the figure fills it.
const WIDTH: u32 = 1080;
const HEIGHT: u32 = 440;
const FONT: &str = "sans-serif";

/// The legend's least width, so that plotting areas line up from figure to figure.
const LEGEND_WIDTH: u32 = 330;

/// A font size in pixels as plotters wants it: its SVG backend writes `size / 1.24`.
fn px(pixels: f64) -> f64 {
    pixels * 1.24
}

/// Okabe and Ito's palette, told apart by readers with any common colour-vision deficiency; the
/// yellow is left out as it barely shows on white.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Runs `$body` with `$make` bound to a function that builds the marker element centred on a
/// point. A macro rather than a boxed element: plotters draws series of boxed elements only when
/// they live for `'static`, and the SVG backend borrows the string it writes to.
macro_rules! with_marker {
    ($shape:expr, $colour:expr, |$make:ident| $body:expr) => {{
        let colour: RGBColor = $colour;
        let filled = colour.filled();
        match $shape {
            Marker::Circle => {
                let $make = |at| EmptyElement::at(at) + Circle::new((0, 0), 4, filled);
                $body
            }
            Marker::Triangle => {
                let $make = |at| EmptyElement::at(at) + TriangleMarker::new((0, 0), 5, filled);
                $body
            }
            Marker::Square => {
                let $make = |at| EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], filled);
                $body
            }
            Marker::Cross => {
                let $make = |at| EmptyElement::at(at) + Cross::new((0, 0), 4, colour.stroke_width(2));
                $body
            }
        }
    }};
}

#[derive(Clone, Debug)]
pub struct LinePlot {
    pub title: String,
    pub y_label: String,
    pub y_scale: YScale,
    pub lines: Vec<Line>,
    /// Shares the x axis spans besides the lines' own, so that every figure of a report has the
    /// same axis even when a metric starts at round 1.
    pub axis_shares: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum YScale {
    /// Shares in [0, 1] labelled as percentages (accuracy).
    Percent,
    /// Plain values; the bounds the metric can take, so padding never shows impossible values.
    Plain { min: f64, max: f64 },
}

#[derive(Clone, Debug)]
pub struct Line {
    pub label: String,
    /// Index into the palette; lines meant to be told apart get different ones.
    pub colour: usize,
    /// Baselines (random pruning, random concepts, uniform maps) are dashed.
    pub dashed: bool,
    pub marker: Marker,
    pub points: Vec<Point>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub weights_remaining: f64,
    pub value: f64,
    /// 95% interval over seeds, drawn as an error bar.
    pub interval: Option<[f64; 2]>,
}

impl LinePlot {
    /// Lines without points are dropped; a plot left with no point has nothing to show.
    pub fn has_points(&self) -> bool {
        self.lines.iter().any(|l| !l.points.is_empty())
    }

    /// The plot as one `<svg>` element.
    pub fn to_svg(&self) -> Result<String, String> {
        if !self.has_points() {
            return Err(format!("plot `{}` has no points", self.title));
        }
        let shares = self.lines.iter().flat_map(|l| &l.points).map(|p| p.weights_remaining).chain(self.axis_shares.iter().copied());
        let axis = WeightsAxis::spanning(shares).ok_or_else(|| format!("plot `{}` has no points", self.title))?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let legend_width = self.legend_width();
            let (plot_area, legend_area) = root.split_horizontally(WIDTH - legend_width);
            self.draw_chart(&plot_area, axis).map_err(|e| format!("plot `{}`: {e}", self.title))?;
            self.draw_legend(&legend_area).map_err(|e| format!("plot `{}` legend: {e}", self.title))?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    fn y_range(&self) -> (f64, f64) {
        let values = self.lines.iter().flat_map(|l| &l.points).flat_map(|p| {
            let [low, high] = p.interval.unwrap_or([p.value, p.value]);
            [p.value, low, high]
        });
        let (low, high) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (bound_low, bound_high) = match self.y_scale {
            YScale::Percent => (0.0, 1.0),
            YScale::Plain { min, max } => (min, max),
        };
        if !low.is_finite() {
            return (bound_low, bound_high);
        }
        // At least a tenth of the metric's range, so noise of a thousandth does not fill the plot.
        let least_span = (bound_high - bound_low) / 10.0;
        let centre = (low + high) / 2.0;
        let half = ((high - low).max(least_span) / 2.0) * 1.1;
        let (mut from, mut to) = (centre - half, centre + half);
        if from < bound_low {
            to = (to + bound_low - from).min(bound_high);
            from = bound_low;
        }
        if to > bound_high {
            from = (from - (to - bound_high)).max(bound_low);
            to = bound_high;
        }
        // A little room beyond, so that markers on a bound (a recall of 1) are drawn whole.
        let room = (to - from) * 0.03;
        (from - room, to + room)
    }

    fn draw_chart(&self, area: &DrawingArea<SVGBackend<'_>, Shift>, axis: WeightsAxis) -> Result<(), Box<dyn std::error::Error + '_>> {
        let (y_from, y_to) = self.y_range();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, px(18.0)))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(axis, y_from..y_to)?;
        let percent_label = |v: &f64| format!("{:.0}%", v * 100.0);
        let plain_label = |v: &f64| format!("{v:.2}");
        let y_labels: &dyn Fn(&f64) -> String = if self.y_scale == YScale::Percent { &percent_label } else { &plain_label };
        chart
            .configure_mesh()
            .x_desc("weights remaining (log scale)")
            .y_desc(self.y_label.as_str())
            .y_label_formatter(y_labels)
            .x_labels(12)
            .y_labels(8)
            .label_style((FONT, px(13.0)))
            .axis_desc_style((FONT, px(14.0)))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        for line in &self.lines {
            let colour = PALETTE[line.colour % PALETTE.len()];
            let points: Vec<(f64, f64)> = line.points.iter().map(|p| (p.weights_remaining, p.value)).collect();
            let style = colour.stroke_width(2);
            if line.dashed {
                chart.draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))?;
            } else {
                chart.draw_series(LineSeries::new(points.clone(), style))?;
            }
            chart.draw_series(line.points.iter().filter_map(|p| {
                let [low, high] = p.interval?;
                Some(ErrorBar::new_vertical(p.weights_remaining, low, p.value, high, colour.stroke_width(1), 8))
            }))?;
            with_marker!(line.marker, colour, |make| chart.draw_series(points.iter().map(|&p| make(p))).map(|_| ()))?;
        }
        Ok(())
    }

    fn legend_width(&self) -> u32 {
        let longest = self.lines.iter().map(|l| l.label.chars().count()).max().unwrap_or(0);
        // About 7 pixels a character at 13 px, after the sample line.
        let wanted = u32::try_from(56 + longest * 7).unwrap_or(u32::MAX);
        wanted.clamp(LEGEND_WIDTH, WIDTH / 2)
    }

    fn draw_legend(&self, area: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error + '_>> {
        let top = 60;
        let row = 24;
        for (index, line) in self.lines.iter().enumerate() {
            let y = top + row * index as i32;
            let colour = PALETTE[line.colour % PALETTE.len()];
            let sample = vec![(4, y), (40, y)];
            if line.dashed {
                area.draw(&DashedPathElement::new(sample, 8, 5, colour.stroke_width(2)))?;
            } else {
                area.draw(&PathElement::new(sample, colour.stroke_width(2)))?;
            }
            with_marker!(line.marker, colour, |make| area.draw(&make((22, y))))?;
            area.draw(&Text::new(line.label.clone(), (48, y), TextStyle::from((FONT, px(13.0))).pos(Pos::new(HPos::Left, VPos::Center))))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(label: &str, dashed: bool, points: &[(f64, f64)]) -> Line {
        Line {
            label: label.into(),
            colour: 0,
            dashed,
            marker: Marker::Circle,
            points: points.iter().map(|&(w, v)| Point { weights_remaining: w, value: v, interval: None }).collect(),
        }
    }

    #[test]
    fn the_svg_has_axes_labels_legend_and_one_marker_per_point() {
        let plot = LinePlot {
            title: "Accuracy <tickets>".into(),
            y_label: "test accuracy".into(),
            y_scale: YScale::Percent,
            axis_shares: vec![],
            lines: vec![
                line("imp & co", false, &[(1.0, 0.97), (0.6, 0.95), (0.36, 0.9)]),
                line("random", true, &[(1.0, 0.97), (0.6, 0.8)]),
            ],
        };
        let svg = plot.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("weights remaining (log scale)"));
        assert!(svg.contains("test accuracy"));
        // Text is escaped by the backend, so a title cannot break the page.
        assert!(svg.contains("Accuracy &lt;tickets&gt;"));
        assert!(svg.contains("imp &amp; co"));
        // Tick labels name the rounds' shares.
        for tick in ["100%", "60%", "36%"] {
            assert!(svg.contains(&format!(">\n{tick}\n<")) || svg.contains(&format!(">{tick}<")), "no tick {tick}");
        }
        // Five data points and two legend samples, all circles.
        assert_eq!(svg.matches("<circle").count(), 7);
        // The dashed baseline is drawn as separate dash segments, the solid line as one polyline.
        assert!(svg.matches("<polyline").count() > 3);
    }

    #[test]
    fn intervals_are_error_bars_and_stretch_the_y_range() {
        let mut plot = LinePlot {
            title: "t".into(),
            y_label: "y".into(),
            y_scale: YScale::Plain { min: -1.0, max: 1.0 },
            lines: vec![line("a", false, &[(1.0, 0.5), (0.5, 0.55)])],
            axis_shares: vec![],
        };
        let narrow = plot.y_range();
        // Spread 0.05 is widened to a tenth of the metric's range (0.2), times 1.1, plus 3% room.
        assert!((narrow.1 - narrow.0 - 0.22 * 1.06).abs() < 1e-12, "{narrow:?}");
        plot.lines[0].points[1].interval = Some([0.1, 0.9]);
        let wide = plot.y_range();
        assert!(wide.0 < 0.1 && wide.1 > 0.9, "{wide:?}");
        let without = plot.to_svg().unwrap();
        plot.lines[0].points[0].interval = Some([0.4, 0.6]);
        let with = plot.to_svg().unwrap();
        assert!(
            with.matches("<line").count() + with.matches("<polyline").count()
                > without.matches("<line").count() + without.matches("<polyline").count()
        );
    }

    #[test]
    fn the_y_range_stops_at_the_metric_bounds_but_for_room_for_markers() {
        let plot = LinePlot {
            title: "t".into(),
            y_label: "y".into(),
            y_scale: YScale::Percent,
            lines: vec![line("a", false, &[(1.0, 0.99), (0.5, 1.0)])],
            axis_shares: vec![],
        };
        let (from, to) = plot.y_range();
        // 0.995 ± 0.055 is pushed down below 1 to [0.89, 1], then 3% of 0.11 added either side.
        assert!((to - 1.0033).abs() < 1e-9, "{to}");
        assert!((from - 0.8867).abs() < 1e-9, "{from}");
    }

    #[test]
    fn a_plot_without_points_is_an_error_not_an_empty_figure() {
        let plot = LinePlot {
            title: "empty".into(),
            y_label: "y".into(),
            y_scale: YScale::Percent,
            lines: vec![line("a", false, &[])],
            axis_shares: vec![1.0],
        };
        assert!(!plot.has_points());
        assert!(plot.to_svg().unwrap_err().contains("empty"));
    }
}
