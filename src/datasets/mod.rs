//! Data: the seed note's bundled series, user series from CSV or `.npy`, the sequence
//! formatting of the note (`format_data`: windows `(y1..yw) -> y_{w+1}`), and generators of
//! physics data (the pairing model's CCD energies, 2-D Ising configurations).
//!
//! A [`Series`] is validated once when it is read (finite values, strictly increasing x,
//! at least two points); everything downstream can rely on that.

pub mod digits;
pub mod ising;
pub mod pairing;

use crate::error::{Error, Result};
use std::path::Path;

/// A series y(x) with one or more y columns (several columns become several input features).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub x_name: String,
    pub y_names: Vec<String>,
    /// Strictly increasing.
    pub x: Vec<f64>,
    /// One row per point, one value per y column.
    pub y: Vec<Vec<f64>>,
}

impl Series {
    /// Builds and validates a series: equal lengths, at least 2 points, finite values,
    /// strictly increasing x, the same number of y values in every row.
    pub fn new(x_name: &str, y_names: Vec<String>, x: Vec<f64>, y: Vec<Vec<f64>>, origin: &str) -> Result<Self> {
        if x.len() != y.len() {
            return Err(Error::data(format!("{origin}: {} x values but {} y rows", x.len(), y.len())));
        }
        if x.len() < 2 {
            return Err(Error::data(format!("{origin}: a series needs at least 2 points, got {}", x.len())));
        }
        let f = y_names.len();
        if f == 0 {
            return Err(Error::data(format!("{origin}: no y column")));
        }
        for (i, (&xi, yi)) in x.iter().zip(&y).enumerate() {
            if yi.len() != f {
                return Err(Error::data(format!("{origin}: point {} has {} y values, expected {f}", i + 1, yi.len())));
            }
            if !xi.is_finite() {
                return Err(Error::data(format!("{origin}: {x_name} at point {} is {xi}", i + 1)));
            }
            if let Some((j, v)) = yi.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::data(format!(
                    "{origin}: {} at point {} ({x_name} = {xi}) is {v}",
                    y_names[j],
                    i + 1
                )));
            }
            if i > 0 && xi <= x[i - 1] {
                return Err(Error::data(format!(
                    "{origin}: {x_name} must be strictly increasing, but point {} has {x_name} = {xi} after {}",
                    i + 1,
                    x[i - 1]
                )));
            }
        }
        Ok(Series { x_name: x_name.into(), y_names, x, y })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Always false for a validated series (it has at least 2 points).
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Number of y columns (input features of a window model).
    pub fn n_features(&self) -> usize {
        self.y_names.len()
    }

    /// The first y column.
    pub fn y0(&self) -> Vec<f64> {
        self.y.iter().map(|v| v[0]).collect()
    }

    /// Whether the x values are evenly spaced (to 1e-9 relative): sequence formatting assumes
    /// they are, as the note says.
    pub fn evenly_spaced(&self) -> bool {
        let d0 = self.x[1] - self.x[0];
        self.x.windows(2).all(|w| ((w[1] - w[0]) - d0).abs() <= 1e-9 * d0.abs().max(1.0))
    }
}

/// The seed note's series as CSV (bundled; provenance in `data/README.md`).
pub const SEED_CSV: &str = include_str!("../../data/seed_ccd_pairing_g0.5.csv");

/// The note's training size: the first 12 of the 20 points train.
pub const SEED_TRAIN: usize = 12;

/// The seed note's series: the CCD correlation energy of the pairing model (g = 0.5, level
/// spacing 1) against the number of particles N = 2, 4, ..., 40.
pub fn seed_series() -> Series {
    parse_csv(SEED_CSV, "N", &["energy".to_string()], "bundled seed series").expect("the bundled series is valid")
}

/// Reads columns `x` and `ys` of a CSV file with a header row.
pub fn read_csv(path: &Path, x: &str, ys: &[String]) -> Result<Series> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_csv(&text, x, ys, &path.display().to_string())
}

/// A CSV reader over `text` (comma separated, `#` comment lines, cells trimmed) and its
/// header row; `origin` names the source in errors.
pub(crate) fn csv_with_header<'a>(text: &'a str, origin: &str) -> Result<(csv::Reader<&'a [u8]>, Vec<String>)> {
    let mut rdr = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::data(format!("{origin}: cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok((rdr, header))
}

/// The position of column `name` in `header`, or an error listing the columns there are.
pub(crate) fn column_index(header: &[String], name: &str, origin: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| Error::data(format!("{origin}: no column named '{name}' (columns: {})", header.join(", "))))
}

/// Parses CSV text (header row, comma separated, `#` comment lines allowed).
pub fn parse_csv(text: &str, x: &str, ys: &[String], origin: &str) -> Result<Series> {
    let (mut rdr, header) = csv_with_header(text, origin)?;
    let col = |name: &str| column_index(&header, name, origin);
    let xi = col(x)?;
    let yi: Vec<usize> = ys.iter().map(|n| col(n)).collect::<Result<_>>()?;
    let (mut xs, mut yv) = (Vec::new(), Vec::new());
    for (r, rec) in rdr.records().enumerate() {
        let line = r + 2; // 1-based, after the header
        let rec = rec.map_err(|e| Error::data(format!("{origin}: line {line}: {e}")))?;
        let cell = |c: usize, name: &str| -> Result<f64> {
            let s = rec.get(c).unwrap_or("");
            if s.is_empty() {
                return Err(Error::data(format!("{origin}: line {line}: column '{name}' is empty")));
            }
            let v: f64 = s.parse().map_err(|_| {
                Error::data(format!("{origin}: line {line}: column '{name}' holds '{s}', not a number"))
            })?;
            if !v.is_finite() {
                return Err(Error::data(format!("{origin}: line {line}: column '{name}' is {s}")));
            }
            Ok(v)
        };
        xs.push(cell(xi, x)?);
        yv.push(yi.iter().zip(ys).map(|(&c, n)| cell(c, n)).collect::<Result<Vec<_>>>()?);
    }
    Series::new(x, ys.to_vec(), xs, yv, origin)
}

/// Reads a float64 or float32 `.npy` array of any shape: (shape, values in row-major order).
/// Values are not checked (callers decide what a NaN means for them).
pub fn read_npy_array(path: &Path) -> Result<(Vec<usize>, Vec<f64>)> {
    use ndarray::ArrayD;
    use ndarray_npy::ReadNpyExt;
    let open = || std::fs::File::open(path).map_err(|e| Error::io(path, e));
    let arr: ArrayD<f64> = match ArrayD::<f64>::read_npy(open()?) {
        Ok(a) => a,
        Err(_) => ArrayD::<f32>::read_npy(open()?)
            .map_err(|e| Error::format(path, format!("not a float64 or float32 .npy array: {e}")))?
            .mapv(|v| v as f64),
    };
    let shape = arr.shape().to_vec();
    let v = arr.as_standard_layout().iter().copied().collect();
    Ok((shape, v))
}

/// Reads a `.npy` array (float64 or float32): 1-D is y against x = 0, 1, 2, ...; 2-D
/// (n, c) is x in column 0 and y in columns 1.. (c >= 2), or y alone when c = 1.
pub fn read_npy(path: &Path) -> Result<Series> {
    let origin = path.display().to_string();
    let (shape, v) = read_npy_array(path)?;
    match shape.as_slice() {
        [n] => Series::new(
            "index",
            vec!["y".into()],
            (0..*n).map(|i| i as f64).collect(),
            v.into_iter().map(|y| vec![y]).collect(),
            &origin,
        ),
        [n, 1] => Series::new(
            "index",
            vec!["y".into()],
            (0..*n).map(|i| i as f64).collect(),
            v.into_iter().map(|y| vec![y]).collect(),
            &origin,
        ),
        [_, c] => {
            let c = *c;
            let names = (1..c).map(|j| format!("y{j}")).collect();
            let xs = v.chunks_exact(c).map(|r| r[0]).collect();
            let ys = v.chunks_exact(c).map(|r| r[1..].to_vec()).collect();
            Series::new("x", names, xs, ys, &origin)
        }
        other => Err(Error::format(path, format!("expected a 1-D or 2-D array, got shape {other:?}"))),
    }
}

/// The note's `format_data`: windows of `window` consecutive rows of `y` and the row after
/// each. Returns (inputs flattened as (n, window, features), targets as (n, features), n).
pub fn windows(y: &[Vec<f64>], window: usize) -> (Vec<f64>, Vec<f64>, usize) {
    let n = y.len().saturating_sub(window);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..n {
        for row in &y[i..i + window] {
            xs.extend_from_slice(row);
        }
        ys.extend_from_slice(&y[i + window]);
    }
    (xs, ys, n)
}

/// Checks that the first `train` points of `series` give at least one window of `window`
/// points and that there is something to extrapolate to or compare with.
pub fn check_split(series: &Series, train: usize, window: usize) -> Result<()> {
    let n = series.len();
    if train > n {
        return Err(Error::data(format!("train = {train} is larger than the {n} points of the series")));
    }
    if window == 0 {
        return Err(Error::config("window must be at least 1, got 0"));
    }
    if train < window + 1 {
        return Err(Error::data(format!(
            "window length {window} needs at least {} training points (one window and its next value), got train = {train}",
            window + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_series_is_the_notes_twenty_points() {
        let s = seed_series();
        assert_eq!(s.len(), 20);
        assert_eq!(s.x[0], 2.0);
        assert_eq!(s.x[19], 40.0);
        assert_eq!(s.y[0][0], -0.03077640549);
        assert_eq!(s.y[19][0], -1.70653767);
        assert!(s.evenly_spaced());
    }

    #[test]
    fn windows_match_format_data() {
        let y: Vec<Vec<f64>> = (0..5).map(|i| vec![i as f64]).collect();
        let (x, t, n) = windows(&y, 2);
        assert_eq!(n, 3);
        assert_eq!(x, vec![0.0, 1.0, 1.0, 2.0, 2.0, 3.0]);
        assert_eq!(t, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn csv_errors_name_the_problem() {
        let ys = ["e".to_string()];
        let e = parse_csv("N,e\n1,2\n2,3\n", "M", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("no column named 'M'") && e.contains("N, e"), "{e}");
        let e = parse_csv("N,e\n1,2\n2,\n", "N", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("empty"), "{e}");
        let e = parse_csv("N,e\n1,2\n2,nan\n", "N", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("nan"), "{e}");
        let e = parse_csv("N,e\n1,2\n1,3\n", "N", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("strictly increasing"), "{e}");
        let e = parse_csv("N,e\n", "N", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("at least 2 points, got 0"), "{e}");
        let e = parse_csv("N,e\n1,abc\n2,3\n", "N", &ys, "f.csv").unwrap_err().to_string();
        assert!(e.contains("'abc'"), "{e}");
    }

    #[test]
    fn split_errors_name_the_sizes() {
        let s = seed_series();
        assert!(check_split(&s, 12, 2).is_ok());
        let e = check_split(&s, 21, 2).unwrap_err().to_string();
        assert!(e.contains("train = 21") && e.contains("20 points"), "{e}");
        let e = check_split(&s, 3, 5).unwrap_err().to_string();
        assert!(e.contains("window length 5 needs at least 6"), "{e}");
    }
}
