//! The report's charts: inline SVG bar charts with accessible titles, no script, no font or
//! asset from outside the page.

use std::fmt::Write as _;

use quick_xml::escape::escape;

/// Drawing area of every chart, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for value labels above and category labels below the bars.
const TOP: f64 = 24.0;
const BOTTOM: f64 = 44.0;
const LEFT: f64 = 8.0;

/// One bar.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) value: usize,
    /// Drawn in the warning colour (keys past their cryptoperiod, compromised keys).
    pub(super) alert: bool,
}

/// A bar chart as an `<svg>` element. `id` makes its title and description referable;
/// `marker` draws a vertical line before bar `index` labelled `text` (the cryptoperiod).
pub(super) fn bar_chart(
    id: &str,
    title: &str,
    description: &str,
    bars: &[Bar],
    marker: Option<(usize, &str)>,
) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" class=\"chart\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(description)
    );
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let slot = (WIDTH - 2.0 * LEFT) / bars.len().max(1) as f64;
    let bar_width = (slot * 0.7).max(1.0);
    let plot = HEIGHT - TOP - BOTTOM;
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"axis\"/>",
        y = HEIGHT - BOTTOM,
        x2 = WIDTH - LEFT
    );
    let small = bars.len() > 12;
    for (i, bar) in bars.iter().enumerate() {
        let height = plot * bar.value as f64 / max;
        let x = LEFT + slot * i as f64 + (slot - bar_width) / 2.0;
        let y = HEIGHT - BOTTOM - height;
        let class = if bar.alert { "bar alert" } else { "bar" };
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_width:.1}\" height=\"{height:.1}\" \
             class=\"{class}\"><title>{}: {}</title></rect>",
            escape(&bar.label),
            bar.value
        );
        let centre = x + bar_width / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{centre:.1}\" y=\"{:.1}\" class=\"value\">{}</text>",
            y - 4.0,
            bar.value
        );
        let label_y = HEIGHT - BOTTOM + 14.0;
        if small {
            let _ = write!(
                svg,
                "<text x=\"{centre:.1}\" y=\"{label_y:.1}\" class=\"label small\" \
                 transform=\"rotate(35 {centre:.1} {label_y:.1})\">{}</text>",
                escape(&bar.label)
            );
        } else {
            let _ = write!(
                svg,
                "<text x=\"{centre:.1}\" y=\"{label_y:.1}\" class=\"label\">{}</text>",
                escape(&bar.label)
            );
        }
    }
    if let Some((index, text)) = marker {
        let x = LEFT + slot * index as f64;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"marker\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"marker-label\">{}</text>",
            HEIGHT - BOTTOM,
            x + 4.0,
            TOP - 8.0,
            escape(text)
        );
    }
    svg.push_str("</svg>");
    svg
}
