//! Figures (PNG and SVG) and one self-contained HTML report.
//!
//! Everything here renders to memory first and writes files atomically
//! ([`crate::io::write_atomic`]), so an interrupted run never leaves a half-written figure.
//!
//! * [`LinePlot`]: loss curves (optionally log-scale y), predictions with shaded spread bands,
//!   a shaded x-span (e.g. the training region), vertical/horizontal reference lines, legend.
//! * [`ScatterPlot`]: points coloured by a continuous value (viridis, with a colour bar) or by an
//!   integer class label (discrete palette, with a legend).
//! * [`ImageGrid`]: rows x cols of small grayscale images (digits, Ising spin configurations),
//!   with optional row and column labels.
//! * [`Report`]: an HTML page with headings, paragraphs, tables and figures, embedded inline
//!   (no external resources, no JavaScript).
//!
//! Text is drawn with a bundled font (DejaVu Sans, `assets/fonts/`), so figures look the same
//! on a machine without any system fonts. Bad data never panics: NaN and infinite values are
//! skipped (they break a line into pieces, like matplotlib), empty series draw empty axes, and
//! on a log axis non-positive values are skipped (the axis falls back to linear when no positive
//! value is left).
//!
//! ```no_run
//! use memcell::report::{LinePlot, Plot, Report, Series};
//! # fn main() -> memcell::Result<()> {
//! let epochs: Vec<f64> = (1..=50).map(|e| e as f64).collect();
//! let loss: Vec<f64> = epochs.iter().map(|e| 0.1 / e).collect();
//! let plot = LinePlot::new()
//!     .title("Training loss")
//!     .x_label("epoch")
//!     .y_label("MSE")
//!     .log_y(true)
//!     .series(Series::new("train", &epochs, &loss));
//! plot.write(std::path::Path::new("out"), "loss")?; // out/loss.png and out/loss.svg
//! let mut report = Report::new("Run 1");
//! report.paragraph("Loss per epoch.").plot("Training loss", &plot)?;
//! report.write(std::path::Path::new("out/report.html"))?;
//! # Ok(()) }
//! ```

mod axis;
mod canvas;
mod chart;
mod font;
mod grid;
mod html;
mod line;
mod scatter;

#[cfg(test)]
mod tests;

use std::path::Path;

use crate::error::{Error, Result};

pub use grid::{GrayMap, ImageGrid};
pub use html::{FigureContent, Report};
pub use line::{Band, Dash, LegendPos, LinePlot, Marker, Series};
pub use scatter::ScatterPlot;

/// An 8-bit sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Black.
    pub const BLACK: Rgb = Rgb(0, 0, 0);
    /// White.
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    /// Pure red, the colour of matplotlib's `color='red'` (used for the training-region span).
    pub const RED: Rgb = Rgb(255, 0, 0);
    /// Mid gray.
    pub const GRAY: Rgb = Rgb(128, 128, 128);

    /// Parses `#rrggbb` (the `#` is optional).
    pub fn from_hex(s: &str) -> Result<Rgb> {
        let h = s.strip_prefix('#').unwrap_or(s);
        if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(format!("colour {s:?} is not of the form #rrggbb")));
        }
        let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0);
        Ok(Rgb(p(0), p(2), p(4)))
    }

    /// `#rrggbb`.
    pub fn to_hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// This colour drawn with opacity `alpha` over white.
    pub fn over_white(self, alpha: f64) -> Rgb {
        let a = alpha.clamp(0.0, 1.0);
        let m = |c: u8| (c as f64 * a + 255.0 * (1.0 - a)).round() as u8;
        Rgb(m(self.0), m(self.1), m(self.2))
    }
}

/// Okabe–Ito colour-blind-safe palette, in the order lines get it (black and yellow last:
/// yellow is hard to see on white).
pub const OKABE_ITO: [Rgb; 8] = [
    Rgb(0, 114, 178),   // blue
    Rgb(213, 94, 0),    // vermillion
    Rgb(0, 158, 115),   // bluish green
    Rgb(204, 121, 167), // reddish purple
    Rgb(230, 159, 0),   // orange
    Rgb(86, 180, 233),  // sky blue
    Rgb(0, 0, 0),       // black
    Rgb(240, 228, 66),  // yellow
];

/// Tableau 10 (matplotlib's `tab10`), for up to 10 discrete classes such as digits 0-9.
pub const TABLEAU10: [Rgb; 10] = [
    Rgb(31, 119, 180),
    Rgb(255, 127, 14),
    Rgb(44, 160, 44),
    Rgb(214, 39, 40),
    Rgb(148, 103, 189),
    Rgb(140, 86, 75),
    Rgb(227, 119, 194),
    Rgb(127, 127, 127),
    Rgb(188, 189, 34),
    Rgb(23, 190, 207),
];

/// Viridis (matplotlib's default colour map) at `t` in [0, 1] (clamped; NaN gives the low end).
pub fn viridis(t: f64) -> Rgb {
    const V: [(u8, u8, u8); 10] = [
        (0x44, 0x01, 0x54),
        (0x48, 0x28, 0x78),
        (0x3e, 0x4a, 0x89),
        (0x31, 0x68, 0x8e),
        (0x26, 0x82, 0x8e),
        (0x1f, 0x9e, 0x89),
        (0x35, 0xb7, 0x79),
        (0x6d, 0xcd, 0x59),
        (0xb4, 0xde, 0x2c),
        (0xfd, 0xe7, 0x25),
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let f = t * (V.len() - 1) as f64;
    let i = (f.floor() as usize).min(V.len() - 2);
    let u = f - i as f64;
    let l = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * u).round() as u8;
    let (a, b) = (V[i], V[i + 1]);
    Rgb(l(a.0, b.0), l(a.1, b.1), l(a.2, b.2))
}

/// Formats a number for a table in compact scientific notation with 3 significant digits:
/// `5.12e-5`, `1.00e0`, `-3.20e2`; `—` for NaN, `inf`/`-inf` for infinities, `0` for zero.
pub fn fmt_sci(v: f64) -> String {
    if v.is_nan() {
        "—".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v:.2e}")
    }
}

/// [`fmt_sci`] for an optional value: `None` gives `—`.
pub fn fmt_sci_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), fmt_sci)
}

mod sealed {
    /// Only this module's figures implement [`super::Plot`]: [`super::Report::plot`] puts
    /// their SVG inline, which is safe only for markup generated here.
    pub trait Sealed {}
}

/// A figure that can be rendered to SVG and PNG: [`LinePlot`], [`ScatterPlot`] and
/// [`ImageGrid`] (which also have these methods as inherent methods).
pub trait Plot: sealed::Sealed {
    /// Renders the figure as an SVG document.
    fn to_svg(&self) -> Result<String>;
    /// Renders the figure as PNG file bytes.
    fn to_png(&self) -> Result<Vec<u8>>;
    /// Writes `dir/stem.png` and `dir/stem.svg` (creating `dir`), each atomically. Both are
    /// rendered before either is written.
    fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        write_pair(dir, stem, self.to_png()?, self.to_svg()?)
    }
}

fn write_pair(dir: &Path, stem: &str, png: Vec<u8>, svg: String) -> Result<()> {
    if stem.is_empty()
        || stem.contains(['/', '\\'])
        || stem == "."
        || stem == ".."
        || stem.chars().any(char::is_control)
    {
        return Err(Error::config(format!("figure file stem {stem:?} must be a plain, non-empty file name")));
    }
    crate::io::write_atomic(&dir.join(format!("{stem}.png")), &png)?;
    crate::io::write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())
}

/// Implements [`Plot`] and the same three methods as inherent methods (so that callers need
/// not import the trait) for a type with `fn render(&self, &mut dyn Canvas) -> Result<()>` and
/// `fn canvas_size(&self) -> Result<(u32, u32)>`.
macro_rules! impl_plot {
    ($t:ty) => {
        impl $t {
            /// Renders the figure as an SVG document.
            pub fn to_svg(&self) -> $crate::error::Result<String> {
                let (w, h) = self.canvas_size()?;
                let mut c = $crate::report::canvas::SvgCanvas::new(w, h);
                self.render(&mut c)?;
                Ok(c.finish())
            }
            /// Renders the figure as PNG file bytes (drawn at 2x and downsampled, so edges
            /// are anti-aliased).
            pub fn to_png(&self) -> $crate::error::Result<Vec<u8>> {
                let (w, h) = self.canvas_size()?;
                $crate::report::canvas::render_png(w, h, |c| self.render(c))
            }
            /// Writes `dir/stem.png` and `dir/stem.svg` (creating `dir`), each atomically.
            pub fn write(&self, dir: &std::path::Path, stem: &str) -> $crate::error::Result<()> {
                $crate::report::Plot::write(self, dir, stem)
            }
        }
        impl $crate::report::sealed::Sealed for $t {}
        impl $crate::report::Plot for $t {
            fn to_svg(&self) -> $crate::error::Result<String> {
                <$t>::to_svg(self)
            }
            fn to_png(&self) -> $crate::error::Result<Vec<u8>> {
                <$t>::to_png(self)
            }
        }
    };
}
pub(crate) use impl_plot;
