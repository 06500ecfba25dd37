//! Axis scales (linear or log10), automatic ranges and readable tick labels.

/// Values beyond this magnitude are treated like non-finite ones (skipped), so that spans
/// and paddings never overflow.
const HUGE: f64 = 1e300;

/// A 1-D mapping from data values to [0, 1]. For a log scale `lo` and `hi` are log10 values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    pub log: bool,
    pub lo: f64,
    pub hi: f64,
}

/// A labelled tick (data value, label) plus unlabelled minor ticks (data values).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ticks {
    pub major: Vec<(f64, String)>,
    pub minor: Vec<f64>,
}

impl Scale {
    /// Whether `v` can be shown on a scale of this kind.
    pub fn usable(log: bool, v: f64) -> bool {
        v.is_finite() && v.abs() <= HUGE && (!log || v > 0.0)
    }

    /// A scale covering `values` (unusable ones skipped) with 5% padding, or exactly `limits`.
    /// A log scale without any positive value falls back to linear.
    pub fn auto(values: &[f64], want_log: bool, limits: Option<(f64, f64)>) -> Scale {
        let log = want_log
            && (values.iter().any(|&v| Scale::usable(true, v)) || limits.is_some_and(|(a, b)| a > 0.0 && b > 0.0));
        let tf = |v: f64| if log { v.log10() } else { v };
        if let Some((a, b)) = limits {
            if Scale::usable(log, a) && Scale::usable(log, b) && a < b {
                return Scale { log, lo: tf(a), hi: tf(b) };
            }
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in values {
            if Scale::usable(log, v) {
                let t = tf(v);
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
        if lo > hi {
            return Scale { log, lo: 0.0, hi: 1.0 };
        }
        if hi - lo <= 1e-12 * hi.abs().max(lo.abs()).max(1e-300) {
            let d = if log {
                0.5
            } else if lo == 0.0 {
                1.0
            } else {
                0.1 * lo.abs()
            };
            return Scale { log, lo: lo - d, hi: hi + d };
        }
        let pad = 0.05 * (hi - lo);
        Scale { log, lo: lo - pad, hi: hi + pad }
    }

    /// The transformed value (log10 on a log scale), `None` when not representable.
    pub fn t(&self, v: f64) -> Option<f64> {
        if !Scale::usable(self.log, v) {
            None
        } else if self.log {
            Some(v.log10())
        } else {
            Some(v)
        }
    }

    /// Position of `v` in [0, 1] (outside for values outside the range).
    pub fn frac(&self, v: f64) -> Option<f64> {
        self.t(v).map(|t| (t - self.lo) / (self.hi - self.lo))
    }

    fn contains_t(&self, t: f64) -> bool {
        let eps = 1e-9 * (self.hi - self.lo);
        t >= self.lo - eps && t <= self.hi + eps
    }

    /// Chooses the densest tick set for which `fits(&ticks)` holds (a caller's check that the
    /// labels do not collide), preferring at least two ticks.
    pub fn ticks(&self, fits: impl Fn(&Ticks) -> bool) -> Ticks {
        let cands = if self.log { self.log_candidates() } else { linear_candidates(self.lo, self.hi) };
        let mut best_two: Option<Ticks> = None;
        let mut best_one: Option<Ticks> = None;
        for c in cands {
            let n = c.major.len();
            if n >= 2 {
                if fits(&c) {
                    return c;
                }
                best_two = Some(c);
            } else if n == 1 && best_one.is_none() {
                best_one = Some(c);
            }
        }
        best_two.or(best_one).unwrap_or_default()
    }

    fn log_candidates(&self) -> Vec<Ticks> {
        let (lo, hi) = (self.lo, self.hi);
        let mut out = Vec::new();
        let k0 = lo.floor() as i64;
        let k1 = hi.ceil() as i64;
        if k1 - k0 > 2000 {
            return out;
        }
        // Mantissa patterns: all integers, then 1-2-5, then decades with a growing stride.
        let patterns: [&[u32]; 2] = [&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[1, 2, 5]];
        if hi - lo < 3.0 {
            for (pi, pat) in patterns.iter().enumerate() {
                let mut major = Vec::new();
                let mut minor = Vec::new();
                for k in k0..=k1 {
                    for m in 1..=9u32 {
                        let v = m as f64 * 10f64.powi(k as i32);
                        if !self.contains_t(v.log10()) {
                            continue;
                        }
                        if pat.contains(&m) {
                            major.push(v);
                        } else {
                            minor.push(v);
                        }
                    }
                }
                // The all-integers pattern only when the range is under a decade.
                if pi == 0 && hi - lo > 1.0 {
                    continue;
                }
                out.push(Ticks { major: label_log(&major), minor });
            }
        }
        for stride in [1i64, 2, 3, 5, 10, 20, 50, 100, 200, 500] {
            let mut major = Vec::new();
            let mut minor = Vec::new();
            for k in k0..=k1 {
                let v = 10f64.powi(k as i32);
                if !self.contains_t(k as f64) || v == 0.0 || !v.is_finite() {
                    continue;
                }
                if k.rem_euclid(stride) == 0 {
                    major.push(v);
                }
                if stride == 1 && hi - lo < 12.0 {
                    for m in 2..=9u32 {
                        let mv = m as f64 * v;
                        if self.contains_t(mv.log10()) {
                            minor.push(mv);
                        }
                    }
                } else if k.rem_euclid(stride) != 0 {
                    minor.push(v);
                }
            }
            out.push(Ticks { major: label_log(&major), minor });
        }
        // Under a decade: linear steps in data space, first unless 1-2-5 gives three ticks.
        if hi - lo < 1.0 {
            let n125 = out.get(1).map_or(0, |t| t.major.len());
            let mut lin = linear_candidates(10f64.powf(lo), 10f64.powf(hi));
            lin.retain(|c| c.major.iter().all(|(x, _)| *x > 0.0));
            if n125 >= 3 {
                out.extend(lin);
            } else {
                lin.extend(out);
                out = lin;
            }
        }
        out
    }
}

/// Tick sets with steps m * 10^e (m in 1, 2, 2.5, 5), from dense to sparse.
fn linear_candidates(lo: f64, hi: f64) -> Vec<Ticks> {
    let span = hi - lo;
    let mut out = Vec::new();
    if !span.is_finite() || span <= 0.0 {
        return out;
    }
    let e0 = span.log10().floor() as i32;
    for e in (e0 - 2)..=(e0 + 1) {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = m * 10f64.powi(e);
            if !step.is_finite() || step <= 0.0 {
                continue;
            }
            let k0 = (lo / step - 1e-9).ceil();
            let k1 = (hi / step + 1e-9).floor();
            if !k0.is_finite() || !k1.is_finite() || k1 - k0 >= 60.0 {
                continue;
            }
            let vals: Vec<f64> = (k0 as i64..=k1 as i64).map(|k| k as f64 * step).collect();
            let labels = label_linear(&vals, step, m == 2.5);
            out.push(Ticks { major: vals.into_iter().zip(labels).collect(), minor: Vec::new() });
        }
    }
    out
}

/// Labels for equally spaced ticks: fixed decimals resolving the step, or compact scientific
/// notation (`1.5e-4`) for very small or very large values.
fn label_linear(vals: &[f64], step: f64, quarter: bool) -> Vec<String> {
    let maxabs = vals.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let step_exp = step.log10().floor() as i32 - if quarter { 1 } else { 0 };
    if maxabs >= 1e5 || (maxabs < 1e-3 && maxabs > 0.0) {
        vals.iter()
            .map(|&v| {
                if v.abs() < step * 1e-6 {
                    return "0".to_string();
                }
                let e = v.abs().log10().floor() as i32;
                let digits = (e - step_exp).clamp(0, 15) as usize;
                compact_sci(v, digits)
            })
            .collect()
    } else {
        let dec = (-step_exp).clamp(0, 15) as usize;
        vals.iter()
            .map(|&v| {
                let s = format!("{:.*}", dec, v);
                if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                    s.trim_start_matches('-').to_string()
                } else {
                    s
                }
            })
            .collect()
    }
}

/// `v` as `m.mmme-k` with `digits` decimals in the mantissa, trailing zeros trimmed.
fn compact_sci(v: f64, digits: usize) -> String {
    let s = format!("{:.*e}", digits, v);
    match s.split_once('e') {
        Some((m, e)) => {
            let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
            format!("{m}e{e}")
        }
        None => s,
    }
}

/// Labels for log ticks m * 10^k (m integer): plain decimals when every tick lies in
/// [1e-3, 1e4], otherwise `2e-5` style.
fn label_log(vals: &[f64]) -> Vec<(f64, String)> {
    let plain = vals.iter().all(|&v| (1e-3 * 0.999..=1e4 * 1.001).contains(&v));
    vals.iter()
        .map(|&v| {
            let k = v.log10().floor() as i32;
            let m = (v / 10f64.powi(k)).round() as i64;
            // m can round up to 10 for values just below a power of ten.
            let (m, k) = if m >= 10 { (m / 10, k + 1) } else { (m, k) };
            let label = if plain {
                let dec = (-k).max(0) as usize;
                format!("{:.*}", dec, m as f64 * 10f64.powi(k))
            } else {
                format!("{m}e{k}")
            };
            (v, label)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &Ticks) -> Vec<&str> {
        t.major.iter().map(|(_, s)| s.as_str()).collect()
    }

    #[test]
    fn linear_ticks_are_round_numbers() {
        let s = Scale::auto(&[2.0, 40.0], false, None);
        let t = s.ticks(|t| t.major.len() <= 6);
        assert_eq!(labels(&t), ["10", "20", "30", "40"]);
        let s = Scale::auto(&[0.0, 1.0], false, None);
        let t = s.ticks(|t| t.major.len() <= 6);
        assert_eq!(labels(&t), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    }

    #[test]
    fn tiny_values_get_compact_scientific_labels() {
        let s = Scale { log: false, lo: 0.0, hi: 5e-5 };
        let t = s.ticks(|t| t.major.len() <= 6);
        assert_eq!(labels(&t), ["0", "1e-5", "2e-5", "3e-5", "4e-5", "5e-5"]);
    }

    #[test]
    fn log_ticks_are_decades() {
        let s = Scale::auto(&[1e-6, 0.5], true, None);
        assert!(s.log);
        let t = s.ticks(|t| t.major.len() <= 8);
        assert_eq!(labels(&t), ["1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1"]);
        assert!(t.minor.contains(&2e-6));
        let s = Scale::auto(&[0.011, 3.0], true, None);
        let t = s.ticks(|t| t.major.len() <= 4);
        assert_eq!(labels(&t), ["0.01", "0.1", "1"]);
    }

    #[test]
    fn narrow_log_range_still_has_two_ticks() {
        let s = Scale::auto(&[0.021, 0.029], true, None);
        let t = s.ticks(|t| t.major.len() <= 6);
        assert!(t.major.len() >= 2, "{t:?}");
    }

    #[test]
    fn log_without_positive_values_falls_back_to_linear() {
        let s = Scale::auto(&[0.0, -1.0, f64::NAN], true, None);
        assert!(!s.log);
        assert!(s.lo < -1.0 && s.hi > 0.0);
        let s = Scale::auto(&[0.0, 1e-3, 1.0], true, None);
        assert!(s.log && s.lo < -3.0 && s.hi > 0.0);
    }

    #[test]
    fn degenerate_and_empty_ranges() {
        let s = Scale::auto(&[], false, None);
        assert_eq!((s.lo, s.hi), (0.0, 1.0));
        let s = Scale::auto(&[3.0, 3.0], false, None);
        assert!(s.lo < 3.0 && s.hi > 3.0);
        let s = Scale::auto(&[f64::INFINITY, f64::NAN, 1e308, -1e308], false, None);
        assert!(s.lo.is_finite() && s.hi.is_finite() && s.lo < s.hi);
        assert!(!s.ticks(|_| true).major.is_empty());
    }
}
