//! Line plots: loss curves, predictions with spread bands, shaded regions.

use super::axis::Scale;
use super::canvas::Canvas;
pub use super::chart::LegendPos;
use super::chart::{
    choose_legend, clip_polygon, clip_polyline, draw_marker, outside_legend_width, pixel_runs, place_legend, Decor,
    Frame, LegendEntry, Obstacle, Swatch,
};
use super::{impl_plot, Rgb, OKABE_ITO};
use crate::error::{Error, Result};

/// Line pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dash {
    #[default]
    Solid,
    Dashed,
    Dotted,
}

/// Point marker drawn at every data point of a series (or every point of a scatter plot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Marker {
    /// Filled circle, radius ~4 px.
    #[default]
    Circle,
    /// Filled square, ~7 px.
    Square,
    /// Small filled circle, radius ~2.5 px (for dense scatter plots).
    Dot,
}

/// A named line series `(xs, ys)` with its style. NaN and infinite values are skipped and
/// break the line (as in matplotlib).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    name: String,
    xs: Vec<f64>,
    ys: Vec<f64>,
    color: Option<Rgb>,
    dash: Dash,
    marker: Option<Marker>,
    width: f64,
}

impl Series {
    /// A solid line with the next palette colour. `xs` and `ys` must have the same length
    /// (checked when rendering).
    pub fn new(name: impl Into<String>, xs: &[f64], ys: &[f64]) -> Self {
        Series {
            name: name.into(),
            xs: xs.to_vec(),
            ys: ys.to_vec(),
            color: None,
            dash: Dash::Solid,
            marker: None,
            width: 2.2,
        }
    }
    /// Explicit colour instead of the next one from the Okabe–Ito palette.
    pub fn color(mut self, c: Rgb) -> Self {
        self.color = Some(c);
        self
    }
    /// Dashed line.
    pub fn dashed(self) -> Self {
        self.dash(Dash::Dashed)
    }
    /// Dotted line.
    pub fn dotted(self) -> Self {
        self.dash(Dash::Dotted)
    }
    pub fn dash(mut self, d: Dash) -> Self {
        self.dash = d;
        self
    }
    /// Circle markers at the data points.
    pub fn markers(self) -> Self {
        self.marker(Marker::Circle)
    }
    pub fn marker(mut self, m: Marker) -> Self {
        self.marker = Some(m);
        self
    }
    /// Line width in pixels (default 2.2; values are clamped to [0.5, 12]).
    pub fn width(mut self, w: f64) -> Self {
        self.width = if w.is_finite() { w.clamp(0.5, 12.0) } else { 2.2 };
        self
    }
}

/// A shaded band between `lo` and `hi` over `xs` (e.g. the spread of predictions over seeds),
/// drawn semi-transparent. Points with a NaN/infinite bound split the band.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    name: String,
    xs: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    color: Option<Rgb>,
    alpha: f64,
}

impl Band {
    /// A band coloured like the line series added just before it (or the next palette
    /// colour when there is none), opacity 0.25.
    pub fn new(name: impl Into<String>, xs: &[f64], lo: &[f64], hi: &[f64]) -> Self {
        Band { name: name.into(), xs: xs.to_vec(), lo: lo.to_vec(), hi: hi.to_vec(), color: None, alpha: 0.25 }
    }
    pub fn color(mut self, c: Rgb) -> Self {
        self.color = Some(c);
        self
    }
    /// Opacity in (0, 1].
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = if a.is_finite() { a.clamp(0.02, 1.0) } else { 0.25 };
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Line(Series),
    Band(Band),
    Span { x0: f64, x1: f64, label: String, color: Rgb, alpha: f64 },
    VLine { x: f64, label: String, color: Rgb },
    HLine { y: f64, label: String, color: Rgb },
}

/// A line plot (builder). Rendered by [`LinePlot::to_svg`], [`LinePlot::to_png`] and
/// [`LinePlot::write`]; default size 900 x 560 px.
///
/// ```
/// use memcell::report::{LinePlot, Series, Band, Rgb};
/// let x: Vec<f64> = (1..=20).map(|i| 2.0 * i as f64).collect();
/// let y: Vec<f64> = x.iter().map(|x| 100.0 / x).collect();
/// let lo: Vec<f64> = y.iter().map(|y| y * 0.9).collect();
/// let hi: Vec<f64> = y.iter().map(|y| y * 1.1).collect();
/// let plot = LinePlot::new()
///     .title("Prediction")
///     .x_label("t")
///     .y_label("signal")
///     .x_span(2.0, 24.0, "training region")
///     .line("truth", &x, &y)
///     .series(Series::new("prediction", &x, &y).dashed())
///     .band("spread over seeds", &x, &lo, &hi)
///     .vline(24.0, "end of training");
/// let svg = plot.to_svg().unwrap();
/// assert!(svg.contains("prediction"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    log_y: bool,
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    size: (u32, u32),
    legend: LegendPos,
    items: Vec<Item>,
}

impl Default for LinePlot {
    fn default() -> Self {
        LinePlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: false,
            log_y: false,
            x_range: None,
            y_range: None,
            size: (900, 560),
            legend: LegendPos::Auto,
            items: Vec::new(),
        }
    }
}

/// Smallest and largest accepted canvas sides in pixels.
pub(crate) const MIN_SIDE: u32 = 200;
pub(crate) const MAX_SIDE: u32 = 8000;

pub(crate) fn check_size(size: (u32, u32)) -> Result<()> {
    let ok = |v: u32| (MIN_SIDE..=MAX_SIDE).contains(&v);
    if ok(size.0) && ok(size.1) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "figure size {}x{} px: each side must be in {MIN_SIDE}..={MAX_SIDE}",
            size.0, size.1
        )))
    }
}

pub(crate) fn check_range(what: &str, r: Option<(f64, f64)>, log: bool) -> Result<()> {
    if let Some((a, b)) = r {
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(Error::config(format!("{what} ({a}, {b}): need finite lo < hi")));
        }
        if log && a <= 0.0 {
            return Err(Error::config(format!("{what} ({a}, {b}): a log axis needs lo > 0")));
        }
    }
    Ok(())
}

impl LinePlot {
    /// An empty plot, 900 x 560 px, legend placed automatically.
    pub fn new() -> Self {
        Self::default()
    }
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = t.into();
        self
    }
    pub fn x_label(mut self, t: impl Into<String>) -> Self {
        self.x_label = t.into();
        self
    }
    pub fn y_label(mut self, t: impl Into<String>) -> Self {
        self.y_label = t.into();
        self
    }
    /// Log-scale y axis (decade ticks labelled `1e-5`). Non-positive values are skipped; with
    /// no positive value at all the axis stays linear.
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    /// Log-scale x axis (same rules as [`LinePlot::log_y`]).
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }
    /// Fixed x limits instead of the data range plus 5%. Data outside is clipped.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// Fixed y limits instead of the data range plus 5%. Data outside is clipped.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Canvas size in pixels (default 900 x 560).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
    /// Legend placement (default [`LegendPos::Auto`]).
    pub fn legend(mut self, pos: LegendPos) -> Self {
        self.legend = pos;
        self
    }
    /// Adds a solid line with the next palette colour.
    pub fn line(self, name: impl Into<String>, xs: &[f64], ys: &[f64]) -> Self {
        self.series(Series::new(name, xs, ys))
    }
    /// Adds a styled line series.
    pub fn series(mut self, s: Series) -> Self {
        self.items.push(Item::Line(s));
        self
    }
    /// Adds a shaded band coloured like the previous line series.
    pub fn band(self, name: impl Into<String>, xs: &[f64], lo: &[f64], hi: &[f64]) -> Self {
        self.add_band(Band::new(name, xs, lo, hi))
    }
    /// Adds a styled band.
    pub fn add_band(mut self, b: Band) -> Self {
        self.items.push(Item::Band(b));
        self
    }
    /// Shades x in [x0, x1] over the full height, light red (matplotlib's
    /// `axvspan(x0, x1, alpha=0.25, color='red')`), e.g. the training region.
    pub fn x_span(self, x0: f64, x1: f64, label: impl Into<String>) -> Self {
        self.x_span_color(x0, x1, label, Rgb::RED, 0.25)
    }
    /// [`LinePlot::x_span`] with a colour and opacity.
    pub fn x_span_color(mut self, x0: f64, x1: f64, label: impl Into<String>, color: Rgb, alpha: f64) -> Self {
        let alpha = if alpha.is_finite() { alpha.clamp(0.02, 1.0) } else { 0.25 };
        self.items.push(Item::Span { x0, x1, label: label.into(), color, alpha });
        self
    }
    /// A dashed gray vertical line at `x`; a non-empty label gets a legend entry.
    pub fn vline(mut self, x: f64, label: impl Into<String>) -> Self {
        self.items.push(Item::VLine { x, label: label.into(), color: Rgb(85, 85, 85) });
        self
    }
    /// A dashed gray horizontal line at `y`; a non-empty label gets a legend entry.
    pub fn hline(mut self, y: f64, label: impl Into<String>) -> Self {
        self.items.push(Item::HLine { y, label: label.into(), color: Rgb(85, 85, 85) });
        self
    }

    fn canvas_size(&self) -> Result<(u32, u32)> {
        check_size(self.size)?;
        Ok(self.size)
    }

    fn validate(&self) -> Result<()> {
        check_range("x_range", self.x_range, self.log_x)?;
        check_range("y_range", self.y_range, self.log_y)?;
        for it in &self.items {
            match it {
                Item::Line(s) if s.xs.len() != s.ys.len() => {
                    return Err(Error::data(format!(
                        "line series {:?}: {} x values but {} y values",
                        s.name,
                        s.xs.len(),
                        s.ys.len()
                    )))
                }
                Item::Band(b) if b.xs.len() != b.lo.len() || b.xs.len() != b.hi.len() => {
                    return Err(Error::data(format!(
                        "band {:?}: {} x values, {} lower and {} upper bounds",
                        b.name,
                        b.xs.len(),
                        b.lo.len(),
                        b.hi.len()
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The colour of each item (lines from the palette, bands like the previous line).
    fn colors(&self) -> Vec<Rgb> {
        let mut next = 0usize;
        let mut last_line: Option<Rgb> = None;
        let take = |next: &mut usize| {
            let c = OKABE_ITO[*next % OKABE_ITO.len()];
            *next += 1;
            c
        };
        self.items
            .iter()
            .map(|it| match it {
                Item::Line(s) => {
                    let c = s.color.unwrap_or_else(|| take(&mut next));
                    last_line = Some(c);
                    c
                }
                Item::Band(b) => b.color.or(last_line).unwrap_or_else(|| take(&mut next)),
                Item::Span { color, .. } | Item::VLine { color, .. } | Item::HLine { color, .. } => *color,
            })
            .collect()
    }

    fn scales(&self) -> (Scale, Scale) {
        let ux = |v: f64| Scale::usable(self.log_x, v);
        let uy = |v: f64| Scale::usable(self.log_y, v);
        let (mut xv, mut yv) = (Vec::new(), Vec::new());
        for it in &self.items {
            match it {
                Item::Line(s) => {
                    for (&x, &y) in s.xs.iter().zip(&s.ys) {
                        if ux(x) && uy(y) {
                            xv.push(x);
                            yv.push(y);
                        }
                    }
                }
                Item::Band(b) => {
                    for ((&x, &lo), &hi) in b.xs.iter().zip(&b.lo).zip(&b.hi) {
                        if ux(x) && (uy(lo) || uy(hi)) {
                            xv.push(x);
                            yv.extend([lo, hi].into_iter().filter(|v| uy(*v)));
                        }
                    }
                }
                Item::Span { x0, x1, .. } => xv.extend([*x0, *x1].into_iter().filter(|v| ux(*v))),
                Item::VLine { x, .. } if ux(*x) => xv.push(*x),
                Item::HLine { y, .. } if uy(*y) => yv.push(*y),
                _ => {}
            }
        }
        // A plot with only a log axis fallback: decide log from all data of that axis.
        let xs = Scale::auto(&xv, self.log_x, self.x_range);
        let mut ys = Scale::auto(&yv, self.log_y, self.y_range);
        if self.log_y && !ys.log {
            // No positive y at all: linear over every finite y.
            let all: Vec<f64> = self
                .items
                .iter()
                .flat_map(|it| match it {
                    Item::Line(s) => s.ys.clone(),
                    Item::Band(b) => b.lo.iter().chain(&b.hi).copied().collect(),
                    Item::HLine { y, .. } => vec![*y],
                    _ => vec![],
                })
                .collect();
            ys = Scale::auto(&all, false, None);
        }
        (xs, ys)
    }

    fn decor(&self, right_extra: f64) -> Decor<'_> {
        Decor {
            width: self.size.0 as f64,
            height: self.size.1 as f64,
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            right_extra,
        }
    }

    fn legend_entries(&self, colors: &[Rgb]) -> Vec<LegendEntry> {
        let mut out = Vec::new();
        for (it, &color) in self.items.iter().zip(colors) {
            let (label, swatch) = match it {
                Item::Line(s) => (&s.name, Swatch::Line { color, width: s.width, dash: s.dash, marker: s.marker }),
                Item::Band(b) => (&b.name, Swatch::Patch { color, alpha: b.alpha }),
                Item::Span { label, alpha, .. } => (label, Swatch::Patch { color, alpha: *alpha }),
                Item::VLine { label, .. } | Item::HLine { label, .. } => {
                    (label, Swatch::Line { color, width: 1.6, dash: Dash::Dashed, marker: None })
                }
            };
            if !label.is_empty() {
                out.push(LegendEntry { label: label.clone(), swatch });
            }
        }
        out
    }

    /// Band polygons in pixels (one per run of drawable points).
    fn band_polygons(f: &Frame, b: &Band) -> Vec<Vec<(f64, f64)>> {
        // On a log axis a non-positive lower bound means "down to the bottom edge".
        let below = f.bottom + 2.0;
        let mut polys = Vec::new();
        let mut run: Vec<(f64, f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64, f64)>| {
            if run.len() >= 2 {
                let mut poly: Vec<(f64, f64)> = run.iter().map(|&(x, a, _)| (x, a)).collect();
                poly.extend(run.iter().rev().map(|&(x, _, b)| (x, b)));
                polys.push(poly);
            }
            run.clear();
        };
        for ((&x, &lo), &hi) in b.xs.iter().zip(&b.lo).zip(&b.hi) {
            let px = f.px_x(x);
            let map = |v: f64| -> Option<f64> {
                match f.px_y(v) {
                    Some(p) => Some(p),
                    None if f.ys.log && v.is_finite() && v <= 0.0 => Some(below),
                    None => None,
                }
            };
            match (px, map(lo), map(hi)) {
                (Some(x), Some(a), Some(b)) => run.push((x, a.min(b), a.max(b))),
                _ => flush(&mut run),
            }
        }
        flush(&mut run);
        polys
    }

    fn render(&self, c: &mut dyn Canvas) -> Result<()> {
        self.validate()?;
        let colors = self.colors();
        let (xs, ys) = self.scales();
        let entries = self.legend_entries(&colors);

        let mut f = Frame::layout(&self.decor(0.0), xs, ys);
        let obstacles = self.obstacles(&f);
        let legend = choose_legend(self.legend, &entries, &f, &obstacles);
        let right_extra = match legend {
            Some((true, _)) => outside_legend_width(&entries),
            _ => 0.0,
        };
        let decor = self.decor(right_extra);
        if right_extra > 0.0 {
            f = Frame::layout(&decor, xs, ys);
        }
        let rect = f.rect();

        f.draw_grid(c);
        let mut drew_data = false;
        // Spans below everything, then bands, reference lines, data lines.
        for (it, &color) in self.items.iter().zip(&colors) {
            if let Item::Span { x0, x1, alpha, .. } = it {
                let clampx = |v: f64| match f.px_x(v) {
                    Some(p) => Some(p.clamp(f.left, f.right)),
                    None if f.xs.log && v.is_finite() && v <= 0.0 => Some(f.left),
                    None => None,
                };
                if let (Some(a), Some(b)) = (clampx(*x0), clampx(*x1)) {
                    if (a - b).abs() > 0.0 {
                        c.fill_rect(a.min(b), f.top, a.max(b), f.bottom, color, *alpha);
                    }
                }
            }
        }
        for (it, &color) in self.items.iter().zip(&colors) {
            if let Item::Band(b) = it {
                for poly in Self::band_polygons(&f, b) {
                    let clipped = clip_polygon(&poly, &rect);
                    if clipped.len() >= 3 {
                        c.polygon(&clipped, color, b.alpha);
                        drew_data = true;
                    }
                }
            }
        }
        for (it, &color) in self.items.iter().zip(&colors) {
            match it {
                Item::VLine { x, .. } => {
                    if let Some(px) = f.px_x(*x).filter(|p| (f.left..=f.right).contains(p)) {
                        c.polyline(&[(px, f.top), (px, f.bottom)], color, 1.6, Dash::Dashed);
                    }
                }
                Item::HLine { y, .. } => {
                    if let Some(py) = f.px_y(*y).filter(|p| (f.top..=f.bottom).contains(p)) {
                        c.polyline(&[(f.left, py), (f.right, py)], color, 1.6, Dash::Dashed);
                    }
                }
                _ => {}
            }
        }
        for (it, &color) in self.items.iter().zip(&colors) {
            if let Item::Line(s) = it {
                for run in pixel_runs(&f, &s.xs, &s.ys) {
                    for piece in clip_polyline(&run, &rect) {
                        c.polyline(&piece, color, s.width, s.dash);
                        drew_data = true;
                    }
                    if let Some(m) = s.marker {
                        for &(x, y) in run.iter().filter(|p| rect.contains(**p)) {
                            draw_marker(c, m, x, y, color, 1.0);
                        }
                    }
                }
            }
        }
        if !drew_data {
            f.draw_no_data(c);
        }
        f.draw_axes(c, &decor);
        if let Some((_, pos)) = legend {
            place_legend(c, &entries, &f, pos);
        }
        Ok(())
    }

    fn obstacles(&self, f: &Frame) -> Vec<Obstacle> {
        let mut out = Vec::new();
        for it in &self.items {
            match it {
                Item::Line(s) => out.extend(pixel_runs(f, &s.xs, &s.ys).into_iter().map(Obstacle::Path)),
                Item::Band(b) => out.extend(Self::band_polygons(f, b).into_iter().map(Obstacle::Area)),
                Item::VLine { x, .. } => {
                    if let Some(px) = f.px_x(*x) {
                        out.push(Obstacle::Path(vec![(px, f.top), (px, f.bottom)]));
                    }
                }
                Item::HLine { y, .. } => {
                    if let Some(py) = f.px_y(*y) {
                        out.push(Obstacle::Path(vec![(f.left, py), (f.right, py)]));
                    }
                }
                Item::Span { .. } => {}
            }
        }
        out
    }
}

impl_plot!(LinePlot);
