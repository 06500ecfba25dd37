//! A minimal drawing surface with two implementations: SVG text written directly, and PNG
//! rasterised by plotters' bitmap backend at 2x and box-filtered down (anti-aliasing).
//!
//! All coordinates are logical pixels, origin top-left, y down. Callers clip beforehand.

use std::fmt::Write as _;

use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::style::{Color as _, RGBColor, ShapeStyle};

use super::font::{self, CAP_HEIGHT, DESCENT};
use super::line::Dash;
use super::Rgb;
use crate::error::{Error, Result};

/// Horizontal text alignment relative to the anchor (along the reading direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

/// Vertical text alignment relative to the anchor: `Top` puts the top of capitals there,
/// `Center` the middle of capitals, `Bottom` the lowest descender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VAlign {
    Top,
    Center,
    Bottom,
}

/// How a text is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextStyle {
    /// Pixels per em (CSS font-size).
    pub px: f64,
    pub h: HAlign,
    pub v: VAlign,
    /// Rotated 90 degrees counter-clockwise (reads bottom to top), as y-axis labels.
    pub rotated: bool,
    pub color: Rgb,
}

impl TextStyle {
    pub fn new(px: f64, h: HAlign, v: VAlign) -> Self {
        TextStyle { px, h, v, rotated: false, color: Rgb(34, 34, 34) }
    }
    pub fn rotated(mut self) -> Self {
        self.rotated = true;
        self
    }
    pub fn color(mut self, c: Rgb) -> Self {
        self.color = c;
        self
    }
    /// Offset from the anchor to the baseline, across the reading direction.
    fn baseline_offset(&self) -> f64 {
        match self.v {
            VAlign::Top => CAP_HEIGHT * self.px,
            VAlign::Center => 0.5 * CAP_HEIGHT * self.px,
            VAlign::Bottom => -DESCENT * self.px,
        }
    }
    /// Offset from the anchor to the start of the text, along the reading direction.
    fn start_offset(&self, width: f64) -> f64 {
        match self.h {
            HAlign::Left => 0.0,
            HAlign::Center => -0.5 * width,
            HAlign::Right => -width,
        }
    }
}

/// A drawing surface.
pub(crate) trait Canvas {
    fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, alpha: f64);
    fn stroke_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, width: f64);
    fn polyline(&mut self, pts: &[(f64, f64)], color: Rgb, width: f64, dash: Dash);
    fn polygon(&mut self, pts: &[(f64, f64)], color: Rgb, alpha: f64);
    fn circle(&mut self, cx: f64, cy: f64, r: f64, color: Rgb, alpha: f64);
    fn text(&mut self, s: &str, x: f64, y: f64, style: TextStyle);
    /// An RGB image of `w` x `h` pixels (`rgb.len() == 3 * w * h`), each pixel drawn as a
    /// `scale` x `scale` square (nearest neighbour), top-left corner at (x, y).
    fn image(&mut self, x: f64, y: f64, w: usize, h: usize, scale: usize, rgb: &[u8]);
}

/// Dash pattern (on, off) in line widths, as SVG `stroke-dasharray` with round caps: the
/// visible dash is one width longer and the visible gap one width shorter.
const DASH: (f64, f64) = (2.8, 3.6);
const DOT: (f64, f64) = (0.0, 3.2);

/// Splits a polyline into the drawn pieces of a dash pattern. A piece with one point is a dot.
/// Patterns are (on, off) lengths in units of the line width, excluding the round caps.
pub(crate) fn dash_pieces(pts: &[(f64, f64)], width: f64, dash: Dash) -> Vec<Vec<(f64, f64)>> {
    let (on, off) = match dash {
        Dash::Solid => return vec![pts.to_vec()],
        Dash::Dashed => (DASH.0 * width, DASH.1 * width),
        Dash::Dotted => (DOT.0 * width, DOT.1 * width),
    };
    let total: f64 = pts.windows(2).map(|w| dist(w[0], w[1])).sum();
    if off.is_nan() || off <= 0.0 || !total.is_finite() || total / (on + off) > 100_000.0 {
        return vec![pts.to_vec()];
    }
    let mut pieces = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let mut is_on = true;
    let mut remaining = on;
    if let Some(&p) = pts.first() {
        cur.push(p);
    }
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = dist(a, b);
        let mut t = 0.0;
        loop {
            if remaining <= 1e-9 {
                let p = lerp(a, b, if len > 0.0 { t / len } else { 0.0 });
                if is_on {
                    if cur.is_empty() {
                        cur.push(p);
                    }
                    pieces.push(std::mem::take(&mut cur));
                    remaining = off;
                } else {
                    cur.push(p);
                    remaining = on;
                }
                is_on = !is_on;
                continue;
            }
            if t >= len {
                break;
            }
            let step = remaining.min(len - t);
            t += step;
            remaining -= step;
            if is_on {
                cur.push(lerp(a, b, t / len));
            }
        }
    }
    if is_on && !cur.is_empty() {
        pieces.push(cur);
    }
    pieces
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

fn lerp(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

/// Escapes text for XML/HTML content and attribute values.
pub(crate) fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Encodes an RGB buffer as PNG bytes.
pub(crate) fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| Error::data(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Upscales an RGB image by an integer factor (nearest neighbour).
pub(crate) fn upscale(rgb: &[u8], w: usize, h: usize, k: usize) -> Vec<u8> {
    let (ow, oh) = (w * k, h * k);
    let mut out = vec![0u8; ow * oh * 3];
    for y in 0..oh {
        for x in 0..ow {
            let s = ((y / k) * w + x / k) * 3;
            let d = (y * ow + x) * 3;
            out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
    out
}

/// Formats a coordinate with at most 2 decimals.
fn n(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

fn opacity_attr(alpha: f64) -> String {
    if alpha >= 1.0 {
        String::new()
    } else {
        format!(" fill-opacity=\"{}\"", n(alpha.max(0.0)))
    }
}

/// Writes SVG elements into a string.
pub(crate) struct SvgCanvas {
    buf: String,
}

impl SvgCanvas {
    pub fn new(w: u32, h: u32) -> Self {
        let mut buf = String::new();
        let _ = write!(
            buf,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
             width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{}\">\n\
             <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
            font::SVG_FAMILY
        );
        SvgCanvas { buf }
    }

    pub fn finish(mut self) -> String {
        self.buf.push_str("</svg>\n");
        self.buf
    }

    fn points(pts: &[(f64, f64)]) -> String {
        let mut s = String::with_capacity(pts.len() * 12);
        for (i, p) in pts.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&n(p.0));
            s.push(',');
            s.push_str(&n(p.1));
        }
        s
    }
}

impl Canvas for SvgCanvas {
    fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, alpha: f64) {
        let (x, y) = (x0.min(x1), y0.min(y1));
        let _ = writeln!(
            self.buf,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}/>",
            n(x),
            n(y),
            n((x1 - x0).abs()),
            n((y1 - y0).abs()),
            color.to_hex(),
            opacity_attr(alpha)
        );
    }

    fn stroke_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, width: f64) {
        let (x, y) = (x0.min(x1), y0.min(y1));
        let _ = writeln!(
            self.buf,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"/>",
            n(x),
            n(y),
            n((x1 - x0).abs()),
            n((y1 - y0).abs()),
            color.to_hex(),
            n(width)
        );
    }

    fn polyline(&mut self, pts: &[(f64, f64)], color: Rgb, width: f64, dash: Dash) {
        if pts.is_empty() {
            return;
        }
        let dash_attr = match dash {
            Dash::Solid => String::new(),
            Dash::Dashed => format!(" stroke-dasharray=\"{} {}\"", n(DASH.0 * width), n(DASH.1 * width)),
            Dash::Dotted => format!(" stroke-dasharray=\"0.01 {}\"", n(DOT.1 * width)),
        };
        let mut pts = pts.to_vec();
        if pts.len() == 1 {
            pts.push(pts[0]);
        }
        let _ = writeln!(
            self.buf,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" \
             stroke-linecap=\"round\" stroke-linejoin=\"round\"{}/>",
            Self::points(&pts),
            color.to_hex(),
            n(width),
            dash_attr
        );
    }

    fn polygon(&mut self, pts: &[(f64, f64)], color: Rgb, alpha: f64) {
        if pts.len() < 3 {
            return;
        }
        let _ = writeln!(
            self.buf,
            "<polygon points=\"{}\" fill=\"{}\"{}/>",
            Self::points(pts),
            color.to_hex(),
            opacity_attr(alpha)
        );
    }

    fn circle(&mut self, cx: f64, cy: f64, r: f64, color: Rgb, alpha: f64) {
        let _ = writeln!(
            self.buf,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"{}/>",
            n(cx),
            n(cy),
            n(r),
            color.to_hex(),
            opacity_attr(alpha)
        );
    }

    fn text(&mut self, s: &str, x: f64, y: f64, st: TextStyle) {
        if s.is_empty() {
            return;
        }
        let anchor = match st.h {
            HAlign::Left => "start",
            HAlign::Center => "middle",
            HAlign::Right => "end",
        };
        let off = st.baseline_offset();
        let (tx, ty, transform) = if st.rotated {
            (x, y + off, format!(" transform=\"rotate(-90 {} {})\"", n(x), n(y)))
        } else {
            (x, y + off, String::new())
        };
        let _ = writeln!(
            self.buf,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\"{}>{}</text>",
            n(tx),
            n(ty),
            n(st.px),
            st.color.to_hex(),
            transform,
            escape_xml(s)
        );
    }

    fn image(&mut self, x: f64, y: f64, w: usize, h: usize, scale: usize, rgb: &[u8]) {
        if w == 0 || h == 0 || rgb.len() != w * h * 3 {
            return;
        }
        let k = scale.max(1);
        let big = upscale(rgb, w, h, k);
        let Ok(png) = encode_png(&big, (w * k) as u32, (h * k) as u32) else {
            return;
        };
        let uri = format!("data:image/png;base64,{}", base64(&png));
        let _ = writeln!(
            self.buf,
            "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
             style=\"image-rendering:pixelated;image-rendering:crisp-edges\" \
             xlink:href=\"{uri}\" href=\"{uri}\"/>",
            n(x),
            n(y),
            w * k,
            h * k
        );
    }
}

/// Supersampling factor of PNG rendering.
const SS: f64 = 2.0;

/// Rasterises at `SS` x the size on plotters' bitmap backend.
struct PngCanvas<'a> {
    b: BitMapBackend<'a>,
    err: Option<String>,
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn px(v: f64) -> i32 {
    let v = (v * SS).round();
    if v.is_finite() {
        v.clamp(-1e6, 1e6) as i32
    } else {
        0
    }
}

impl PngCanvas<'_> {
    fn check<E: std::fmt::Display>(&mut self, r: std::result::Result<(), E>) {
        if let Err(e) = r {
            self.err.get_or_insert_with(|| e.to_string());
        }
    }

    fn fill_style(c: Rgb, alpha: f64) -> ShapeStyle {
        ShapeStyle { color: rgb(c).mix(alpha.clamp(0.0, 1.0)), filled: true, stroke_width: 1 }
    }

    /// A round-capped, round-joined solid polyline: one quad per segment plus a disc at every
    /// vertex (no miter spikes at sharp turns).
    fn stroke(&mut self, pts: &[(f64, f64)], c: Rgb, width: f64) {
        let style = Self::fill_style(c, 1.0);
        let hw = 0.5 * width * SS;
        let r = hw.round().max(1.0) as u32;
        for w in pts.windows(2) {
            let (a, b) = ((w[0].0 * SS, w[0].1 * SS), (w[1].0 * SS, w[1].1 * SS));
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt();
            if len < 1e-9 {
                continue;
            }
            let (nx, ny) = (-dy / len * hw, dx / len * hw);
            let q = |x: f64, y: f64| (x.round().clamp(-1e6, 1e6) as i32, y.round().clamp(-1e6, 1e6) as i32);
            let quad = [q(a.0 + nx, a.1 + ny), q(b.0 + nx, b.1 + ny), q(b.0 - nx, b.1 - ny), q(a.0 - nx, a.1 - ny)];
            let res = self.b.fill_polygon(quad, &style);
            self.check(res);
        }
        if width * SS >= 2.5 {
            for p in pts {
                let res = self.b.draw_circle((px(p.0), px(p.1)), r, &style, true);
                self.check(res);
            }
        }
    }
}

impl Canvas for PngCanvas<'_> {
    fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, alpha: f64) {
        // The bitmap backend fills [x0, x1) x [y0, y1).
        let (a, b) = ((px(x0.min(x1)), px(y0.min(y1))), (px(x0.max(x1)), px(y0.max(y1))));
        if b.0 <= a.0 || b.1 <= a.1 {
            return;
        }
        let res = self.b.draw_rect(a, b, &Self::fill_style(color, alpha), true);
        self.check(res);
    }

    fn stroke_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, width: f64) {
        // Four filled bars centred on the edges.
        let hw = 0.5 * width;
        let (l, r, t, b) = (x0.min(x1), x0.max(x1), y0.min(y1), y0.max(y1));
        self.fill_rect(l - hw, t - hw, r + hw, t + hw, color, 1.0);
        self.fill_rect(l - hw, b - hw, r + hw, b + hw, color, 1.0);
        self.fill_rect(l - hw, t + hw, l + hw, b - hw, color, 1.0);
        self.fill_rect(r - hw, t + hw, r + hw, b - hw, color, 1.0);
    }

    fn polyline(&mut self, pts: &[(f64, f64)], color: Rgb, width: f64, dash: Dash) {
        for piece in dash_pieces(pts, width, dash) {
            if piece.len() == 1 {
                self.circle(piece[0].0, piece[0].1, 0.5 * width, color, 1.0);
            } else {
                self.stroke(&piece, color, width);
            }
        }
    }

    fn polygon(&mut self, pts: &[(f64, f64)], color: Rgb, alpha: f64) {
        if pts.len() < 3 {
            return;
        }
        let v: Vec<(i32, i32)> = pts.iter().map(|p| (px(p.0), px(p.1))).collect();
        let res = self.b.fill_polygon(v, &Self::fill_style(color, alpha));
        self.check(res);
    }

    fn circle(&mut self, cx: f64, cy: f64, r: f64, color: Rgb, alpha: f64) {
        let rr = (r * SS).round().max(1.0) as u32;
        let res = self.b.draw_circle((px(cx), px(cy)), rr, &Self::fill_style(color, alpha), true);
        self.check(res);
    }

    fn text(&mut self, s: &str, x: f64, y: f64, st: TextStyle) {
        if s.is_empty() {
            return;
        }
        let off = st.baseline_offset();
        let start = st.start_offset(font::text_width(s, st.px));
        // Origin of the text (start of the baseline) in backend pixels.
        let (ox, oy) = if st.rotated {
            (((x + off) * SS).round() as i32, ((y - start) * SS).round() as i32)
        } else {
            (((x + start) * SS).round() as i32, ((y + off) * SS).round() as i32)
        };
        let color = rgb(st.color);
        let mut first_err = None;
        for g in font::outline(s, st.px * SS) {
            let b = g.px_bounds();
            let (bx, by) = (b.min.x as i32, b.min.y as i32);
            g.draw(|gx, gy, cov| {
                if cov <= 0.0 || first_err.is_some() {
                    return;
                }
                // Glyph pixel (lx, ly) relative to the text origin, y down.
                let (lx, ly) = (bx + gx as i32, by + gy as i32);
                // Rotated 90 degrees counter-clockwise: along the text is up, "down" is right.
                let p = if st.rotated { (ox + ly, oy - lx - 1) } else { (ox + lx, oy + ly) };
                if let Err(e) = self.b.draw_pixel(p, color.mix(cov.min(1.0) as f64).to_backend_color()) {
                    first_err = Some(e.to_string());
                }
            });
        }
        if let Some(e) = first_err {
            self.err.get_or_insert(e);
        }
    }

    fn image(&mut self, x: f64, y: f64, w: usize, h: usize, scale: usize, rgb: &[u8]) {
        if w == 0 || h == 0 || rgb.len() != w * h * 3 {
            return;
        }
        let k = scale.max(1) * SS as usize;
        let big = upscale(rgb, w, h, k);
        let res = self.b.blit_bitmap((px(x), px(y)), ((w * k) as u32, (h * k) as u32), &big);
        self.check(res);
    }
}

/// Renders `w` x `h` logical pixels to PNG bytes via `draw`.
pub(crate) fn render_png(w: u32, h: u32, draw: impl FnOnce(&mut dyn Canvas) -> Result<()>) -> Result<Vec<u8>> {
    font::ensure_loaded()?;
    let (bw, bh) = (w as usize * SS as usize, h as usize * SS as usize);
    let mut buf = vec![255u8; bw * bh * 3];
    {
        let backend = BitMapBackend::with_buffer(&mut buf, (bw as u32, bh as u32));
        let mut c = PngCanvas { b: backend, err: None };
        draw(&mut c)?;
        let res = c.b.present();
        c.check(res);
        if let Some(e) = c.err {
            return Err(Error::data(format!("rendering the PNG failed: {e}")));
        }
    }
    // Box filter SS x SS -> 1.
    let k = SS as usize;
    let (w, h) = (w as usize, h as usize);
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..3 {
                let mut sum = 0u32;
                for dy in 0..k {
                    for dx in 0..k {
                        sum += buf[((y * k + dy) * bw + x * k + dx) * 3 + ch] as u32;
                    }
                }
                out[(y * w + x) * 3 + ch] = ((sum + (k * k / 2) as u32) / (k * k) as u32) as u8;
            }
        }
    }
    encode_png(&out, w as u32, h as u32)
}
