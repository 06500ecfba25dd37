//! Grids of small grayscale images (digits, Ising spin configurations, reconstructions).

use super::canvas::{Canvas, HAlign, TextStyle, VAlign};
use super::chart::{LABEL_PX, TEXT_COLOR, TITLE_PX};
use super::font::text_width;
use super::line::{check_range, MAX_SIDE};
use super::{impl_plot, Rgb};
use crate::error::{Error, Result};

/// How values map to gray levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrayMap {
    /// vmin black, vmax white (matplotlib `cmap='gray'`).
    #[default]
    Gray,
    /// vmin white, vmax black (matplotlib `cmap='gray_r'`, ink on paper, for digits).
    Inverted,
}

/// Colour of NaN/infinite pixels, so that they stand out.
const BAD_PIXEL: Rgb = Rgb(230, 60, 60);
const ROW_LABEL_PX: f64 = 15.0;
const GAP: f64 = 8.0;
const PAD: f64 = 16.0;

/// A rows x cols grid of grayscale images of `width` x `height` pixels each (row-major
/// `&[f64]`), upscaled with nearest neighbour to about 80 px per image. Cells left empty stay
/// blank. Values map linearly from `vmin` (black) to `vmax` (white), clamped; NaN/infinite
/// pixels are drawn red.
///
/// ```
/// use memcell::report::ImageGrid;
/// let img = vec![0.0; 64];
/// let grid = ImageGrid::new(2, 3, 8, 8)
///     .title("Reconstructions")
///     .row_labels(&["original", "reconstruction"])
///     .value_range(0.0, 16.0)
///     .push(&img)
///     .push(&img);
/// assert!(grid.to_png().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    rows: usize,
    cols: usize,
    width: usize,
    height: usize,
    images: Vec<Option<Vec<f64>>>,
    errors: Vec<String>,
    row_labels: Vec<String>,
    col_labels: Vec<String>,
    title: String,
    range: Option<(f64, f64)>,
    map: GrayMap,
    scale: Option<usize>,
}

impl ImageGrid {
    /// An empty grid of `rows` x `cols` cells for images of `width` x `height` pixels.
    pub fn new(rows: usize, cols: usize, width: usize, height: usize) -> Self {
        ImageGrid {
            rows,
            cols,
            width,
            height,
            images: vec![None; rows.saturating_mul(cols).min(1 << 20)],
            errors: Vec::new(),
            row_labels: Vec::new(),
            col_labels: Vec::new(),
            title: String::new(),
            range: None,
            map: GrayMap::Gray,
            scale: None,
        }
    }
    /// Puts an image (row-major, `width * height` values) into cell (`row`, `col`).
    /// Errors (cell outside the grid, wrong length) are reported when rendering.
    pub fn image(mut self, row: usize, col: usize, pixels: &[f64]) -> Self {
        if row >= self.rows || col >= self.cols || row * self.cols + col >= self.images.len() {
            self.errors
                .push(format!("image grid: cell ({row}, {col}) is outside the {}x{} grid", self.rows, self.cols));
        } else {
            self.images[row * self.cols + col] = Some(pixels.to_vec());
        }
        self
    }
    /// Puts an image into the next empty cell (row-major order).
    pub fn push(mut self, pixels: &[f64]) -> Self {
        match self.images.iter().position(Option::is_none) {
            Some(i) => self.images[i] = Some(pixels.to_vec()),
            None => self.errors.push(format!(
                "image grid: more than {} images pushed into a {}x{} grid",
                self.images.len(),
                self.rows,
                self.cols
            )),
        }
        self
    }
    /// Labels drawn left of each row (e.g. "original", "reconstruction").
    pub fn row_labels(mut self, labels: &[&str]) -> Self {
        self.row_labels = labels.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Labels drawn above each column (e.g. the digit, or the temperature).
    pub fn col_labels(mut self, labels: &[&str]) -> Self {
        self.col_labels = labels.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = t.into();
        self
    }
    /// Values mapped to black and white (default: min and max over all finite pixels).
    pub fn value_range(mut self, vmin: f64, vmax: f64) -> Self {
        self.range = Some((vmin, vmax));
        self
    }
    /// Gray map (default [`GrayMap::Gray`]).
    pub fn gray_map(mut self, m: GrayMap) -> Self {
        self.map = m;
        self
    }
    /// Screen pixels per image pixel (default: about 80 px per image side).
    pub fn pixel_scale(mut self, k: usize) -> Self {
        self.scale = Some(k.clamp(1, 64));
        self
    }

    fn scale(&self) -> usize {
        self.scale.unwrap_or_else(|| {
            let side = self.width.max(self.height).max(1);
            ((80.0 / side as f64).round() as usize).clamp(1, 32)
        })
    }

    fn margins(&self) -> (f64, f64) {
        let label_w = self.row_labels.iter().map(|s| text_width(s, ROW_LABEL_PX)).fold(0.0, f64::max);
        let left = PAD + if label_w > 0.0 { label_w + 12.0 } else { 0.0 };
        let mut top = PAD;
        if !self.title.is_empty() {
            top = 14.0 + TITLE_PX * 1.25 + 10.0;
        }
        if self.col_labels.iter().any(|s| !s.is_empty()) {
            top += LABEL_PX * 1.2 + 4.0;
        }
        (left, top)
    }

    fn canvas_size(&self) -> Result<(u32, u32)> {
        if self.rows == 0 || self.cols == 0 || self.width == 0 || self.height == 0 {
            return Err(Error::config(format!(
                "image grid {}x{} of {}x{} images: all must be positive",
                self.rows, self.cols, self.width, self.height
            )));
        }
        let k = self.scale() as f64;
        let (left, top) = self.margins();
        let grid_w = self.cols as f64 * (self.width as f64 * k) + (self.cols - 1) as f64 * GAP;
        let grid_h = self.rows as f64 * (self.height as f64 * k) + (self.rows - 1) as f64 * GAP;
        let title_w = text_width(&self.title, TITLE_PX) + 2.0 * PAD;
        let w = (left + grid_w + PAD).max(title_w).ceil();
        let h = (top + grid_h + PAD).ceil();
        if w > MAX_SIDE as f64 || h > MAX_SIDE as f64 {
            return Err(Error::config(format!(
                "image grid would be {w}x{h} px (more than {MAX_SIDE}); use fewer cells or a smaller pixel_scale"
            )));
        }
        Ok((w.max(64.0) as u32, h.max(64.0) as u32))
    }

    fn value_limits(&self) -> (f64, f64) {
        if let Some(r) = self.range {
            return r;
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in self.images.iter().flatten().flatten().filter(|v| v.is_finite()) {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        if lo > hi {
            (0.0, 1.0)
        } else if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    }

    fn render(&self, c: &mut dyn Canvas) -> Result<()> {
        if let Some(e) = self.errors.first() {
            return Err(Error::data(e.clone()));
        }
        check_range("value_range", self.range, false)?;
        let (w, _) = self.canvas_size()?;
        for (i, img) in self.images.iter().enumerate() {
            if let Some(px) = img {
                if px.len() != self.width * self.height {
                    return Err(Error::data(format!(
                        "image grid cell ({}, {}): {} values for a {}x{} image",
                        i / self.cols,
                        i % self.cols,
                        px.len(),
                        self.width,
                        self.height
                    )));
                }
            }
        }
        let (vmin, vmax) = self.value_limits();
        let k = self.scale();
        let (cw, ch) = ((self.width * k) as f64, (self.height * k) as f64);
        let (left, top) = self.margins();

        if !self.title.is_empty() {
            let st = TextStyle::new(TITLE_PX, HAlign::Center, VAlign::Top).color(Rgb(17, 17, 17));
            c.text(&self.title, 0.5 * w as f64, 14.0, st);
        }
        let col_st = TextStyle::new(LABEL_PX, HAlign::Center, VAlign::Bottom).color(TEXT_COLOR);
        for (j, lab) in self.col_labels.iter().enumerate().take(self.cols) {
            let x = left + j as f64 * (cw + GAP) + 0.5 * cw;
            c.text(lab, x, top - 5.0, col_st);
        }
        let row_st = TextStyle::new(ROW_LABEL_PX, HAlign::Right, VAlign::Center).color(TEXT_COLOR);
        for (i, lab) in self.row_labels.iter().enumerate().take(self.rows) {
            let y = top + i as f64 * (ch + GAP) + 0.5 * ch;
            c.text(lab, left - 12.0, y, row_st);
        }
        for (idx, img) in self.images.iter().enumerate() {
            let Some(px) = img else { continue };
            let (r, col) = (idx / self.cols, idx % self.cols);
            let x = left + col as f64 * (cw + GAP);
            let y = top + r as f64 * (ch + GAP);
            let rgb: Vec<u8> = px
                .iter()
                .flat_map(|&v| {
                    if !v.is_finite() {
                        return [BAD_PIXEL.0, BAD_PIXEL.1, BAD_PIXEL.2];
                    }
                    let t = ((v - vmin) / (vmax - vmin)).clamp(0.0, 1.0);
                    let t = if self.map == GrayMap::Inverted { 1.0 - t } else { t };
                    let g = (t * 255.0).round() as u8;
                    [g, g, g]
                })
                .collect();
            c.image(x, y, self.width, self.height, k, &rgb);
            c.stroke_rect(x - 0.5, y - 0.5, x + cw + 0.5, y + ch + 0.5, Rgb(170, 170, 170), 1.0);
        }
        Ok(())
    }
}

impl_plot!(ImageGrid);
