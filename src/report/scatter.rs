//! Scatter plots coloured by a continuous value (with a colour bar) or by class label.

use super::axis::Scale;
use super::canvas::{Canvas, HAlign, TextStyle, VAlign};
use super::chart::{
    choose_legend, draw_marker, outside_legend_width, place_legend, Decor, Frame, LegendEntry, LegendPos, Obstacle,
    Swatch, LABEL_PX, TEXT_COLOR, TICK_PX,
};
use super::font::text_width;
use super::line::{check_range, check_size, Marker};
use super::{impl_plot, viridis, Rgb, OKABE_ITO, TABLEAU10};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Coloring {
    Single(Rgb),
    Values { values: Vec<f64>, label: String, range: Option<(f64, f64)> },
    Classes { classes: Vec<i64>, names: Vec<String> },
}

/// A scatter plot (builder): points `(xs, ys)` in one colour, coloured by a continuous value
/// (viridis, with a colour bar), or by an integer class label (Tableau 10, with a legend;
/// classes 0-9 always get the same colours, so digit 3 is red in every figure).
///
/// Points with a NaN/infinite coordinate or colour value are skipped.
///
/// ```
/// use memcell::report::ScatterPlot;
/// let x = [0.0, 1.0, 2.0];
/// let y = [1.0, 0.5, 2.0];
/// let t = [1.5, 2.27, 3.0];
/// let svg = ScatterPlot::new()
///     .title("Latent space")
///     .points(&x, &y)
///     .color_by_value(&t, "temperature T")
///     .to_svg()
///     .unwrap();
/// assert!(svg.contains("temperature T"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPlot {
    title: String,
    x_label: String,
    y_label: String,
    xs: Vec<f64>,
    ys: Vec<f64>,
    coloring: Coloring,
    marker: Marker,
    alpha: f64,
    log_x: bool,
    log_y: bool,
    size: (u32, u32),
    legend: LegendPos,
}

impl Default for ScatterPlot {
    fn default() -> Self {
        ScatterPlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            xs: Vec::new(),
            ys: Vec::new(),
            coloring: Coloring::Single(OKABE_ITO[0]),
            marker: Marker::Circle,
            alpha: 0.85,
            log_x: false,
            log_y: false,
            size: (900, 560),
            legend: LegendPos::Auto,
        }
    }
}

const BAR_GAP: f64 = 22.0;
const BAR_W: f64 = 18.0;

impl ScatterPlot {
    /// An empty scatter plot, 900 x 560 px.
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
    /// The point coordinates (same length; checked when rendering).
    pub fn points(mut self, xs: &[f64], ys: &[f64]) -> Self {
        self.xs = xs.to_vec();
        self.ys = ys.to_vec();
        self
    }
    /// All points in one colour (the default is the first Okabe–Ito colour).
    pub fn color(mut self, c: Rgb) -> Self {
        self.coloring = Coloring::Single(c);
        self
    }
    /// Colour each point by `values[i]` on the viridis map, with a colour bar labelled
    /// `label`. The map spans the finite values' range unless [`ScatterPlot::value_range`].
    pub fn color_by_value(mut self, values: &[f64], label: impl Into<String>) -> Self {
        self.coloring = Coloring::Values { values: values.to_vec(), label: label.into(), range: None };
        self
    }
    /// Fixed colour-map limits for [`ScatterPlot::color_by_value`] (values outside saturate).
    pub fn value_range(mut self, lo: f64, hi: f64) -> Self {
        if let Coloring::Values { range, .. } = &mut self.coloring {
            *range = Some((lo, hi));
        }
        self
    }
    /// Colour each point by its integer class, with a legend (one entry per class present).
    pub fn color_by_class(mut self, classes: &[i64]) -> Self {
        self.coloring = Coloring::Classes { classes: classes.to_vec(), names: Vec::new() };
        self
    }
    /// Legend names for classes 0, 1, 2, ... (default: the class number).
    pub fn class_names(mut self, names: &[&str]) -> Self {
        if let Coloring::Classes { names: n, .. } = &mut self.coloring {
            *n = names.iter().map(|s| s.to_string()).collect();
        }
        self
    }
    /// Point marker (default [`Marker::Circle`]; [`Marker::Dot`] for thousands of points).
    pub fn marker(mut self, m: Marker) -> Self {
        self.marker = m;
        self
    }
    /// Point opacity (default 0.85).
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = if a.is_finite() { a.clamp(0.05, 1.0) } else { 0.85 };
        self
    }
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    /// Canvas size in pixels (default 900 x 560).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
    /// Legend placement for class colouring (default [`LegendPos::Auto`]).
    pub fn legend(mut self, pos: LegendPos) -> Self {
        self.legend = pos;
        self
    }

    fn canvas_size(&self) -> Result<(u32, u32)> {
        check_size(self.size)?;
        Ok(self.size)
    }

    fn validate(&self) -> Result<()> {
        if self.xs.len() != self.ys.len() {
            return Err(Error::data(format!(
                "scatter plot: {} x values but {} y values",
                self.xs.len(),
                self.ys.len()
            )));
        }
        let n = match &self.coloring {
            Coloring::Single(_) => return Ok(()),
            Coloring::Values { values, range, .. } => {
                check_range("value_range", *range, false)?;
                values.len()
            }
            Coloring::Classes { classes, .. } => classes.len(),
        };
        if n != self.xs.len() {
            return Err(Error::data(format!("scatter plot: {} points but {n} colour values", self.xs.len())));
        }
        Ok(())
    }

    /// Colour map limits (as a scale without padding).
    fn value_scale(values: &[f64], range: Option<(f64, f64)>) -> Scale {
        if let Some((a, b)) = range {
            return Scale { log: false, lo: a, hi: b };
        }
        let s = Scale::auto(values, false, None);
        // Undo the 5% padding: the bar spans exactly the data.
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in values.iter().filter(|v| Scale::usable(false, **v)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo < hi {
            Scale { log: false, lo, hi }
        } else {
            s
        }
    }

    fn class_color(classes: &[i64], k: i64) -> Rgb {
        if classes.iter().all(|c| (0..10).contains(c)) {
            TABLEAU10[k as usize]
        } else {
            let mut u: Vec<i64> = classes.to_vec();
            u.sort_unstable();
            u.dedup();
            let rank = u.binary_search(&k).unwrap_or(0);
            TABLEAU10[rank % TABLEAU10.len()]
        }
    }

    /// (pixel position, colour) of every drawable point.
    fn points_px(&self, f: &Frame, vscale: Option<Scale>) -> Vec<((f64, f64), Rgb)> {
        let mut out = Vec::with_capacity(self.xs.len());
        for (i, (&x, &y)) in self.xs.iter().zip(&self.ys).enumerate() {
            let Some(p) = f.px(x, y) else { continue };
            let color = match &self.coloring {
                Coloring::Single(c) => *c,
                Coloring::Values { values, .. } => {
                    let v = values[i];
                    let Some(s) = vscale.filter(|_| v.is_finite()) else {
                        continue;
                    };
                    viridis((v - s.lo) / (s.hi - s.lo))
                }
                Coloring::Classes { classes, .. } => Self::class_color(classes, classes[i]),
            };
            out.push((p, color));
        }
        out
    }

    fn render(&self, c: &mut dyn Canvas) -> Result<()> {
        self.validate()?;
        let usable: Vec<usize> = (0..self.xs.len())
            .filter(|&i| Scale::usable(self.log_x, self.xs[i]) && Scale::usable(self.log_y, self.ys[i]))
            .collect();
        let xv: Vec<f64> = usable.iter().map(|&i| self.xs[i]).collect();
        let yv: Vec<f64> = usable.iter().map(|&i| self.ys[i]).collect();
        let mut xs = Scale::auto(&xv, self.log_x, None);
        let mut ys = Scale::auto(&yv, self.log_y, None);
        if self.log_x && !xs.log {
            xs = Scale::auto(&self.xs, false, None);
        }
        if self.log_y && !ys.log {
            ys = Scale::auto(&self.ys, false, None);
        }
        let decor = |right_extra: f64| Decor {
            width: self.size.0 as f64,
            height: self.size.1 as f64,
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            right_extra,
        };

        // Colour bar: reserve its width up front.
        let (vscale, bar) = match &self.coloring {
            Coloring::Values { values, label, range } => {
                let s = Self::value_scale(values, *range);
                let provisional = Frame::layout(&decor(120.0), xs, ys);
                let bar_h = provisional.bottom - provisional.top;
                let ticks = s.ticks(|t| {
                    let pos: Vec<f64> = t.major.iter().filter_map(|(v, _)| s.frac(*v)).collect();
                    t.major.len() <= 10 && min_gap_sorted(&pos) * bar_h >= 3.0 * TICK_PX
                });
                let tw = ticks.major.iter().map(|(_, s)| text_width(s, TICK_PX)).fold(0.0, f64::max);
                let label_w = if label.is_empty() { 0.0 } else { 12.0 + LABEL_PX * 1.2 };
                let extra = BAR_GAP + BAR_W + 6.0 + 5.0 + tw + label_w + 4.0;
                (Some(s), Some((ticks, label.clone(), extra)))
            }
            _ => (None, None),
        };
        let mut f = Frame::layout(&decor(bar.as_ref().map_or(0.0, |b| b.2)), xs, ys);
        let mut pts = self.points_px(&f, vscale);

        // Legend for classes.
        let mut entries = Vec::new();
        if let Coloring::Classes { classes, names } = &self.coloring {
            let mut u: Vec<i64> = classes.clone();
            u.sort_unstable();
            u.dedup();
            for k in u {
                let label =
                    usize::try_from(k).ok().and_then(|i| names.get(i).cloned()).unwrap_or_else(|| k.to_string());
                entries.push(LegendEntry {
                    label,
                    swatch: Swatch::Point { color: Self::class_color(classes, k), marker: self.marker },
                });
            }
        }
        let obstacles: Vec<Obstacle> = pts.iter().map(|(p, _)| Obstacle::Path(vec![*p])).collect();
        let legend = choose_legend(self.legend, &entries, &f, &obstacles);
        let right_extra = match legend {
            Some((true, _)) => outside_legend_width(&entries),
            _ => 0.0,
        };
        if right_extra > 0.0 {
            f = Frame::layout(&decor(right_extra), xs, ys);
            pts = self.points_px(&f, vscale);
        }
        let rect = f.rect();

        f.draw_grid(c);
        let mut drew = false;
        for (p, color) in &pts {
            if rect.contains(*p) {
                draw_marker(c, self.marker, p.0, p.1, *color, self.alpha);
                drew = true;
            }
        }
        if !drew {
            f.draw_no_data(c);
        }
        let d = decor(right_extra.max(bar.as_ref().map_or(0.0, |b| b.2)));
        f.draw_axes(c, &d);
        if let (Some(s), Some((ticks, label, _))) = (vscale, bar) {
            let x0 = f.right + BAR_GAP;
            let (top, bottom) = (f.top, f.bottom);
            let n = 128;
            for i in 0..n {
                let y1 = bottom - (bottom - top) * i as f64 / n as f64;
                let y0 = bottom - (bottom - top) * (i + 1) as f64 / n as f64;
                let col = viridis((i as f64 + 0.5) / n as f64);
                // Overlap by half a pixel so no seams show.
                c.fill_rect(x0, y0 - 0.5, x0 + BAR_W, y1, col, 1.0);
            }
            c.stroke_rect(x0, top, x0 + BAR_W, bottom, Rgb(60, 60, 60), 1.0);
            let ts = TextStyle::new(TICK_PX, HAlign::Left, VAlign::Center).color(TEXT_COLOR);
            let mut tw: f64 = 0.0;
            for (v, lab) in &ticks.major {
                if let Some(fr) = s.frac(*v) {
                    let y = bottom - fr * (bottom - top);
                    c.fill_rect(x0 + BAR_W, y - 0.6, x0 + BAR_W + 5.0, y + 0.6, Rgb(60, 60, 60), 1.0);
                    c.text(lab, x0 + BAR_W + 8.0, y, ts);
                    tw = tw.max(text_width(lab, TICK_PX));
                }
            }
            if !label.is_empty() {
                let x = x0 + BAR_W + 8.0 + tw + 12.0 + 0.5 * LABEL_PX;
                let st = TextStyle::new(LABEL_PX, HAlign::Center, VAlign::Center).rotated().color(TEXT_COLOR);
                c.text(&label, x, 0.5 * (top + bottom), st);
            }
        }
        if let Some((_, pos)) = legend {
            place_legend(c, &entries, &f, pos);
        }
        Ok(())
    }
}

fn min_gap_sorted(pos: &[f64]) -> f64 {
    let mut p = pos.to_vec();
    p.sort_by(|a, b| a.total_cmp(b));
    p.windows(2).map(|w| w[1] - w[0]).fold(1.0, f64::min)
}

impl_plot!(ScatterPlot);
