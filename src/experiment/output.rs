//! The results folder: `results.json`, per-run CSVs, figures (PNG and SVG), `report.html`,
//! and the terminal summary. Everything is written into a staging folder next to the target
//! and moved into place at the end, so a failure never leaves a half-written results folder.

use super::{ExperimentResult, Results};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A folder that becomes `target` only when [`Staging::commit`] is called; dropped without
/// commit, it is removed.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Staging {
    pub fn new(target: &Path) -> Result<Self> {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = target.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let dir = parent.join(format!(".{name}.tmp{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Staging { dir, target: target.to_path_buf(), done: false })
    }

    /// Replaces `target` with the staged folder.
    pub fn commit(mut self) -> Result<()> {
        let old = self.target.with_file_name(format!(
            ".{}.old{}",
            self.target.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        if self.target.exists() {
            std::fs::rename(&self.target, &old).map_err(|e| Error::io(&self.target, e))?;
        }
        std::fs::rename(&self.dir, &self.target).map_err(|e| Error::io(&self.target, e))?;
        if old.exists() {
            let _ = std::fs::remove_dir_all(&old);
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn csv_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:e}")
    } else {
        String::new()
    }
}

/// `x,true,predicted` for one run.
pub fn predictions_csv(x_name: &str, x: &[f64], truth: &[f64], pred: &[f64], train: usize) -> String {
    let mut s = format!("{x_name},true,predicted,region\n");
    for i in 0..x.len() {
        let _ = writeln!(
            s,
            "{},{},{},{}",
            x[i],
            csv_num(truth[i]),
            csv_num(pred[i]),
            if i < train { "train" } else { "extrapolated" }
        );
    }
    s
}

/// `epoch,loss,val_loss` (epochs from 1).
pub fn history_csv(loss: &[f64], val_loss: &[f64]) -> String {
    let mut s = String::from("epoch,loss,val_loss\n");
    for (i, l) in loss.iter().enumerate() {
        let _ = writeln!(s, "{},{},{}", i + 1, csv_num(*l), val_loss.get(i).map(|v| csv_num(*v)).unwrap_or_default());
    }
    s
}

/// The summary table printed on the terminal.
pub fn summary_table(r: &Results) -> String {
    let header = ["model", "params", "mse_all median", "min", "max", "mse_extrap median", "seconds (median)"];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for e in &r.experiments {
        let (med, lo, hi) = e.mse_stats();
        let ext = super::stats(&e.runs.iter().map(|x| x.mse_extrapolated).collect::<Vec<_>>()).0;
        rows.push(vec![
            format!("{} {}", e.id, e.title),
            crate::model::group(e.params),
            format!("{med:.3e}"),
            format!("{lo:.3e}"),
            format!("{hi:.3e}"),
            format!("{ext:.3e}"),
            format!("{:.3}", e.median_seconds()),
        ]);
    }
    for b in &r.baselines {
        rows.push(vec![
            format!("baseline {}", b.id),
            "-".into(),
            format!("{:.3e}", b.mse_all),
            "-".into(),
            "-".into(),
            format!("{:.3e}", b.mse_extrapolated),
            "-".into(),
        ]);
    }
    text_table(&header, &rows)
}

/// Aligned plain-text table: first column left-aligned, the others right-aligned.
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "{:<width$}", c, width = w[0]);
            } else {
                let _ = write!(s, "  {:>width$}", c, width = w[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &(w.iter().map(|k| "-".repeat(*k)).collect::<Vec<_>>().join("  ") + "\n");
    for r in rows {
        out += &line(r.iter().map(|s| s.as_str()).collect());
    }
    out
}

/// Writes everything into `out` (replacing it). Returns the summary table.
pub fn write_outputs(r: &Results, out: &Path) -> Result<String> {
    let stage = Staging::new(out)?;
    let d = &stage.dir;
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::config(format!("results.json: {e}")))?;
    write_atomic(&d.join("results.json"), &json)?;
    for e in &r.experiments {
        for run in &e.runs {
            write_atomic(
                &d.join("runs").join(format!("{}_seed{}_predictions.csv", e.id, run.seed)),
                predictions_csv(&r.data.x_name, &r.data.x, &r.data.y, &run.prediction, r.data.train).as_bytes(),
            )?;
            write_atomic(
                &d.join("runs").join(format!("{}_seed{}_history.csv", e.id, run.seed)),
                history_csv(&run.loss, &run.val_loss).as_bytes(),
            )?;
        }
    }
    for b in &r.baselines {
        write_atomic(
            &d.join("baselines").join(format!("{}_predictions.csv", b.id)),
            predictions_csv(&r.data.x_name, &r.data.x, &r.data.y, &b.prediction, r.data.train).as_bytes(),
        )?;
    }
    let table = summary_table(r) + "\n" + &verdict(r);
    write_atomic(&d.join("summary.txt"), table.as_bytes())?;
    super::figures::write_figures_and_report(r, d, &table)?;
    stage.commit()?;
    Ok(table)
}

/// One sentence per model on whether it beats a straight line (`poly1`) and the best
/// baseline, by median extrapolation error over seeds.
pub fn verdict(r: &Results) -> String {
    let mut out = String::new();
    let line = r.baselines.iter().find(|b| b.id == "poly1");
    let best = best_baseline(r);
    for e in &r.experiments {
        let ext = super::stats(&e.runs.iter().map(|x| x.mse_extrapolated).collect::<Vec<_>>()).0;
        let _ = write!(out, "{}: median mse_extrapolated {ext:.2e}", e.id);
        if let Some(l) = line {
            let _ = write!(
                out,
                ", {} a straight line ({:.2e})",
                if ext < l.mse_extrapolated { "beats" } else { "does not beat" },
                l.mse_extrapolated
            );
        }
        if let Some(b) = best {
            let _ = write!(
                out,
                ", {} the best baseline {} ({:.2e})",
                if ext < b.mse_extrapolated { "beats" } else { "does not beat" },
                b.id,
                b.mse_extrapolated
            );
        }
        out.push_str(".\n");
    }
    out
}

/// The best baseline by extrapolation error.
pub fn best_baseline(r: &Results) -> Option<&super::BaselineResult> {
    r.baselines.iter().min_by(|a, b| a.mse_extrapolated.total_cmp(&b.mse_extrapolated))
}

/// The run whose mse_all is the median one (for figures that show one representative run).
pub fn median_run(e: &ExperimentResult) -> Option<&super::RunResult> {
    let mut v: Vec<&super::RunResult> = e.runs.iter().collect();
    v.sort_by(|a, b| a.mse_all.total_cmp(&b.mse_all));
    v.get(v.len().saturating_sub(1) / 2).copied()
}
