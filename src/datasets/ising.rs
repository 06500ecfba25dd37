//! Seeded samples of the two-dimensional Ising model, drawn with Wolff cluster updates.
//!
//! # Model
//!
//! Spins `s_i = ±1` sit on an `L × L` square lattice with periodic boundaries (a torus). The
//! energy of a configuration is
//!
//! ```text
//! H(s) = −J Σ_<ij> s_i s_j
//! ```
//!
//! where `<ij>` runs over the `2 L²` nearest-neighbour bonds (each site's right and down
//! neighbour, wrapping at the edges; on the `L = 2` torus the right and left neighbour are the
//! same site, so each such pair is joined by two bonds, consistently in `H` and in the cluster
//! rule below). Configurations are drawn from the Boltzmann distribution
//! `P(s) ∝ exp(−H(s)/T)` (units with `k_B = 1`). For every sample the generator records
//!
//! ```text
//! e = H(s) / L²             energy per spin, in [−2J, 2J]
//! m = (Σ_i s_i) / L²        signed magnetization per spin, in [−1, 1]
//! ```
//!
//! On the infinite lattice the model orders below `T_c = 2J / ln(1 + √2) ≈ 2.269 J`, where
//! the energy per spin is exactly `−√2 J`.
//!
//! # Sampler
//!
//! One Wolff update picks a uniformly random seed site, grows a cluster by adding each
//! aligned neighbour of a cluster site with probability
//!
//! ```text
//! p = 1 − exp(−2J/T)
//! ```
//!
//! (each bond is tried once), and flips the whole cluster. It satisfies detailed balance with
//! respect to `P(s)` and, unlike single-spin Metropolis, hardly slows down near `T_c`. Each
//! temperature gets its own chain, which runs
//!
//! 1. **Equilibration**: Wolff updates until at least `equilibration_sweeps · L²` spins have
//!    been flipped in total (a "sweep-equivalent" is `L²` flipped spins) and at least
//!    [`MIN_PILOT_CLUSTERS`] clusters were grown in its second half. The mean cluster size
//!    `⟨n⟩_T` over that second half is the chain's pilot estimate.
//! 2. **Sampling**: before each of the `samples_per_temp` samples, a *fixed* number
//!
//!    ```text
//!    k_T = max(decorrelation_flips, ⌈DECORRELATION_SWEEPS · L² / ⟨n⟩_T⌉)
//!    ```
//!
//!    of Wolff updates, followed by one global flip `s → −s` with probability 1/2. `k_T` is
//!    fixed before the first sample is taken: stopping each interval after a number of
//!    *flipped spins* would make the sampling times depend on the configurations and bias
//!    the samples. Scaling with `⟨n⟩_T` keeps the work between samples near a constant number
//!    of sweep-equivalents at every temperature (at high `T` clusters hold a few spins, near
//!    and below `T_c` a sizeable part of the lattice).
//!
//! The global flip is an exact Monte Carlo move because `H(−s) = H(s)`; it leaves `P(s)`
//! invariant and makes the sign of `m` independent from sample to sample. Without it, a
//! chain deep in the ordered phase keeps one sign for hundreds of samples: at `T = 1`,
//! `L = 16` nearly every Wolff update flips almost the whole lattice, so the sign after a
//! fixed even or odd number of updates is nearly deterministic (see the test
//! `raw_chain_rarely_changes_sign_at_low_t`).
//!
//! # Reproducibility
//!
//! Chain `t` (the `t`-th entry of [`IsingConfig::temps`]) draws from
//! `ChaCha8Rng::seed_from_u64(seed)` on stream `t`, so the samples are bit-identical for a
//! given configuration whatever the number of threads ([`generate_with_threads`]). A chain
//! depends on its temperature's *index*: the same temperature at another position of the
//! list gets different (equally valid) samples.
//!
//! # Observables
//!
//! [`susceptibility_by_temperature`] computes, per distinct temperature,
//!
//! ```text
//! χ(T) = L² (⟨v²⟩ − ⟨|v|⟩²) / T
//! ```
//!
//! for any per-sample scalar `v`: with `v = m` it is the usual finite-lattice magnetic
//! susceptibility (using `|m|`, since `⟨m⟩ = 0` on a finite lattice), whose maximum sits
//! above `T_c` for small `L` (near `T ≈ 2.4` for `L = 16`). [`specific_heat_by_temperature`]
//! gives `C(T) = L² (⟨e²⟩ − ⟨e⟩²) / T²`.
//!
//! # Files
//!
//! [`write_outputs`] writes the spins as an `int8` `.npy` array of shape `(n_samples, L, L)`
//! and a CSV `temperature,energy,magnetization` with one row per sample, in the same order;
//! see [`output_paths`] for the names.

use crate::error::{Error, Result};
use ndarray::Array3;
use ndarray_npy::WriteNpyExt;
use rand::distributions::{Bernoulli, Distribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Infinite-lattice critical temperature `2 / ln(1 + √2)` for `J = 1`.
pub const T_CRITICAL: f64 = 2.269_185_314_213_022;

/// Sweep-equivalents (`L²` flipped spins) aimed for between two samples; see the module docs.
pub const DECORRELATION_SWEEPS: f64 = 2.0;

/// Least number of clusters over which the pilot mean cluster size is taken.
pub const MIN_PILOT_CLUSTERS: usize = 100;

/// Most temperatures [`parse_temps`] accepts from a range.
pub const MAX_TEMPS: usize = 100_000;

/// The state each temperature's chain starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// All spins `+1` (the ground state).
    #[default]
    Cold,
    /// Independent spins, each `±1` with probability 1/2 (infinite temperature).
    Hot,
    /// Independent spins that are `+1` with a probability `q` drawn uniformly from `[0, 1]`
    /// per chain: anything from nearly ordered (either sign) to fully disordered.
    Random,
}

/// What to sample; see the module docs for the meaning of each stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IsingConfig {
    /// Lattice side `L` (`L × L` spins, periodic), at least 2.
    pub l: usize,
    /// Temperatures, one chain each, in output order; positive and finite.
    pub temps: Vec<f64>,
    /// Samples recorded per temperature, at least 1.
    pub samples_per_temp: usize,
    /// Equilibration length in sweep-equivalents: Wolff updates run until at least
    /// `equilibration_sweeps · L²` spins have been flipped (and at least
    /// [`MIN_PILOT_CLUSTERS`] clusters grown in the second half).
    pub equilibration_sweeps: usize,
    /// Least number of Wolff updates between samples. The number actually used at a
    /// temperature is fixed before sampling starts:
    /// `max(decorrelation_flips, ⌈DECORRELATION_SWEEPS · L² / ⟨n⟩_T⌉)`, with `⟨n⟩_T` the mean
    /// cluster size measured during equilibration.
    pub decorrelation_flips: usize,
    /// Seed of every chain's random numbers.
    pub seed: u64,
    /// Coupling `J` (positive: ferromagnet).
    pub j: f64,
    /// Initial state of each chain.
    pub start: Start,
}

impl Default for IsingConfig {
    /// `L = 16`, `T = 1.0, 1.1, …, 3.5` (26 temperatures), 400 samples per temperature, 200
    /// sweep-equivalents of equilibration, at least 10 Wolff updates between samples, seed 0,
    /// `J = 1`, cold start. Takes well under a second in release mode.
    fn default() -> Self {
        IsingConfig {
            l: 16,
            temps: (10..=35).map(|i| i as f64 / 10.0).collect(),
            samples_per_temp: 400,
            equilibration_sweeps: 200,
            decorrelation_flips: 10,
            seed: 0,
            j: 1.0,
            start: Start::Cold,
        }
    }
}

impl IsingConfig {
    /// Checks every field, naming the offending value.
    pub fn validate(&self) -> Result<()> {
        if self.l < 2 {
            return Err(Error::config(format!("Ising lattice side L must be at least 2, got {}", self.l)));
        }
        if self.l > 1 << 15 {
            return Err(Error::config(format!("Ising lattice side L = {} is too large (at most 32768)", self.l)));
        }
        if self.temps.is_empty() {
            return Err(Error::config("Ising temperature list is empty"));
        }
        for (i, &t) in self.temps.iter().enumerate() {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::config(format!(
                    "Ising temperature #{i} is {t}; temperatures must be positive and finite"
                )));
            }
        }
        if self.samples_per_temp < 1 {
            return Err(Error::config(format!(
                "Ising samples_per_temp must be at least 1, got {}",
                self.samples_per_temp
            )));
        }
        if !(self.j.is_finite() && self.j > 0.0) {
            return Err(Error::config(format!(
                "Ising coupling J must be positive and finite (ferromagnet), got {}",
                self.j
            )));
        }
        let too_many = || {
            Error::config(format!(
                "Ising output of {} temperatures x {} samples x {}^2 spins is too large",
                self.temps.len(),
                self.samples_per_temp,
                self.l
            ))
        };
        let n = self.temps.len().checked_mul(self.samples_per_temp).ok_or_else(too_many)?;
        n.checked_mul(self.l * self.l).filter(|&v| v <= isize::MAX as usize).ok_or_else(too_many)?;
        Ok(())
    }
}

/// Per-temperature facts about one chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainStats {
    /// The chain's temperature.
    pub temperature: f64,
    /// Mean Wolff cluster size `⟨n⟩_T` over the second half of equilibration.
    pub mean_cluster_size: f64,
    /// Wolff updates between samples, `k_T`.
    pub flips_per_sample: usize,
    /// Wolff updates during equilibration.
    pub equilibration_flips: usize,
}

/// Samples from [`generate`]: temperatures in the order of [`IsingConfig::temps`], each with
/// its `samples_per_temp` samples consecutive.
#[derive(Clone, Debug, PartialEq)]
pub struct IsingSamples {
    /// Lattice side `L`.
    pub l: usize,
    /// Spins `±1`, `n_samples · L²` values: sample-major, then row-major `(row, column)`.
    pub spins: Vec<i8>,
    /// Temperature of each sample.
    pub temperature: Vec<f64>,
    /// Energy per spin `H/L²` of each sample.
    pub energy: Vec<f64>,
    /// Signed magnetization per spin `Σs/L²` of each sample.
    pub magnetization: Vec<f64>,
    /// One entry per temperature, in the same order.
    pub chains: Vec<ChainStats>,
}

impl IsingSamples {
    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.temperature.len()
    }

    /// The `L²` spins of sample `i`, row-major.
    pub fn sample(&self, i: usize) -> &[i8] {
        let n = self.l * self.l;
        &self.spins[i * n..(i + 1) * n]
    }

    /// The spins as an `(n_samples, L, L)` array.
    pub fn to_array(&self) -> Array3<i8> {
        Array3::from_shape_vec((self.n_samples(), self.l, self.l), self.spins.clone())
            .expect("spins hold n_samples * L * L values")
    }

    /// The spins as `f32`, `(n_samples, L²)` row-major, ready for a dense autoencoder.
    pub fn spins_f32(&self) -> Vec<f32> {
        self.spins.iter().map(|&s| s as f32).collect()
    }

    /// Per-temperature averages, temperatures ascending.
    pub fn summary(&self) -> Vec<TemperatureSummary> {
        let abs_m = mean_abs_by_temperature(&self.temperature, &self.magnetization);
        let energy = mean_by_temperature(&self.temperature, &self.energy);
        let chi = susceptibility_by_temperature(&self.temperature, &self.magnetization, self.l);
        let heat = specific_heat_by_temperature(&self.temperature, &self.energy, self.l);
        let counts = group_by_temperature(&self.temperature);
        (0..counts.len())
            .map(|g| TemperatureSummary {
                temperature: abs_m[g].0,
                n: counts[g].1.len(),
                mean_abs_m: abs_m[g].1,
                mean_energy: energy[g].1,
                susceptibility: chi[g].1,
                specific_heat: heat[g].1,
            })
            .collect()
    }
}

/// Averages over the samples of one temperature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemperatureSummary {
    pub temperature: f64,
    /// Number of samples.
    pub n: usize,
    /// `⟨|m|⟩`.
    pub mean_abs_m: f64,
    /// `⟨e⟩`.
    pub mean_energy: f64,
    /// `χ_m = L² (⟨m²⟩ − ⟨|m|⟩²) / T`.
    pub susceptibility: f64,
    /// `C = L² (⟨e²⟩ − ⟨e⟩²) / T²`.
    pub specific_heat: f64,
}

/// Draws the samples described by `cfg` on all cores (or `MEMCELL_THREADS`); the result does
/// not depend on the number of threads.
pub fn generate(cfg: &IsingConfig) -> Result<IsingSamples> {
    generate_with_threads(cfg, 0)
}

/// [`generate`] on at most `threads` threads (0: `MEMCELL_THREADS` if set, else all cores).
/// Each temperature is one task; the output is bit-identical for any `threads`.
pub fn generate_with_threads(cfg: &IsingConfig, threads: usize) -> Result<IsingSamples> {
    cfg.validate()?;
    let n_t = cfg.temps.len();
    let threads = if threads > 0 {
        threads
    } else {
        std::env::var("MEMCELL_THREADS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
    .min(n_t);

    let run = |t: usize| run_chain(cfg, t, true);
    let chains: Vec<Chain> = if threads <= 1 {
        (0..n_t).map(run).collect()
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut done: Vec<(usize, Chain)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if t >= n_t {
                                break mine;
                            }
                            mine.push((t, run(t)));
                        }
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("Ising worker panicked")).collect()
        });
        done.sort_by_key(|(t, _)| *t);
        done.into_iter().map(|(_, c)| c).collect()
    };

    let n = n_t * cfg.samples_per_temp;
    let mut out = IsingSamples {
        l: cfg.l,
        spins: Vec::with_capacity(n * cfg.l * cfg.l),
        temperature: Vec::with_capacity(n),
        energy: Vec::with_capacity(n),
        magnetization: Vec::with_capacity(n),
        chains: Vec::with_capacity(n_t),
    };
    for (c, &t) in chains.into_iter().zip(&cfg.temps) {
        out.spins.extend_from_slice(&c.spins);
        out.temperature.extend(std::iter::repeat_n(t, cfg.samples_per_temp));
        out.energy.extend_from_slice(&c.energy);
        out.magnetization.extend_from_slice(&c.magnetization);
        out.chains.push(c.stats);
    }
    Ok(out)
}

/// The recorded samples of one temperature's chain.
struct Chain {
    spins: Vec<i8>,
    energy: Vec<f64>,
    magnetization: Vec<f64>,
    stats: ChainStats,
}

/// The lattice, its neighbour table and the Wolff cluster move.
struct Lattice {
    spins: Vec<i8>,
    /// Right, left, down, up neighbour of each site.
    nbr: Vec<[u32; 4]>,
    stack: Vec<u32>,
}

impl Lattice {
    fn new(l: usize, spins: Vec<i8>) -> Self {
        let nbr = (0..l * l)
            .map(|i| {
                let (r, c) = (i / l, i % l);
                let at = |r: usize, c: usize| (r * l + c) as u32;
                [at(r, (c + 1) % l), at(r, (c + l - 1) % l), at((r + 1) % l, c), at((r + l - 1) % l, c)]
            })
            .collect();
        Lattice { spins, nbr, stack: Vec::new() }
    }

    /// One Wolff update; returns the number of flipped spins. Spins are flipped as they join,
    /// so "aligned with the seed's old sign" also means "not yet in the cluster", and every
    /// bond from the cluster to an outside aligned spin is tried exactly once.
    fn wolff(&mut self, add: &Bernoulli, rng: &mut ChaCha8Rng) -> usize {
        let seed = rng.gen_range(0..self.spins.len());
        let s0 = self.spins[seed];
        self.spins[seed] = -s0;
        self.stack.clear();
        self.stack.push(seed as u32);
        let mut size = 1;
        while let Some(i) = self.stack.pop() {
            for &k in &self.nbr[i as usize] {
                let k = k as usize;
                if self.spins[k] == s0 && add.sample(rng) {
                    self.spins[k] = -s0;
                    self.stack.push(k as u32);
                    size += 1;
                }
            }
        }
        size
    }

    /// `Σ_<ij> s_i s_j` over the `2 L²` bonds (right and down neighbour of each site).
    fn bond_sum(&self) -> i64 {
        let mut sum = 0i64;
        for (i, nb) in self.nbr.iter().enumerate() {
            let s = self.spins[i] as i64;
            sum += s * (self.spins[nb[0] as usize] as i64 + self.spins[nb[2] as usize] as i64);
        }
        sum
    }

    fn spin_sum(&self) -> i64 {
        self.spins.iter().map(|&s| s as i64).sum()
    }

    fn flip_all(&mut self) {
        for s in &mut self.spins {
            *s = -*s;
        }
    }
}

/// Runs chain `t` of `cfg` (validated). `global_flip: false` drops the `s → −s` move, for
/// tests of the raw Wolff chain.
fn run_chain(cfg: &IsingConfig, t: usize, global_flip: bool) -> Chain {
    let temp = cfg.temps[t];
    let l = cfg.l;
    let n = l * l;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(t as u64);

    let spins = match cfg.start {
        Start::Cold => vec![1i8; n],
        Start::Hot => (0..n).map(|_| if rng.gen::<bool>() { 1 } else { -1 }).collect(),
        Start::Random => {
            let q: f64 = rng.gen();
            (0..n).map(|_| if rng.gen::<f64>() < q { 1 } else { -1 }).collect()
        }
    };
    let mut lat = Lattice::new(l, spins);
    let p = -(-2.0 * cfg.j / temp).exp_m1(); // 1 − exp(−2J/T), accurate for small 2J/T
    let add = Bernoulli::new(p.clamp(0.0, 1.0)).expect("probability in [0, 1]");

    // Equilibration, with the pilot mean cluster size over its second half.
    let budget = cfg.equilibration_sweeps.saturating_mul(n);
    let (mut flipped, mut eq_flips, mut pilot_spins, mut pilot_count) = (0usize, 0usize, 0usize, 0usize);
    while flipped < budget || pilot_count < MIN_PILOT_CLUSTERS {
        let in_pilot = flipped >= budget / 2;
        let size = lat.wolff(&add, &mut rng);
        flipped = flipped.saturating_add(size);
        eq_flips += 1;
        if in_pilot {
            pilot_spins += size;
            pilot_count += 1;
        }
    }
    let mean_cluster = pilot_spins as f64 / pilot_count as f64;
    let k = ((DECORRELATION_SWEEPS * n as f64 / mean_cluster).ceil() as usize).max(cfg.decorrelation_flips).max(1);

    let ns = cfg.samples_per_temp;
    let mut chain = Chain {
        spins: Vec::with_capacity(ns * n),
        energy: Vec::with_capacity(ns),
        magnetization: Vec::with_capacity(ns),
        stats: ChainStats {
            temperature: temp,
            mean_cluster_size: mean_cluster,
            flips_per_sample: k,
            equilibration_flips: eq_flips,
        },
    };
    for _ in 0..ns {
        for _ in 0..k {
            lat.wolff(&add, &mut rng);
        }
        if global_flip && rng.gen::<bool>() {
            lat.flip_all();
        }
        chain.spins.extend_from_slice(&lat.spins);
        chain.energy.push(-cfg.j * lat.bond_sum() as f64 / n as f64);
        chain.magnetization.push(lat.spin_sum() as f64 / n as f64);
    }
    chain
}

/// Parses a temperature list: `"start:stop:step"` (inclusive of `stop` up to rounding;
/// values are `start + i·step`, rounded to 1e-9) or a comma-separated list such as
/// `"1.0,2.269,3.0"` (a single number is a one-element list). Temperatures must be positive
/// and finite; a range needs `step > 0` and `stop ≥ start`.
pub fn parse_temps(spec: &str) -> Result<Vec<f64>> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(Error::config("empty temperature list"));
    }
    let num = |s: &str, what: &str| -> Result<f64> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| Error::config(format!("temperature {what} {:?} in {spec:?} is not a number", s.trim())))?;
        if !v.is_finite() {
            return Err(Error::config(format!("temperature {what} {v} in {spec:?} is not finite")));
        }
        Ok(v)
    };
    let temps = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 {
            return Err(Error::config(format!(
                "temperature range {spec:?} must be start:stop:step, got {} fields",
                parts.len()
            )));
        }
        let (start, stop, step) = (num(parts[0], "start")?, num(parts[1], "stop")?, num(parts[2], "step")?);
        if step <= 0.0 {
            return Err(Error::config(format!("temperature step {step} in {spec:?} must be positive")));
        }
        if stop < start {
            return Err(Error::config(format!("temperature stop {stop} is below start {start} in {spec:?}")));
        }
        let span = (stop - start) / step;
        if span + 1.0 > MAX_TEMPS as f64 {
            return Err(Error::config(format!(
                "temperature range {spec:?} has {} values, more than {MAX_TEMPS}",
                span.floor() + 1.0
            )));
        }
        let count = (span + 1e-9).floor() as usize + 1;
        (0..count).map(|i| round9(start + i as f64 * step)).collect::<Vec<_>>()
    } else {
        spec.split(',').map(|s| num(s, "value")).collect::<Result<Vec<_>>>()?
    };
    if let Some(&t) = temps.iter().find(|&&t| t <= 0.0) {
        return Err(Error::config(format!("temperature {t} in {spec:?} must be positive")));
    }
    Ok(temps)
}

fn round9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// Sample indices grouped by exact temperature (bit equality), temperatures ascending.
fn group_by_temperature(temps: &[f64]) -> Vec<(f64, Vec<usize>)> {
    let mut idx: Vec<usize> = (0..temps.len()).collect();
    idx.sort_by(|&a, &b| temps[a].total_cmp(&temps[b]).then(a.cmp(&b)));
    let mut groups: Vec<(f64, Vec<usize>)> = Vec::new();
    for i in idx {
        match groups.last_mut() {
            Some((t, g)) if t.to_bits() == temps[i].to_bits() => g.push(i),
            _ => groups.push((temps[i], vec![i])),
        }
    }
    groups
}

fn check_lengths(temps: &[f64], values: &[f64]) {
    assert_eq!(
        temps.len(),
        values.len(),
        "one temperature per value: {} temperatures, {} values",
        temps.len(),
        values.len()
    );
}

/// `χ(T) = L² (⟨v²⟩ − ⟨|v|⟩²) / T` for each distinct temperature (values grouped by exact
/// temperature), temperatures ascending. `v` is any per-sample scalar: the magnetization
/// `m`, or an autoencoder's 1-D code `z`.
///
/// # Panics
/// If `temps` and `values` differ in length.
pub fn susceptibility_by_temperature(temps: &[f64], values: &[f64], l: usize) -> Vec<(f64, f64)> {
    check_lengths(temps, values);
    let n = (l * l) as f64;
    group_by_temperature(temps)
        .into_iter()
        .map(|(t, g)| {
            let mean = g.iter().map(|&i| values[i].abs()).sum::<f64>() / g.len() as f64;
            let var = g.iter().map(|&i| (values[i].abs() - mean).powi(2)).sum::<f64>() / g.len() as f64;
            (t, n * var / t)
        })
        .collect()
}

/// `C(T) = L² (⟨e²⟩ − ⟨e⟩²) / T²` from per-spin energies, per distinct temperature, ascending.
///
/// # Panics
/// If `temps` and `energy` differ in length.
pub fn specific_heat_by_temperature(temps: &[f64], energy: &[f64], l: usize) -> Vec<(f64, f64)> {
    check_lengths(temps, energy);
    let n = (l * l) as f64;
    group_by_temperature(temps)
        .into_iter()
        .map(|(t, g)| {
            let mean = g.iter().map(|&i| energy[i]).sum::<f64>() / g.len() as f64;
            let var = g.iter().map(|&i| (energy[i] - mean).powi(2)).sum::<f64>() / g.len() as f64;
            (t, n * var / (t * t))
        })
        .collect()
}

/// `⟨v⟩` per distinct temperature (exact grouping), temperatures ascending; e.g. the energy.
///
/// # Panics
/// If `temps` and `values` differ in length.
pub fn mean_by_temperature(temps: &[f64], values: &[f64]) -> Vec<(f64, f64)> {
    check_lengths(temps, values);
    group_by_temperature(temps)
        .into_iter()
        .map(|(t, g)| (t, g.iter().map(|&i| values[i]).sum::<f64>() / g.len() as f64))
        .collect()
}

/// `⟨|v|⟩` per distinct temperature (exact grouping), temperatures ascending; e.g. `⟨|m|⟩`.
///
/// # Panics
/// If `temps` and `values` differ in length.
pub fn mean_abs_by_temperature(temps: &[f64], values: &[f64]) -> Vec<(f64, f64)> {
    check_lengths(temps, values);
    group_by_temperature(temps)
        .into_iter()
        .map(|(t, g)| (t, g.iter().map(|&i| values[i].abs()).sum::<f64>() / g.len() as f64))
        .collect()
}

/// The temperature at which a curve such as [`susceptibility_by_temperature`]'s is largest
/// (the first one on ties; NaN values are skipped). `None` for an empty or all-NaN curve.
pub fn peak_temperature(curve: &[(f64, f64)]) -> Option<f64> {
    curve
        .iter()
        .filter(|(_, v)| !v.is_nan())
        .fold(None, |best: Option<(f64, f64)>, &(t, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((t, v)),
        })
        .map(|(t, _)| t)
}

/// Where [`write_outputs`] puts its two files. If `dir_or_prefix` is an existing directory
/// or ends with a path separator: `DIR/ising_L{L}.npy` and `DIR/ising_L{L}.csv`; otherwise it
/// is a prefix: `PREFIX.npy` and `PREFIX.csv` (e.g. `out/run1` → `out/run1.npy`,
/// `out/run1.csv`).
pub fn output_paths(l: usize, dir_or_prefix: &Path) -> (PathBuf, PathBuf) {
    let s = dir_or_prefix.as_os_str().to_string_lossy();
    let is_dir = dir_or_prefix.is_dir() || s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR);
    if is_dir {
        let stem = format!("ising_L{l}");
        (dir_or_prefix.join(format!("{stem}.npy")), dir_or_prefix.join(format!("{stem}.csv")))
    } else {
        let with = |ext: &str| {
            let mut p = dir_or_prefix.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        };
        (with(".npy"), with(".csv"))
    }
}

/// Writes the spins as an `int8` `.npy` array of shape `(n_samples, L, L)` and a CSV with
/// header `temperature,energy,magnetization` and one row per sample in the same order
/// (values printed with Rust's shortest exact representation). File names: see
/// [`output_paths`]; missing folders are created. Each file is written atomically (temporary
/// file, then rename): a failure leaves no half-written file.
pub fn write_outputs(s: &IsingSamples, dir_or_prefix: &Path) -> Result<()> {
    let n = s.n_samples();
    if s.spins.len() != n * s.l * s.l || s.energy.len() != n || s.magnetization.len() != n {
        return Err(Error::data(format!(
            "Ising samples are inconsistent: {} spins, {} temperatures, {} energies, {} magnetizations for L = {}",
            s.spins.len(),
            n,
            s.energy.len(),
            s.magnetization.len(),
            s.l
        )));
    }
    let (npy, csv) = output_paths(s.l, dir_or_prefix);
    let mut bytes = Vec::with_capacity(s.spins.len() + 128);
    s.to_array().write_npy(&mut bytes).map_err(|e| Error::io(&npy, std::io::Error::other(e.to_string())))?;
    let mut text = String::with_capacity(48 * n + 40);
    text.push_str("temperature,energy,magnetization\n");
    for i in 0..n {
        use std::fmt::Write;
        let _ = writeln!(text, "{},{},{}", s.temperature[i], s.energy[i], s.magnetization[i]);
    }
    crate::io::write_atomic(&npy, &bytes)?;
    crate::io::write_atomic(&csv, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(l: usize, temps: Vec<f64>, samples: usize, seed: u64) -> IsingConfig {
        IsingConfig { l, temps, samples_per_temp: samples, seed, ..IsingConfig::default() }
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Mean and its standard error from 20 batch means (robust to autocorrelation).
    fn mean_and_error(v: &[f64]) -> (f64, f64) {
        let b = 20;
        let size = v.len() / b;
        let means: Vec<f64> = (0..b).map(|i| mean(&v[i * size..(i + 1) * size])).collect();
        let m = mean(&means);
        let var = means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (b - 1) as f64;
        (m, (var / b as f64).sqrt())
    }

    #[test]
    fn same_seed_same_samples_other_seed_other_samples() {
        let a = generate(&cfg(8, vec![1.5, 2.3, 3.0], 50, 7)).unwrap();
        let b = generate(&cfg(8, vec![1.5, 2.3, 3.0], 50, 7)).unwrap();
        assert_eq!(a, b);
        let c = generate(&cfg(8, vec![1.5, 2.3, 3.0], 50, 8)).unwrap();
        assert_ne!(a.spins, c.spins);
        assert_ne!(a.energy, c.energy);
        // Temperatures do not share random numbers: two equal temperatures differ.
        let d = generate(&cfg(8, vec![2.3, 2.3], 50, 7)).unwrap();
        assert_ne!(d.sample(0), d.sample(50));
    }

    #[test]
    fn thread_count_does_not_change_samples() {
        let c = cfg(8, vec![1.0, 1.7, 2.2, 2.4, 3.1], 30, 3);
        let one = generate_with_threads(&c, 1).unwrap();
        assert_eq!(one, generate_with_threads(&c, 2).unwrap());
        assert_eq!(one, generate_with_threads(&c, 7).unwrap());
    }

    #[test]
    fn samples_are_consistent() {
        let s = generate(&cfg(6, vec![2.0, 2.5], 20, 1)).unwrap();
        assert_eq!(s.n_samples(), 40);
        assert_eq!(s.spins.len(), 40 * 36);
        assert!(s.spins.iter().all(|&x| x == 1 || x == -1));
        assert_eq!(s.temperature[19], 2.0);
        assert_eq!(s.temperature[20], 2.5);
        for i in 0..s.n_samples() {
            let x = s.sample(i);
            let m = x.iter().map(|&v| v as f64).sum::<f64>() / 36.0;
            assert_eq!(m, s.magnetization[i]);
            let mut bonds = 0.0;
            for r in 0..6 {
                for c in 0..6 {
                    let v = x[r * 6 + c] as f64;
                    bonds += v * (x[r * 6 + (c + 1) % 6] as f64 + x[((r + 1) % 6) * 6 + c] as f64);
                }
            }
            assert_eq!(-bonds / 36.0, s.energy[i]);
        }
        assert_eq!(s.chains.len(), 2);
        assert!(s.chains.iter().all(|c| c.flips_per_sample >= 10 && c.mean_cluster_size >= 1.0));
    }

    #[test]
    fn ordered_at_low_t_with_both_signs_disordered_at_high_t() {
        let s = generate(&cfg(16, vec![1.0, 3.5], 400, 0)).unwrap();
        let (low, high) = s.magnetization.split_at(400);
        let abs_low = mean(&low.iter().map(|m| m.abs()).collect::<Vec<_>>());
        let abs_high = mean(&high.iter().map(|m| m.abs()).collect::<Vec<_>>());
        assert!(abs_low > 0.99, "<|m|>(T=1) = {abs_low}");
        assert!(abs_high < 0.3, "<|m|>(T=3.5) = {abs_high}");
        // The global flip makes the sign a fair coin: 400 draws, sd 10 around 200.
        let positive = low.iter().filter(|&&m| m > 0.0).count();
        assert!((150..=250).contains(&positive), "{positive} of 400 samples positive at T = 1");
        let changes = low.windows(2).filter(|w| w[0].signum() != w[1].signum()).count();
        assert!(changes > 100, "sign changed only {changes} times");
        for start in [Start::Hot, Start::Random] {
            let s = generate(&IsingConfig { start, ..cfg(16, vec![1.0], 100, 0) }).unwrap();
            let abs = mean(&s.magnetization.iter().map(|m| m.abs()).collect::<Vec<_>>());
            assert!(abs > 0.99, "{start:?} start: <|m|>(T=1) = {abs}");
        }
    }

    /// Why the global flip is there: the raw Wolff chain at T = 1 keeps (nearly) one sign,
    /// or alternates it, because each update flips almost the whole lattice.
    #[test]
    fn raw_chain_rarely_changes_sign_at_low_t() {
        let c = cfg(16, vec![1.0], 400, 0);
        c.validate().unwrap();
        let chain = run_chain(&c, 0, false);
        let m = &chain.magnetization;
        let changes = m.windows(2).filter(|w| w[0].signum() != w[1].signum()).count();
        // With an even k_T the sign almost never changes, with an odd one almost always.
        let k = chain.stats.flips_per_sample;
        if k.is_multiple_of(2) {
            assert!(changes < 20, "k = {k}: {changes} sign changes");
        } else {
            assert!(changes > 380, "k = {k}: {changes} sign changes");
        }
    }

    #[test]
    fn energy_matches_onsager_near_tc_and_ground_state_at_low_t() {
        let s = generate(&cfg(16, vec![2.269, 1.0], 2000, 11)).unwrap();
        let (crit, low) = s.energy.split_at(2000);
        let (e, err) = mean_and_error(crit);
        assert!((e + std::f64::consts::SQRT_2).abs() < 0.05, "e(2.269) = {e} ± {err}");
        assert!(err < 0.01, "error {err}");
        let e_low = mean(low);
        // Infinite lattice: e(T=1) = −1.99715.
        assert!((-2.0..-1.99).contains(&e_low), "e(1.0) = {e_low}");
    }

    #[test]
    fn susceptibility_peaks_near_2_4_for_l16() {
        let temps = parse_temps("1.0:3.5:0.1").unwrap();
        for seed in [0, 1] {
            let s = generate(&cfg(16, temps.clone(), 400, seed)).unwrap();
            let chi = susceptibility_by_temperature(&s.temperature, &s.magnetization, 16);
            assert_eq!(chi.len(), 26);
            let peak = peak_temperature(&chi).unwrap();
            assert!((2.3..=2.5).contains(&peak), "seed {seed}: chi peaks at {peak}: {chi:?}");
            let summary = s.summary();
            assert_eq!(summary.len(), 26);
            assert_eq!(summary[14].temperature, 2.4);
            assert_eq!(summary[14].n, 400);
        }
    }

    /// Exact Boltzmann averages by enumerating all `2^(L²)` states.
    fn exact(l: usize, t: f64) -> (f64, f64) {
        let n = l * l;
        let (mut z, mut e_sum, mut m2_sum) = (0.0, 0.0, 0.0);
        for state in 0u32..(1 << n) {
            let s = |i: usize| if state >> i & 1 == 1 { 1.0 } else { -1.0 };
            let mut bonds = 0.0;
            let mut mag = 0.0;
            for r in 0..l {
                for c in 0..l {
                    let v = s(r * l + c);
                    mag += v;
                    bonds += v * (s(r * l + (c + 1) % l) + s(((r + 1) % l) * l + c));
                }
            }
            let e = -bonds / n as f64;
            let w = (-(n as f64) * e / t).exp();
            z += w;
            e_sum += w * e;
            m2_sum += w * (mag / n as f64).powi(2);
        }
        (e_sum / z, m2_sum / z)
    }

    #[test]
    fn wolff_reproduces_exact_averages_on_tiny_lattices() {
        for (l, t) in [(3, 2.0), (3, 3.0), (2, 2.0)] {
            let (e_exact, m2_exact) = exact(l, t);
            let s = generate(&IsingConfig { start: Start::Hot, ..cfg(l, vec![t], 40_000, 5) }).unwrap();
            let (e, e_err) = mean_and_error(&s.energy);
            let m2: Vec<f64> = s.magnetization.iter().map(|m| m * m).collect();
            let (m2, m2_err) = mean_and_error(&m2);
            assert!((e - e_exact).abs() < 4.0 * e_err + 1e-12, "L={l} T={t}: <e> {e} ± {e_err}, exact {e_exact}");
            assert!(
                (m2 - m2_exact).abs() < 4.0 * m2_err + 1e-12,
                "L={l} T={t}: <m²> {m2} ± {m2_err}, exact {m2_exact}"
            );
            assert!(e_err < 0.01 && m2_err < 0.01, "errors {e_err} {m2_err}");
        }
    }

    #[test]
    fn parse_temps_ranges_and_lists() {
        let r = parse_temps("1.0:3.5:0.1").unwrap();
        assert_eq!(r.len(), 26);
        assert_eq!(r[0], 1.0);
        assert_eq!(r[13], 2.3);
        assert_eq!(r[25], 3.5);
        assert_eq!(r, (10..=35).map(|i| i as f64 / 10.0).collect::<Vec<_>>());
        assert_eq!(parse_temps("0.1:0.3:0.1").unwrap(), vec![0.1, 0.2, 0.3]);
        assert_eq!(parse_temps("2.0:2.8:0.1").unwrap().len(), 9);
        assert_eq!(parse_temps("2:3:0.3").unwrap(), vec![2.0, 2.3, 2.6, 2.9]);
        assert_eq!(parse_temps("2.5:2.5:0.1").unwrap(), vec![2.5]);
        assert_eq!(parse_temps(" 1.0, 2.269 ,3.0 ").unwrap(), vec![1.0, 2.269, 3.0]);
        assert_eq!(parse_temps("2.269").unwrap(), vec![2.269]);
        assert_eq!(IsingConfig::default().temps, r);
    }

    #[test]
    fn parse_temps_errors_name_the_bad_value() {
        let err = |s: &str| parse_temps(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("1.0:abc:0.1").contains("\"abc\""));
        assert!(err("1.0:3.0").contains("start:stop:step"));
        assert!(err("1:2:3:4").contains("4 fields"));
        assert!(err("1.0:3.0:0").contains("step 0"));
        assert!(err("1.0:3.0:-0.1").contains("step -0.1"));
        assert!(err("3.0:1.0:0.1").contains("stop 1"));
        assert!(err("1.0,,2.0").contains("\"\""));
        assert!(err("1.0,-2.0").contains("-2"));
        assert!(err("0:1:0.5").contains("temperature 0"));
        assert!(err("1.0,inf").contains("inf"));
        assert!(err("1.0,NaN").contains("NaN"));
        assert!(err("1:1e9:1e-3").contains("more than"));
    }

    #[test]
    fn invalid_configs_are_rejected_with_the_value() {
        let bad = |c: IsingConfig| generate(&c).unwrap_err().to_string();
        assert!(bad(IsingConfig { l: 1, ..IsingConfig::default() }).contains("got 1"));
        assert!(bad(IsingConfig { temps: vec![], ..IsingConfig::default() }).contains("empty"));
        assert!(bad(IsingConfig { temps: vec![2.0, -1.0], ..IsingConfig::default() }).contains("#1 is -1"));
        assert!(bad(IsingConfig { temps: vec![f64::NAN], ..IsingConfig::default() }).contains("NaN"));
        assert!(bad(IsingConfig { temps: vec![0.0], ..IsingConfig::default() }).contains("is 0"));
        assert!(bad(IsingConfig { samples_per_temp: 0, ..IsingConfig::default() }).contains("got 0"));
        assert!(bad(IsingConfig { j: -1.0, ..IsingConfig::default() }).contains("got -1"));
        assert!(bad(IsingConfig { l: usize::MAX / 2, ..IsingConfig::default() }).contains("too large"));
    }

    #[test]
    fn susceptibility_groups_by_exact_temperature() {
        let temps = [2.0, 1.0, 2.0, 1.0, 2.0, 2.0];
        let values = [0.5, 0.1, -0.5, 0.3, 1.0, -1.0];
        let chi = susceptibility_by_temperature(&temps, &values, 4);
        // T = 1: |v| = {0.1, 0.3}, var 0.01 -> 16 * 0.01 / 1; T = 2: |v| = {.5,.5,1,1}, var 1/16 -> 16/16/2.
        assert_eq!(chi.len(), 2);
        assert_eq!(chi[0].0, 1.0);
        assert!((chi[0].1 - 0.16).abs() < 1e-12);
        assert!((chi[1].1 - 0.5).abs() < 1e-12);
        assert_eq!(mean_abs_by_temperature(&temps, &values), vec![(1.0, 0.2), (2.0, 0.75)]);
        let m = mean_by_temperature(&temps, &values);
        assert!((m[0].1 - 0.2).abs() < 1e-12 && m[1].1.abs() < 1e-12);
        assert_eq!(peak_temperature(&chi), Some(2.0));
        assert_eq!(peak_temperature(&[]), None);
        assert_eq!(peak_temperature(&[(1.0, f64::NAN), (2.0, 0.0)]), Some(2.0));
        let c = specific_heat_by_temperature(&[2.0, 2.0], &[-1.0, -2.0], 2);
        assert!((c[0].1 - 4.0 * 0.25 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn writes_npy_and_csv_atomically() {
        use ndarray_npy::ReadNpyExt;
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&cfg(4, vec![1.5, 3.0], 3, 2)).unwrap();
        write_outputs(&s, dir.path()).unwrap();
        let (npy, csv) = output_paths(4, dir.path());
        assert_eq!(npy, dir.path().join("ising_L4.npy"));
        let arr = Array3::<i8>::read_npy(std::fs::File::open(&npy).unwrap()).unwrap();
        assert_eq!(arr.shape(), &[6, 4, 4]);
        assert_eq!(arr.as_slice().unwrap(), &s.spins[..]);
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "temperature,energy,magnetization");
        for (i, line) in lines[1..].iter().enumerate() {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            assert_eq!(v, vec![s.temperature[i], s.energy[i], s.magnetization[i]]);
        }
        // A prefix gets PREFIX.npy / PREFIX.csv, in folders created on the way.
        let prefix = dir.path().join("sub").join("run1");
        write_outputs(&s, &prefix).unwrap();
        assert!(dir.path().join("sub/run1.npy").is_file() && dir.path().join("sub/run1.csv").is_file());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        // Inconsistent samples are refused before anything is written.
        let mut broken = s.clone();
        broken.energy.pop();
        let other = dir.path().join("broken");
        assert!(write_outputs(&broken, &other).unwrap_err().to_string().contains("inconsistent"));
        assert!(!dir.path().join("broken.npy").exists());
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = IsingConfig { start: Start::Random, ..IsingConfig::default() };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"random\""));
        assert_eq!(serde_json::from_str::<IsingConfig>(&json).unwrap(), c);
        let partial: IsingConfig = serde_json::from_str(r#"{"l": 8, "seed": 3}"#).unwrap();
        assert_eq!(partial.l, 8);
        assert_eq!(partial.samples_per_temp, 400);
    }
}
