//! The `memcell` command line.

use clap::{Args, Parser, Subcommand};
use memcell::experiment::{self, config::RunConfig, output, FitSpec, ModelSpec, Progress, RunResult};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "memcell",
    version,
    about = "Recurrent networks (SimpleRNN, LSTM, GRU) and autoencoders for scientific data, with Keras semantics"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the seed note's five experiments on the bundled CCD pairing-energy series.
    Seed {
        /// Seeds per model (0, 1, ..., N-1).
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Comma-separated subset of S1,S2,S3,S4,S5.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the experiments of a TOML config on your own series.
    Run {
        config: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Generate data sets.
    #[command(subcommand)]
    Data(DataCmd),
    /// Check memcell against Keras reference fixtures (files, or folders of .safetensors).
    Verify {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Time the benchmark workloads (bench/WORKLOADS.md), each in its own child process, and
    /// print a table (seconds, samples/s, GFLOP/s, % of the measured SGEMM peak, peak RSS).
    Bench {
        /// Workload ids or names, e.g. `S1 M1` or `seed-rnn,lstm-medium` (default: all, the
        /// `sgemm` peak first). Known: sgemm, S1-S5, M1-M3, L1, I1, A1.
        workloads: Vec<String>,
        /// Write the results as a JSON array (one object per workload) to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Timed repeats per workload (default: 5 for the seed workloads, 3 for the others).
        #[arg(long, value_name = "N")]
        repeats: Option<usize>,
        /// Threads for the matrix products.
        #[arg(long, value_name = "N", default_value_t = 2)]
        threads: usize,
        /// Reduced sizes, for tests (never for figures).
        #[arg(long)]
        smoke: bool,
        /// Print the workload definitions with their FLOP counts (with --json: write them) and exit.
        #[arg(long)]
        list: bool,
        /// Write the workloads' data as .npy files into DIR (for the Python peers) and exit.
        #[arg(long, value_name = "DIR")]
        write_data: Option<PathBuf>,
        /// Run one workload in this process and print its result as one JSON line (internal).
        #[arg(long, hide = true, value_name = "ID")]
        child: Option<String>,
    },
}

#[derive(Args)]
struct Common {
    /// Output folder (replaced when the run succeeds).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the final table.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum DataCmd {
    /// CCD correlation energies of the pairing model (levels = N, spacing 1), as CSV.
    Pairing {
        /// Coupling strength g.
        #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
        g: f64,
        /// Particle numbers: start:stop:step (inclusive) or a comma list.
        #[arg(long, default_value = "2:40:2")]
        n: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Verify { paths } => verify(&paths),
        Cmd::Bench { workloads, json, repeats, threads, smoke, list, write_data, child } => {
            let o = memcell::bench::BenchOptions { workloads, json, repeats, threads, smoke, list, write_data, child };
            memcell::bench::run_cli(&o).map(|()| ExitCode::SUCCESS).map_err(anyhow::Error::from)
        }
        Cmd::Seed { seeds, models, common } => seed(seeds, &models, &common),
        Cmd::Run { config, common } => run(&config, &common),
        Cmd::Data(DataCmd::Pairing { g, n, out }) => pairing(g, &n, out),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

struct Printer {
    quiet: bool,
}

impl Progress for Printer {
    fn run_done(&mut self, spec: &ModelSpec, r: &RunResult) {
        if !self.quiet {
            eprintln!(
                "{:<3} seed {:<3} mse_all {:.3e}  mse_extrapolated {:.3e}  loss {:.3e}  val_loss {}  {:.2} s",
                spec.id,
                r.seed,
                r.mse_all,
                r.mse_extrapolated,
                r.final_loss,
                r.final_val_loss.map(|v| format!("{v:.3e}")).unwrap_or_else(|| "-".into()),
                r.seconds
            );
        }
    }
}

fn execute(
    series: &memcell::datasets::Series,
    description: &str,
    train: usize,
    specs: &[ModelSpec],
    fit: &FitSpec,
    common: &Common,
    default_out: &str,
) -> anyhow::Result<ExitCode> {
    let out = common.out.clone().unwrap_or_else(|| PathBuf::from(default_out));
    if !common.quiet {
        eprintln!(
            "{} model(s) x {} seed(s), {} epochs, training on the first {train} of {} points; results -> {}",
            specs.len(),
            fit.seeds.len(),
            fit.epochs,
            series.len(),
            out.display()
        );
    }
    let mut p = Printer { quiet: common.quiet };
    let results = experiment::run_all(series, description, train, specs, fit, &mut p)?;
    let table = output::write_outputs(&results, &out)?;
    print!("{table}");
    if !common.quiet {
        println!("wrote {}/results.json, report.html, figures and CSVs", out.display());
        if std::io::stdout().is_terminal() {
            println!("open {}/report.html in a browser", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn seed(seeds: u64, models: &[String], common: &Common) -> anyhow::Result<ExitCode> {
    if seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    let all = experiment::seed_specs();
    let specs: Vec<ModelSpec> = if models.is_empty() {
        all
    } else {
        let mut v = Vec::new();
        for m in models {
            let m = m.trim().to_uppercase();
            match all.iter().find(|s| s.id == m) {
                Some(s) => v.push(s.clone()),
                None => anyhow::bail!("unknown model '{m}' in --models (known: S1, S2, S3, S4, S5)"),
            }
        }
        v
    };
    let fit = FitSpec { seeds: (0..seeds).collect(), ..FitSpec::default() };
    let series = memcell::datasets::seed_series();
    execute(&series, experiment::SEED_DESCRIPTION, memcell::datasets::SEED_TRAIN, &specs, &fit, common, "out/seed")
}

fn run(config: &std::path::Path, common: &Common) -> anyhow::Result<ExitCode> {
    let cfg = RunConfig::load(config)?;
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    execute(&cfg.series, &cfg.description, cfg.train, &cfg.specs, &cfg.fit, common, &format!("out/{stem}"))
}

fn pairing(g: f64, n: &str, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let ns = memcell::datasets::pairing::parse_range(n)?;
    let csv = memcell::datasets::pairing::pairing_csv(g, &ns)?;
    match out {
        Some(p) => memcell::io::write_atomic(&p, csv.as_bytes())?,
        None => print!("{csv}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = memcell::verify::collect(paths);
    if files.is_empty() {
        anyhow::bail!(
            "no fixtures found in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let (mut pass, mut fail) = (0, 0);
    for f in &files {
        let r = memcell::verify::run_fixture(f);
        println!("{}", r.line());
        if r.passed() {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    println!("{pass} passed, {fail} failed");
    Ok(if fail == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
