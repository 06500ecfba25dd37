//! The bundled font (DejaVu Sans, see `assets/fonts/README.md`) and text metrics.
//!
//! PNG text is rasterised from the font's outlines with `ab_glyph` (with kerning and side
//! bearings); the font is also registered with plotters' `ab_glyph` renderer under its default
//! family `sans-serif`, so any plotters text elsewhere in memcell needs no system font either.

use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont as _};
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// The TrueType file, compiled in.
pub(crate) static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// CSS `font-family` used in SVG output (the viewer's DejaVu Sans if it has one, else a
/// similar wide sans-serif).
pub(crate) const SVG_FAMILY: &str = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, sans-serif";

/// Cap height of DejaVu Sans in em (1493/2048).
pub(crate) const CAP_HEIGHT: f64 = 0.729;
/// Descent in em (483/2048).
pub(crate) const DESCENT: f64 = 0.236;

/// The parsed font, `None` if it could not be parsed (never expected).
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| {
        let f = FontRef::try_from_slice(DEJAVU_SANS).ok();
        if f.is_some() {
            let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS);
        }
        f
    })
    .as_ref()
}

/// Loads the bundled font (once per process).
pub(crate) fn ensure_loaded() -> Result<()> {
    font().map(|_| ()).ok_or_else(|| Error::config("the bundled font (DejaVu Sans) could not be loaded"))
}

/// ab_glyph's scale for `px` pixels per em (its scale is ascent - descent, not the em).
fn scale(f: &FontRef<'static>, px: f64) -> PxScale {
    let em = f.units_per_em().unwrap_or(2048.0);
    PxScale::from((px * f.height_unscaled() as f64 / em as f64) as f32)
}

/// Width in pixels of `text` at `px` pixels per em (advances plus kerning).
pub(crate) fn text_width(text: &str, px: f64) -> f64 {
    match font() {
        Some(f) => {
            let sf = f.as_scaled(scale(f, px));
            let mut w = 0.0f32;
            let mut prev: Option<GlyphId> = None;
            for c in text.chars() {
                let id = sf.glyph_id(c);
                if let Some(p) = prev {
                    w += sf.kern(p, id);
                }
                w += sf.h_advance(id);
                prev = Some(id);
            }
            w as f64
        }
        None => 0.6 * px * text.chars().count() as f64,
    }
}

/// The outlined glyphs of `text` at `px` pixels per em, laid out from x = 0 on the baseline
/// y = 0 (y down).
pub(crate) fn outline(text: &str, px: f64) -> Vec<OutlinedGlyph> {
    let Some(f) = font() else { return Vec::new() };
    let s = scale(f, px);
    let sf = f.as_scaled(s);
    let mut caret = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    let mut out = Vec::new();
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        if let Some(g) = f.outline_glyph(id.with_scale_and_position(s, ab_glyph::point(caret, 0.0))) {
            out.push(g);
        }
        caret += sf.h_advance(id);
        prev = Some(id);
    }
    out
}
