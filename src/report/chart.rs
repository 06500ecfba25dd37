//! Shared 2-D chart machinery: layout of the plot area, axes, ticks, legend, clipping.

use super::axis::{Scale, Ticks};
use super::canvas::{Canvas, HAlign, TextStyle, VAlign};
use super::font::text_width;
use super::line::{Dash, Marker};
use super::Rgb;

/// Font sizes (px per em) and strokes, chosen for a legible 900 px wide PNG.
pub(crate) const TITLE_PX: f64 = 20.0;
pub(crate) const LABEL_PX: f64 = 16.0;
pub(crate) const TICK_PX: f64 = 14.0;
pub(crate) const LEGEND_PX: f64 = 14.0;
const TICK_LEN: f64 = 6.0;
const MINOR_LEN: f64 = 3.5;
const AXIS_COLOR: Rgb = Rgb(51, 51, 51);
const GRID_COLOR: Rgb = Rgb(228, 228, 228);
pub(crate) const TEXT_COLOR: Rgb = Rgb(34, 34, 34);

/// The plot area in pixels and the scales and ticks of its axes.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
    pub xs: Scale,
    pub ys: Scale,
    pub xt: Ticks,
    pub yt: Ticks,
}

/// What surrounds the plot area.
pub(crate) struct Decor<'a> {
    pub width: f64,
    pub height: f64,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Extra space reserved right of the plot area (outside legend, colour bar).
    pub right_extra: f64,
}

impl Frame {
    /// Lays out the plot area: title on top, y tick labels sized to fit on the left, x tick
    /// labels and axis label below.
    pub fn layout(d: &Decor, xs: Scale, ys: Scale) -> Frame {
        let top = if d.title.is_empty() { 16.0 } else { 14.0 + TITLE_PX * 1.25 + 10.0 };
        let x_label_h = if d.x_label.is_empty() { 0.0 } else { 8.0 + LABEL_PX * 1.2 };
        let bottom_margin = TICK_LEN + 6.0 + TICK_PX * 1.05 + x_label_h + 12.0;
        let bottom = (d.height - bottom_margin).max(top + 20.0);
        let plot_h = bottom - top;

        let yt = ys.ticks(|t| {
            let pos: Vec<f64> = t.major.iter().filter_map(|(v, _)| ys.frac(*v)).collect();
            t.major.len() <= 10 && min_gap(&pos) * plot_h >= 3.0 * TICK_PX
        });
        let ytw = yt.major.iter().map(|(_, s)| text_width(s, TICK_PX)).fold(0.0, f64::max);
        let y_label_w = if d.y_label.is_empty() { 0.0 } else { LABEL_PX * 1.2 + 10.0 };
        let left = 14.0 + y_label_w + ytw + 6.0 + TICK_LEN;

        let mut right = d.width - 24.0 - d.right_extra;
        if right < left + 20.0 {
            right = left + 20.0;
        }
        let plot_w = right - left;
        let xt = xs.ticks(|t| {
            if t.major.len() > 12 {
                return false;
            }
            let w: Vec<f64> = t.major.iter().map(|(_, s)| text_width(s, TICK_PX)).collect();
            let pos: Vec<Option<f64>> = t.major.iter().map(|(v, _)| xs.frac(*v)).collect();
            pos.windows(2).zip(w.windows(2)).all(|(p, w)| match (p[0], p[1]) {
                (Some(a), Some(b)) => (b - a) * plot_w >= (0.5 * (w[0] + w[1]) + 1.5 * TICK_PX).max(50.0),
                _ => true,
            })
        });
        // Keep the last x tick label inside the canvas.
        if let Some((v, s)) = xt.major.last() {
            if let Some(f) = xs.frac(*v) {
                let overhang = left + f * plot_w + 0.5 * text_width(s, TICK_PX) + 6.0 - (d.width - d.right_extra);
                if overhang > 0.0 {
                    right -= overhang;
                }
            }
        }
        // Pixel-aligned edges keep the frame crisp.
        Frame { left: left.round(), top: top.round(), right: right.round(), bottom: bottom.round(), xs, ys, xt, yt }
    }

    /// Pixel x of data x (None if not representable).
    pub fn px_x(&self, x: f64) -> Option<f64> {
        let f = self.xs.frac(x)?;
        let p = self.left + f * (self.right - self.left);
        p.is_finite().then_some(p)
    }

    /// Pixel y of data y (None if not representable).
    pub fn px_y(&self, y: f64) -> Option<f64> {
        let f = self.ys.frac(y)?;
        let p = self.bottom - f * (self.bottom - self.top);
        p.is_finite().then_some(p)
    }

    pub fn px(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        Some((self.px_x(x)?, self.px_y(y)?))
    }

    pub fn rect(&self) -> Rect {
        Rect { x0: self.left, y0: self.top, x1: self.right, y1: self.bottom }
    }

    /// Light grid lines at the major ticks.
    pub fn draw_grid(&self, c: &mut dyn Canvas) {
        for (v, _) in &self.xt.major {
            if let Some(x) = self.px_x(*v) {
                let x = crisp(x);
                c.fill_rect(x, self.top, x + 1.0, self.bottom, GRID_COLOR, 1.0);
            }
        }
        for (v, _) in &self.yt.major {
            if let Some(y) = self.px_y(*v) {
                let y = crisp(y);
                c.fill_rect(self.left, y, self.right, y + 1.0, GRID_COLOR, 1.0);
            }
        }
    }

    /// Frame, ticks, tick labels, axis labels and title.
    pub fn draw_axes(&self, c: &mut dyn Canvas, d: &Decor) {
        let tick = |c: &mut dyn Canvas, horizontal: bool, p: f64, len: f64| {
            let p = crisp(p);
            if horizontal {
                c.fill_rect(p, self.bottom, p + 1.0, self.bottom + len, AXIS_COLOR, 1.0);
            } else {
                c.fill_rect(self.left - len, p, self.left, p + 1.0, AXIS_COLOR, 1.0);
            }
        };
        for v in &self.xt.minor {
            if let Some(x) = self.px_x(*v).filter(|x| (self.left..=self.right).contains(x)) {
                tick(c, true, x, MINOR_LEN);
            }
        }
        for v in &self.yt.minor {
            if let Some(y) = self.px_y(*v).filter(|y| (self.top..=self.bottom).contains(y)) {
                tick(c, false, y, MINOR_LEN);
            }
        }
        let ts = TextStyle::new(TICK_PX, HAlign::Center, VAlign::Top).color(TEXT_COLOR);
        for (v, s) in &self.xt.major {
            if let Some(x) = self.px_x(*v) {
                tick(c, true, x, TICK_LEN);
                c.text(s, x, self.bottom + TICK_LEN + 5.0, ts);
            }
        }
        let ts = TextStyle::new(TICK_PX, HAlign::Right, VAlign::Center).color(TEXT_COLOR);
        for (v, s) in &self.yt.major {
            if let Some(y) = self.px_y(*v) {
                tick(c, false, y, TICK_LEN);
                c.text(s, self.left - TICK_LEN - 5.0, y, ts);
            }
        }
        // One-pixel frame just inside the plot area (pixel-aligned, so crisp in the PNG).
        let (l, t, r, b) = (self.left, self.top, self.right, self.bottom);
        c.fill_rect(l, t, r, t + 1.0, AXIS_COLOR, 1.0);
        c.fill_rect(l, b - 1.0, r, b, AXIS_COLOR, 1.0);
        c.fill_rect(l, t, l + 1.0, b, AXIS_COLOR, 1.0);
        c.fill_rect(r - 1.0, t, r, b, AXIS_COLOR, 1.0);

        let cx = 0.5 * (self.left + self.right);
        if !d.x_label.is_empty() {
            let y = self.bottom + TICK_LEN + 6.0 + TICK_PX * 1.05 + 8.0;
            c.text(d.x_label, cx, y, TextStyle::new(LABEL_PX, HAlign::Center, VAlign::Top).color(TEXT_COLOR));
        }
        if !d.y_label.is_empty() {
            let x = 14.0 + 0.5 * LABEL_PX;
            let cy = 0.5 * (self.top + self.bottom);
            let st = TextStyle::new(LABEL_PX, HAlign::Center, VAlign::Center).rotated().color(TEXT_COLOR);
            c.text(d.y_label, x, cy, st);
        }
        if !d.title.is_empty() {
            // Centred over the plot area, as far as the canvas allows.
            let st = TextStyle::new(TITLE_PX, HAlign::Center, VAlign::Top).color(Rgb(17, 17, 17));
            let half = 0.5 * text_width(d.title, TITLE_PX) + 8.0;
            let x = if 2.0 * half >= d.width { 0.5 * d.width } else { cx.clamp(half, d.width - half) };
            c.text(d.title, x, 14.0, st);
        }
    }

    /// "no finite data" in the middle of an empty plot.
    pub fn draw_no_data(&self, c: &mut dyn Canvas) {
        let st = TextStyle::new(LABEL_PX, HAlign::Center, VAlign::Center).color(Rgb(130, 130, 130));
        c.text("no finite data", 0.5 * (self.left + self.right), 0.5 * (self.top + self.bottom), st);
    }
}

/// The left/top edge of the pixel a line at `v` falls in (1-px lines stay crisp).
fn crisp(v: f64) -> f64 {
    v.floor()
}

/// Smallest gap between sorted-or-not positions (1.0 for fewer than two).
fn min_gap(pos: &[f64]) -> f64 {
    let mut p = pos.to_vec();
    p.sort_by(|a, b| a.total_cmp(b));
    p.windows(2).map(|w| w[1] - w[0]).fold(1.0, f64::min)
}

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub fn contains(&self, p: (f64, f64)) -> bool {
        p.0 >= self.x0 && p.0 <= self.x1 && p.1 >= self.y0 && p.1 <= self.y1
    }
}

/// Liang–Barsky: the part of segment a-b inside `r`, if any.
pub(crate) fn clip_segment(a: (f64, f64), b: (f64, f64), r: &Rect) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for (p, q) in [(-dx, a.0 - r.x0), (dx, r.x1 - a.0), (-dy, a.1 - r.y0), (dy, r.y1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return None;
            }
        }
    }
    Some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Clips a polyline to `r`, returning the visible pieces (a single point inside stays a
/// one-point piece, drawn as a dot by callers that want it).
pub(crate) fn clip_polyline(pts: &[(f64, f64)], r: &Rect) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    if pts.len() == 1 {
        if r.contains(pts[0]) {
            out.push(vec![pts[0]]);
        }
        return out;
    }
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((p, q)) => {
                let joined = cur.last().is_some_and(|l| (l.0 - p.0).abs() < 1e-9 && (l.1 - p.1).abs() < 1e-9);
                if !joined {
                    if cur.len() > 1 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(p);
                }
                cur.push(q);
            }
            None => {
                if cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// Sutherland–Hodgman: a polygon clipped to `r`.
pub(crate) fn clip_polygon(pts: &[(f64, f64)], r: &Rect) -> Vec<(f64, f64)> {
    let mut poly = pts.to_vec();
    type Edge = fn(&Rect, (f64, f64)) -> bool;
    let inside: [Edge; 4] = [|r, p| p.0 >= r.x0, |r, p| p.0 <= r.x1, |r, p| p.1 >= r.y0, |r, p| p.1 <= r.y1];
    for (k, ins) in inside.iter().enumerate() {
        if poly.is_empty() {
            break;
        }
        let cross = |a: (f64, f64), b: (f64, f64)| -> (f64, f64) {
            let t = match k {
                0 => (r.x0 - a.0) / (b.0 - a.0),
                1 => (r.x1 - a.0) / (b.0 - a.0),
                2 => (r.y0 - a.1) / (b.1 - a.1),
                _ => (r.y1 - a.1) / (b.1 - a.1),
            };
            let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
            (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
        };
        let input = std::mem::take(&mut poly);
        for i in 0..input.len() {
            let cur = input[i];
            let prev = input[(i + input.len() - 1) % input.len()];
            match (ins(r, prev), ins(r, cur)) {
                (true, true) => poly.push(cur),
                (true, false) => poly.push(cross(prev, cur)),
                (false, true) => {
                    poly.push(cross(prev, cur));
                    poly.push(cur);
                }
                (false, false) => {}
            }
        }
    }
    poly
}

/// Splits (x, y) data into runs of consecutive representable points, in pixels.
pub(crate) fn pixel_runs(f: &Frame, xs: &[f64], ys: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for (&x, &y) in xs.iter().zip(ys) {
        match f.px(x, y) {
            Some(p) => cur.push(p),
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Where a legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPos {
    /// The inside corner that covers no data, else outside to the right (the default).
    #[default]
    Auto,
    UpperRight,
    UpperLeft,
    LowerLeft,
    LowerRight,
    /// Right of the plot area, top-aligned.
    OutsideRight,
    /// No legend.
    None,
}

/// What a legend entry shows next to its label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    Line { color: Rgb, width: f64, dash: Dash, marker: Option<Marker> },
    Patch { color: Rgb, alpha: f64 },
    Point { color: Rgb, marker: Marker },
}

#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub swatch: Swatch,
}

const LEG_PAD: f64 = 9.0;
const LEG_ROW: f64 = 23.0;
const LEG_SWATCH: f64 = 32.0;

/// Width and height of the legend box.
pub(crate) fn legend_size(entries: &[LegendEntry]) -> (f64, f64) {
    let tw = entries.iter().map(|e| text_width(&e.label, LEGEND_PX)).fold(0.0, f64::max);
    (2.0 * LEG_PAD + LEG_SWATCH + 8.0 + tw, 2.0 * LEG_PAD + LEG_ROW * entries.len() as f64 - 4.0)
}

/// Draws a marker centred at (x, y).
pub(crate) fn draw_marker(c: &mut dyn Canvas, m: Marker, x: f64, y: f64, color: Rgb, alpha: f64) {
    match m {
        Marker::Circle => c.circle(x, y, 3.8, color, alpha),
        Marker::Square => c.fill_rect(x - 3.4, y - 3.4, x + 3.4, y + 3.4, color, alpha),
        Marker::Dot => c.circle(x, y, 2.4, color, alpha),
    }
}

/// Draws the legend box with its top-left corner at (x, y).
pub(crate) fn draw_legend(c: &mut dyn Canvas, entries: &[LegendEntry], x: f64, y: f64) {
    let (w, h) = legend_size(entries);
    c.fill_rect(x, y, x + w, y + h, Rgb::WHITE, 0.9);
    c.stroke_rect(x, y, x + w, y + h, Rgb(200, 200, 200), 1.0);
    let ts = TextStyle::new(LEGEND_PX, HAlign::Left, VAlign::Center).color(TEXT_COLOR);
    for (i, e) in entries.iter().enumerate() {
        let cy = y + LEG_PAD + LEG_ROW * i as f64 + 0.5 * (LEG_ROW - 4.0);
        let (sx0, sx1) = (x + LEG_PAD, x + LEG_PAD + LEG_SWATCH);
        match e.swatch {
            Swatch::Line { color, width, dash, marker } => {
                c.polyline(&[(sx0 + 1.0, cy), (sx1 - 1.0, cy)], color, width, dash);
                if let Some(m) = marker {
                    draw_marker(c, m, 0.5 * (sx0 + sx1), cy, color, 1.0);
                }
            }
            Swatch::Patch { color, alpha } => {
                c.fill_rect(sx0, cy - 7.0, sx1, cy + 7.0, color, alpha);
            }
            Swatch::Point { color, marker } => draw_marker(c, marker, 0.5 * (sx0 + sx1), cy, color, 1.0),
        }
        c.text(&e.label, sx1 + 8.0, cy, ts);
    }
}

/// Something drawn in the plot area that a legend should not cover.
pub(crate) enum Obstacle {
    /// A polyline (or a single point).
    Path(Vec<(f64, f64)>),
    /// A filled polygon.
    Area(Vec<(f64, f64)>),
}

fn point_in_polygon(p: (f64, f64), poly: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            inside = !inside;
        }
    }
    inside
}

/// How much of the obstacles a rectangle covers (0 = none).
fn badness(r: &Rect, obstacles: &[Obstacle]) -> usize {
    let mut n = 0;
    for o in obstacles {
        match o {
            Obstacle::Path(p) if p.len() == 1 => n += usize::from(r.contains(p[0])),
            Obstacle::Path(p) => n += p.windows(2).filter(|w| clip_segment(w[0], w[1], r).is_some()).count(),
            Obstacle::Area(p) => {
                let edge_hits =
                    p.iter().zip(p.iter().cycle().skip(1)).filter(|(a, b)| clip_segment(**a, **b, r).is_some()).count();
                let centre = (0.5 * (r.x0 + r.x1), 0.5 * (r.y0 + r.y1));
                if edge_hits > 0 || point_in_polygon(centre, p) {
                    n += 1 + edge_hits;
                }
            }
        }
    }
    n
}

/// The legend's top-left corner inside the plot area for a fixed position.
fn corner(pos: LegendPos, f: &Frame, size: (f64, f64)) -> (f64, f64) {
    let m = 10.0;
    match pos {
        LegendPos::UpperLeft => (f.left + m, f.top + m),
        LegendPos::LowerLeft => (f.left + m, f.bottom - m - size.1),
        LegendPos::LowerRight => (f.right - m - size.0, f.bottom - m - size.1),
        _ => (f.right - m - size.0, f.top + m),
    }
}

/// Picks the legend position: a fixed corner, outside, or (Auto) the first inside corner
/// that covers nothing, else outside. Returns `None` for no legend, and `Some(true)` when
/// it goes outside (the caller then reserves room and lays out again).
pub(crate) fn choose_legend(
    pos: LegendPos,
    entries: &[LegendEntry],
    f: &Frame,
    obstacles: &[Obstacle],
) -> Option<(bool, LegendPos)> {
    if entries.is_empty() || pos == LegendPos::None {
        return None;
    }
    let size = legend_size(entries);
    match pos {
        LegendPos::OutsideRight => Some((true, pos)),
        LegendPos::Auto => {
            let fits = size.0 + 20.0 <= f.right - f.left && size.1 + 20.0 <= f.bottom - f.top;
            if fits {
                for p in [LegendPos::UpperRight, LegendPos::UpperLeft, LegendPos::LowerRight, LegendPos::LowerLeft] {
                    let (x, y) = corner(p, f, size);
                    // A little margin around the box keeps lines from touching it.
                    let r = Rect { x0: x - 4.0, y0: y - 4.0, x1: x + size.0 + 4.0, y1: y + size.1 + 4.0 };
                    if badness(&r, obstacles) == 0 {
                        return Some((false, p));
                    }
                }
            }
            Some((true, LegendPos::OutsideRight))
        }
        p => Some((false, p)),
    }
}

/// Space to reserve right of the plot area for an outside legend.
pub(crate) fn outside_legend_width(entries: &[LegendEntry]) -> f64 {
    legend_size(entries).0 + 18.0
}

/// Draws the legend at a position chosen by [`choose_legend`].
pub(crate) fn place_legend(c: &mut dyn Canvas, entries: &[LegendEntry], f: &Frame, pos: LegendPos) {
    let size = legend_size(entries);
    let (x, y) = if pos == LegendPos::OutsideRight { (f.right + 18.0, f.top) } else { corner(pos, f, size) };
    draw_legend(c, entries, x, y);
}
