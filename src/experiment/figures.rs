//! The figures of an extrapolation run (PNG and SVG) and its self-contained `report.html`:
//! per model the loss curves and the prediction against the truth with the training region
//! shaded (as the note draws them), and one overview with every model's median prediction,
//! its spread over seeds and the best baseline.

use super::output::{best_baseline, median_run};
use super::{stats, ExperimentResult, Results};
use crate::error::Result;
use crate::report::{fmt_sci, LinePlot, Report, Series, OKABE_ITO};
use std::path::Path;

/// The training region as the note shades it: from the first to the last training x.
fn train_span(r: &Results) -> (f64, f64) {
    let x = &r.data.x;
    (x[0], x[r.data.train.saturating_sub(1).min(x.len() - 1)])
}

fn loss_plot(e: &ExperimentResult) -> LinePlot {
    let mut p = LinePlot::new()
        .title(format!("{} {}: loss per epoch", e.id, e.title))
        .x_label("epoch")
        .y_label("loss (MSE)")
        .log_y(true);
    let epochs = e.runs.first().map(|r| r.loss.len()).unwrap_or(0);
    let xs: Vec<f64> = (1..=epochs).map(|v| v as f64).collect();
    // The spread of the training loss over seeds, then the median run's curves on top.
    if e.runs.len() > 1 {
        let lo: Vec<f64> =
            (0..epochs).map(|i| stats(&e.runs.iter().map(|r| r.loss[i]).collect::<Vec<_>>()).1).collect();
        let hi: Vec<f64> =
            (0..epochs).map(|i| stats(&e.runs.iter().map(|r| r.loss[i]).collect::<Vec<_>>()).2).collect();
        p = p.band(format!("loss, min..max over {} seeds", e.runs.len()), &xs, &lo, &hi);
    }
    if let Some(m) = median_run(e) {
        p = p.series(Series::new(format!("loss (seed {})", m.seed), &xs, &m.loss).color(OKABE_ITO[0]));
        if !m.val_loss.is_empty() {
            p = p.series(
                Series::new(format!("val_loss (seed {})", m.seed), &xs, &m.val_loss).color(OKABE_ITO[1]).dashed(),
            );
        }
    }
    p
}

fn prediction_plot(r: &Results, e: &ExperimentResult) -> LinePlot {
    let (x0, x1) = train_span(r);
    let (med, lo, hi) = e.prediction_band();
    let mut p = LinePlot::new()
        .title(format!("{} {}", e.id, e.title))
        .x_label(&r.data.x_name)
        .y_label(r.data.y_names.first().map(String::as_str).unwrap_or("y"))
        .x_span(x0, x1, "training region")
        .series(Series::new("true", &r.data.x, &r.data.y).color(OKABE_ITO[0]).width(3.0));
    if e.runs.len() > 1 {
        p = p.band(format!("min..max over {} seeds", e.runs.len()), &r.data.x, &lo, &hi);
    }
    p.series(Series::new("predicted (median over seeds)", &r.data.x, &med).color(OKABE_ITO[2]).dashed().width(3.0))
}

fn overview_plot(r: &Results) -> LinePlot {
    let (x0, x1) = train_span(r);
    let mut p = LinePlot::new()
        .title("Median prediction over seeds (bands: min..max)")
        .x_label(&r.data.x_name)
        .y_label(r.data.y_names.first().map(String::as_str).unwrap_or("y"))
        .x_span(x0, x1, "training region")
        .series(Series::new("true", &r.data.x, &r.data.y).color(crate::report::Rgb::BLACK).width(3.0));
    for (i, e) in r.experiments.iter().enumerate() {
        let (med, lo, hi) = e.prediction_band();
        let c = OKABE_ITO[(i + 1) % OKABE_ITO.len()];
        p = p.series(Series::new(e.id.clone(), &r.data.x, &med).color(c).width(2.0));
        if e.runs.len() > 1 {
            p = p.band("", &r.data.x, &lo, &hi); // unlabelled: the caption explains the bands
        }
    }
    if let Some(b) = best_baseline(r) {
        p = p.series(
            Series::new(format!("best baseline: {}", b.id), &r.data.x, &b.prediction)
                .color(crate::report::Rgb::GRAY)
                .dashed(),
        );
    }
    p
}

/// Writes `overview`, `loss_<id>`, `prediction_<id>` (PNG + SVG) and `report.html` into `dir`.
pub fn write_figures_and_report(r: &Results, dir: &Path, table: &str) -> Result<()> {
    let overview = overview_plot(r);
    overview.write(dir, "overview")?;
    let mut rep = Report::new("memcell: extrapolation with recurrent networks");
    rep.paragraph(format!(
        "Data: {}. {} points; the first {} train (as windows or x -> y pairs), the rest are extrapolated \
         recursively from the last training points. memcell {}.",
        r.data.description,
        r.data.x.len(),
        r.data.train,
        r.memcell_version
    ));
    rep.paragraph(format!(
        "Training: {} epochs, batch {}, validation_split {}, loss {}, optimizer {}, seeds {:?}. \
         mse_all is the note's MSE over all points (training points count with their true values); \
         mse_extrapolated is over the extrapolated points only.",
        r.fit.epochs, r.fit.batch_size, r.fit.validation_split, r.fit.loss, r.fit.optimizer, r.fit.seeds
    ));
    rep.heading("Summary");
    let header = ["model", "architecture", "params", "mse_all median", "min", "max", "mse_extrap. median", "seconds"];
    let mut rows = Vec::new();
    for e in &r.experiments {
        let (med, lo, hi) = e.mse_stats();
        let ext = stats(&e.runs.iter().map(|x| x.mse_extrapolated).collect::<Vec<_>>()).0;
        rows.push(vec![
            e.id.clone(),
            e.title.clone(),
            crate::model::group(e.params),
            fmt_sci(med),
            fmt_sci(lo),
            fmt_sci(hi),
            fmt_sci(ext),
            format!("{:.3}", e.median_seconds()),
        ]);
    }
    rep.table(&header, &rows);
    for line in super::output::verdict(r).lines() {
        rep.paragraph(line);
    }
    if !r.baselines.is_empty() {
        rep.heading("Baselines on the same split");
        let rows: Vec<Vec<String>> = r
            .baselines
            .iter()
            .map(|b| {
                vec![
                    b.id.clone(),
                    b.description.clone(),
                    fmt_sci(b.mse_all),
                    fmt_sci(b.mse_extrapolated),
                    fmt_sci(b.max_abs_error),
                ]
            })
            .collect();
        rep.table(&["baseline", "method", "mse_all", "mse_extrapolated", "max |error|"], &rows);
    }
    rep.plot(
        "Every model's median prediction over seeds (line), its min..max (band), and the best baseline",
        &overview,
    )?;
    for e in &r.experiments {
        rep.heading(format!("{} {}", e.id, e.title));
        let pred = prediction_plot(r, e);
        pred.write(dir, &format!("prediction_{}", e.id))?;
        rep.plot(format!("{}: true series and prediction; the training region is shaded", e.id), &pred)?;
        let loss = loss_plot(e);
        loss.write(dir, &format!("loss_{}", e.id))?;
        rep.plot(
            format!("{}: loss and val_loss per epoch (median run), training-loss spread over seeds", e.id),
            &loss,
        )?;
        let runs: Vec<Vec<String>> = e
            .runs
            .iter()
            .map(|x| {
                vec![
                    x.seed.to_string(),
                    fmt_sci(x.mse_all),
                    fmt_sci(x.mse_extrapolated),
                    fmt_sci(x.max_abs_error),
                    fmt_sci(x.final_loss),
                    x.final_val_loss.map(fmt_sci).unwrap_or_else(|| "—".into()),
                    format!("{:.3}", x.seconds),
                ]
            })
            .collect();
        rep.table(
            &["seed", "mse_all", "mse_extrapolated", "max |error|", "final loss", "final val_loss", "seconds"],
            &runs,
        );
        rep.preformatted(&e.summary);
    }
    rep.heading("Terminal summary");
    rep.preformatted(table);
    rep.write(&dir.join("report.html"))
}
