//! The bundled handwritten digits: 1,797 grayscale images of 8 × 8 pixels with their labels
//! 0-9 (UCI "Optical Recognition of Handwritten Digits", E. Alpaydin and C. Kaynak, 1998,
//! CC BY 4.0, as shipped with scikit-learn; provenance in `data/digits/README.md`).
//!
//! The file `data/digits/digits.csv.gz` is compiled into the library and decoded on demand:
//! each row holds 64 integer pixel counts 0..16 (row by row), then the label.

use crate::error::{Error, Result};
use std::io::Read;

/// Image side in pixels.
pub const SIDE: usize = 8;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of images.
pub const N_IMAGES: usize = 1797;
/// Largest pixel value in the file (pixels count "on" bits in 4 × 4 blocks).
pub const MAX_PIXEL: f64 = 16.0;

const GZ: &[u8] = include_bytes!("../../data/digits/digits.csv.gz");

/// The digits with pixels scaled to [0, 1] (divided by 16).
#[derive(Clone, Debug, PartialEq)]
pub struct Digits {
    /// `n · 64` values in [0, 1], image-major, then row-major.
    pub pixels: Vec<f64>,
    /// The digit shown by each image, 0..=9.
    pub labels: Vec<u8>,
}

impl Digits {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The 64 pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f64] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }
}

/// Decodes the bundled file.
pub fn load() -> Result<Digits> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::data(format!("bundled digits: cannot decompress: {e}")))?;
    parse(&text, "bundled digits")
}

/// Parses rows of 64 pixel values 0..16 and a label 0..9 (no header), scaling pixels by 1/16.
pub fn parse(text: &str, origin: &str) -> Result<Digits> {
    let mut pixels = Vec::with_capacity(N_IMAGES * PIXELS);
    let mut labels = Vec::with_capacity(N_IMAGES);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != PIXELS + 1 {
            return Err(Error::data(format!(
                "{origin}: line {}: expected {} values (64 pixels and a label), got {}",
                i + 1,
                PIXELS + 1,
                fields.len()
            )));
        }
        for (j, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                Error::data(format!("{origin}: line {}: value {} is '{f}', not a number", i + 1, j + 1))
            })?;
            let max = if j < PIXELS { MAX_PIXEL } else { 9.0 };
            if !(0.0..=max).contains(&v) || v.fract() != 0.0 {
                return Err(Error::data(format!(
                    "{origin}: line {}: value {} is {v}, expected an integer in 0..={max}",
                    i + 1,
                    j + 1
                )));
            }
            if j < PIXELS {
                pixels.push(v / MAX_PIXEL);
            } else {
                labels.push(v as u8);
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::data(format!("{origin}: no images")));
    }
    Ok(Digits { pixels, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_digits_are_complete_and_scaled() {
        let d = load().unwrap();
        assert_eq!(d.len(), N_IMAGES);
        assert_eq!(d.pixels.len(), N_IMAGES * PIXELS);
        assert!(d.pixels.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(d.pixels.iter().cloned().fold(0.0, f64::max), 1.0);
        // The first image is a 0, the second a 1 (as in scikit-learn's load_digits).
        assert_eq!(&d.labels[..2], &[0, 1]);
        assert_eq!(d.image(0)[2], 5.0 / 16.0);
        for k in 0..10u8 {
            let c = d.labels.iter().filter(|&&l| l == k).count();
            assert!((170..=190).contains(&c), "{c} images of {k}");
        }
    }

    #[test]
    fn malformed_rows_are_named() {
        let e = parse("1,2,3\n", "f").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("got 3"), "{e}");
        let row = |last: &str| format!("{}{last}\n", "0,".repeat(64));
        assert!(parse(&row("10"), "f").unwrap_err().to_string().contains("0..=9"));
        assert!(parse(&row("x"), "f").unwrap_err().to_string().contains("'x'"));
        assert!(parse("", "f").unwrap_err().to_string().contains("no images"));
    }
}
