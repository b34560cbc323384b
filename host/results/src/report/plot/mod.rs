//! The QPS–recall plot, drawn once with plotters and written as SVG (also
//! inlined into `index.html`) and as PNG. The PNG's text is drawn with an
//! embedded DejaVu Sans font (see `assets/DejaVuSans-LICENSE.txt`), so no
//! system font or fontconfig is needed.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::ReportData;
use super::cells::fmt_qps;
use crate::model::Status;
use crate::reward::{BAND_HIGH, BAND_LOW};

mod axis;

use axis::RecallCoord;
pub use axis::{LOGIT_TOP, RecallAxis};

/// The font embedded for plot text (DejaVu Sans 2.37, Bitstream Vera licence).
static FONT_TTF: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
/// Font family name the plots use; the embedded font is registered under it.
const FONT: &str = "sans-serif";
/// Plot size in pixels (SVG and PNG).
pub(super) const PLOT_SIZE: (u32, u32) = (1000, 640);

/// Distinct colours for the variants' curves (the "tab10" palette).
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Colour of the shaded reward band.
const BAND_COLOR: RGBColor = RGBColor(255, 190, 60);

/// Registers the embedded font with plotters (once per process).
fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_TTF).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded DejaVu Sans font could not be parsed"))
    }
}

/// The error of a failed drawing operation.
fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the QPS-recall plot: {e}")
}

/// What the plot shows of one leaderboard row.
struct Curve {
    /// Variant name.
    name: String,
    /// Reward or status, under the name in the legend.
    note: String,
    /// The (recall, QPS) frontier of the build set the leaderboard shows.
    frontier: Vec<(f64, f64)>,
}

/// One curve per leaderboard row, rank order.
fn curves(data: &ReportData) -> Vec<Curve> {
    data.variants
        .iter()
        .map(|v| {
            let frontier: Vec<(f64, f64)> = v
                .shown_build()
                .map(|b| {
                    b.summary
                        .frontier
                        .iter()
                        .map(|p| (p.recall, p.qps))
                        .collect()
                })
                .unwrap_or_default();
            let note = if v.row.status != Status::Ok {
                v.row.status.to_string()
            } else if frontier.is_empty() {
                "no valid points".to_string()
            } else {
                format!("reward {}", fmt_qps(v.row.reward))
            };
            Curve {
                name: v.row.variant_name.clone(),
                note,
                frontier,
            }
        })
        .collect()
}

/// Width of the legend panel right of the chart, pixels.
const LEGEND_WIDTH: u32 = 250;

/// `s` cut to `max` characters, an ellipsis marking the cut.
fn truncate_label(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Draws marker number `shape` (circle, triangle, cross) at `at`.
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    shape: usize,
    at: CT::From,
    color: RGBColor,
) -> anyhow::Result<()> {
    match shape {
        0 => area.draw(&Circle::new(at, 4, color.filled())),
        1 => area.draw(&TriangleMarker::new(at, 5, color.filled())),
        _ => area.draw(&Cross::new(at, 4, color.stroke_width(2))),
    }
    .map_err(plot_err)
}

/// Draws the whole plot on `root`: the chart of the curves left, the legend
/// panel right.
fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &ReportData,
    axis: RecallAxis,
) -> anyhow::Result<()> {
    ensure_font()?;
    root.fill(&WHITE).map_err(plot_err)?;
    let curves = curves(data);
    let (min_recall, y_low, y_high) = extent(&curves);
    let x = RecallCoord::new(axis, min_recall);

    let scope = &data.scope;
    let title = format!(
        "QPS vs recall: {} (k={}, {})",
        scope.dataset_name,
        scope.config.k,
        scope.config.mode.label()
    );
    let root = root
        .margin(10, 4, 4, 10)
        .titled(&title, (FONT, 22))
        .map_err(plot_err)?;
    let (width, _) = root.dim_in_pixel();
    let (plot_area, legend_area) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x.clone(), (y_low..y_high).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("Recall@{}{}", scope.config.k, x.description()))
        .y_desc("Queries per second (log scale)")
        .x_label_formatter(&|r| x.label(*r))
        .y_label_formatter(&|y| fmt_qps(*y))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(plot_err)?;

    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(BAND_LOW, y_low), (BAND_HIGH, y_high)],
            BAND_COLOR.mix(0.15).filled(),
        )))
        .map_err(plot_err)?;
    draw_curves(chart.plotting_area(), &curves)?;
    draw_legend(&legend_area, &curves)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// The lowest recall of the curves, and the QPS axis: whole decades around
/// their QPS (1 to 1000 when nothing is plotted), so the log axis always
/// carries labelled ticks.
fn extent(curves: &[Curve]) -> (f64, f64, f64) {
    let all = curves.iter().flat_map(|c| c.frontier.iter().copied());
    let (mut min_recall, mut min_qps, mut max_qps) = (1.0_f64, f64::INFINITY, 0.0_f64);
    for (r, q) in all {
        min_recall = min_recall.min(r);
        min_qps = min_qps.min(q);
        max_qps = max_qps.max(q);
    }
    let (y_low, y_high) = if max_qps > 0.0 {
        (
            10f64.powf((min_qps / 1.2).log10().floor()),
            10f64.powf((max_qps * 1.2).log10().ceil()),
        )
    } else {
        (1.0, 1000.0)
    };
    (min_recall, y_low, y_high)
}

/// Each curve's frontier as a line with markers.
fn draw_curves<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    plotting: &DrawingArea<DB, CT>,
    curves: &[Curve],
) -> anyhow::Result<()> {
    for (i, curve) in curves
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.frontier.is_empty())
    {
        let color = PALETTE[i % PALETTE.len()];
        let shape = (i / PALETTE.len()) % 3;
        plotting
            .draw(&PathElement::new(
                curve.frontier.clone(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?;
        for &p in &curve.frontier {
            draw_marker(plotting, shape, p, color)?;
        }
    }
    Ok(())
}

/// The legend panel: the band, then one entry per leaderboard row in rank
/// order.
fn draw_legend<DB: DrawingBackend>(
    legend_area: &DrawingArea<DB, Shift>,
    curves: &[Curve],
) -> anyhow::Result<()> {
    let text = (FONT, 14).into_font();
    let small = (FONT, 12).into_font().color(&RGBColor(90, 90, 90));
    let mut y = 28;
    legend_area
        .draw(&Rectangle::new(
            [(10, y - 7), (34, y + 7)],
            BAND_COLOR.mix(0.4).filled(),
        ))
        .map_err(plot_err)?;
    legend_area
        .draw(&Text::new(
            format!("reward band {BAND_LOW:.2}-{BAND_HIGH:.2}"),
            (42, y - 8),
            text.clone(),
        ))
        .map_err(plot_err)?;
    y += 34;
    for (i, curve) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if curve.frontier.is_empty() {
            legend_area
                .draw(&Text::new(
                    "—",
                    (14, y - 8),
                    text.clone().color(&RGBColor(150, 150, 150)),
                ))
                .map_err(plot_err)?;
        } else {
            legend_area
                .draw(&PathElement::new(
                    vec![(10, y), (34, y)],
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?;
            draw_marker(legend_area, (i / PALETTE.len()) % 3, (22, y), color)?;
        }
        legend_area
            .draw(&Text::new(
                truncate_label(&curve.name, 26),
                (42, y - 9),
                text.clone(),
            ))
            .map_err(plot_err)?;
        legend_area
            .draw(&Text::new(
                truncate_label(&curve.note, 30),
                (42, y + 8),
                small.clone(),
            ))
            .map_err(plot_err)?;
        y += 40;
    }
    Ok(())
}

/// The QPS–recall plot as an SVG document: each variant's Pareto frontier
/// (of the build set shown in the leaderboard) as a line with markers, QPS on
/// a log scale, recall on `axis`, the reward band shaded, a title with
/// dataset and k, and a legend panel listing every leaderboard row in rank
/// order (variants without valid points, e.g. failed ones, are listed with
/// their status, not drawn).
pub fn svg_plot(data: &ReportData, axis: RecallAxis) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        draw_chart(&root, data, axis)?;
    }
    Ok(svg)
}

/// The same plot as [`svg_plot`], written as a PNG file to `path`.
pub fn png_plot(data: &ReportData, path: &Path, axis: RecallAxis) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    draw_chart(&root, data, axis).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::populated;
    use crate::report::write_reports;
    use std::fs;

    #[test]
    fn the_plot_draws_either_recall_axis_with_the_band_shaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(dir.path());
        let data = ReportData::collect(&store, "synthetic").unwrap();
        let band = |svg: &str| {
            let c = RGBColor(255, 190, 60);
            svg.matches(&format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2))
                .count()
        };
        // The texts of an SVG document.
        let texts = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .skip(1)
                .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
                .map(str::to_owned)
                .collect()
        };
        let logit = svg_plot(&data, RecallAxis::Logit).unwrap();
        let labels = texts(&logit);
        for label in ["0.9", "0.99", "0.999"] {
            assert!(labels.iter().any(|t| t == label), "{label} in {labels:?}");
        }
        assert!(
            labels.iter().any(|t| t.contains("logit scale")),
            "{labels:?}"
        );
        assert!(band(&logit) >= 2, "the band and its legend swatch");
        let linear = svg_plot(&data, RecallAxis::Linear).unwrap();
        let labels = texts(&linear);
        assert!(labels.iter().any(|t| t == "0.90"), "{labels:?}");
        assert!(!labels.iter().any(|t| t.contains("logit")), "{labels:?}");
        assert!(band(&linear) >= 2);
        assert_eq!(
            write_reports(&store, "synthetic", &dir.path().join("out"))
                .map(|files| fs::read_to_string(files.svg).unwrap())
                .unwrap(),
            logit,
            "the reports draw the logit axis"
        );
    }
}
