//! `imagegrid sizes --plot FILE.svg`: size over time, one line per cell, as an SVG picture.

use plotters::prelude::*;

use crate::store::BuildRecord;

/// Draw every cell's successful build sizes over time into an SVG file.
/// Why a plot was not drawn: nothing to plot, or the SVG could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(pub String);

/// Draw every cell's successful build sizes over time into an SVG file; returns the number
/// of points drawn.
pub fn size_over_time(path: &std::path::Path, history: &[BuildRecord]) -> Result<usize, PlotError> {
    size_over_time_text(path, history).map_err(PlotError)
}

fn size_over_time_text(path: &std::path::Path, history: &[BuildRecord]) -> Result<usize, String> {
    let mut series: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    let t0 = history.iter().filter_map(|r| parse(&r.started_at)).min();
    let Some(t0) = t0 else {
        return Err("no successful build with a size to plot".into());
    };
    for r in history {
        if let (Some(t), Some(size)) = (parse(&r.started_at), r.size) {
            series
                .entry(&r.cell)
                .or_default()
                .push(((t - t0).as_seconds_f64() / 3600.0, size as f64 / 1e6));
        }
    }
    let max_x = series
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .max(1e-3);
    let max_y = series
        .values()
        .flatten()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let height = 480 + 18 * series.len().min(40) as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("image size over time (hours since {})", t0.date()),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x * 1.02, 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("MB (uncompressed)")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (cell, points)) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*cell)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(series.len())
}
