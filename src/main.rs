//! The `memcell` command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "memcell", version, about = "Recurrent networks and autoencoders for scientific data, with Keras semantics")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check memcell against Keras reference fixtures (files, or folders of .safetensors).
    Verify {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Verify { paths } => verify(&paths),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn verify(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = memcell::verify::collect(paths);
    if files.is_empty() {
        anyhow::bail!("no fixtures found in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
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
