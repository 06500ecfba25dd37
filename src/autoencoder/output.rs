//! The results folder of `memcell autoencoder`: `results.json`, `summary.txt`, per-model
//! history and code CSVs, generated samples (`.npy`), the trained models, figures (PNG and
//! SVG) and one self-contained `report.html`. Everything is written into a staging folder and
//! moved into place at the end ([`Staging`]), so a failure leaves nothing half-written.

use super::config::Variant;
use super::data::{AeData, Coloring, ImageInfo};
use super::run::{AeResults, Artifacts, ModelResult};
use super::Pca;
use crate::datasets::ising::T_CRITICAL;
use crate::error::{Error, Result};
use crate::experiment::output::{history_csv, text_table, Staging};
use crate::io::write_atomic;
use crate::report::{
    fmt_sci, FigureContent, GrayMap, ImageGrid, LinePlot, Marker, Plot, Report, Rgb, ScatterPlot, Series, OKABE_ITO,
};
use std::fmt::Write as _;
use std::path::Path;

/// Scatter plots with more points than this are embedded in the report as PNG (an SVG of
/// ten thousand circles is slow to open).
const PNG_ABOVE_POINTS: usize = 3000;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "—".into())
}

/// The terminal table: one row per model.
pub fn summary_table(r: &AeResults) -> String {
    let mut header =
        vec!["model", "variant", "params", "code", "mse train", "mse val", "pca val", "val/pca", "seconds"];
    let ising = r.data.ising.is_some();
    if ising {
        header.extend(["r(z,m)", "chi_z peak T", "chi_m peak T"]);
    }
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let mut row = vec![
                m.id.clone(),
                m.variant.name().to_string(),
                crate::model::group(m.params),
                m.code_size.to_string(),
                fmt_sci(m.reconstruction_mse.train),
                fmt_sci(m.reconstruction_mse.validation),
                fmt_sci(m.pca_mse),
                format!("{:.3}", m.reconstruction_mse.validation / m.pca_mse),
                format!("{:.2}", m.seconds),
            ];
            if ising {
                let i = m.ising.as_ref();
                row.push(opt(i.and_then(|i| i.code_magnetization_correlation), 3));
                row.push(opt(i.and_then(|i| i.code_susceptibility_peak_temperature), 2));
                row.push(opt(i.and_then(|i| i.magnetic_susceptibility_peak_temperature), 2));
            }
            row
        })
        .collect();
    let mut out = text_table(&header, &rows);
    for m in &r.models {
        if let Some(d) = &m.denoising {
            let _ = writeln!(
                out,
                "{}: on noisy validation inputs (noisy input itself {}), denoising {} vs plain {} ({})",
                m.id,
                fmt_sci(d.noisy_input_mse),
                fmt_sci(d.noisy_validation_mse),
                fmt_sci(d.plain_noisy_validation_mse),
                if d.noisy_validation_mse < d.plain_noisy_validation_mse {
                    "denoising is better"
                } else {
                    "plain is not worse"
                }
            );
        }
    }
    out
}

fn codes_csv(data: &AeData, m: &ModelResult, a: &Artifacts) -> String {
    let k = m.code_size;
    let mut s = String::from("sample,split");
    let val: std::collections::HashSet<usize> = data.validation.iter().copied().collect();
    if data.ising.is_some() {
        s.push_str(",temperature,magnetization,energy");
    }
    match &data.coloring {
        Some(Coloring::Classes { name, .. }) | Some(Coloring::Values { name, .. }) if data.ising.is_none() => {
            let _ = write!(s, ",{}", name.replace([',', '\n'], " "));
        }
        _ => {}
    }
    for j in 0..k {
        let _ = write!(s, ",z{}", j + 1);
    }
    s.push('\n');
    for i in 0..data.n {
        let _ = write!(s, "{i},{}", if val.contains(&i) { "validation" } else { "train" });
        if let Some(info) = &data.ising {
            let _ = write!(s, ",{},{},{}", info.temperature[i], info.magnetization[i], info.energy[i]);
        } else {
            match &data.coloring {
                Some(Coloring::Classes { classes, .. }) => {
                    let _ = write!(s, ",{}", classes[i]);
                }
                Some(Coloring::Values { values, .. }) => {
                    let _ = write!(s, ",{}", values[i]);
                }
                None => {}
            }
        }
        for z in &a.codes[i * k..(i + 1) * k] {
            let _ = write!(s, ",{z}");
        }
        s.push('\n');
    }
    s
}

fn npy_bytes(shape: &[usize], values: &[f64], path: &Path) -> Result<Vec<u8>> {
    use ndarray_npy::WriteNpyExt;
    let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values.to_vec())
        .map_err(|e| Error::data(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    arr.write_npy(&mut bytes).map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    Ok(bytes)
}

/// Writes `stem.png`/`stem.svg` and adds the figure to the report (as PNG when `png`).
fn figure(rep: &mut Report, dir: &Path, stem: &str, caption: String, plot: &impl Plot, png: bool) -> Result<()> {
    let (p, s) = (plot.to_png()?, plot.to_svg()?);
    write_atomic(&dir.join(format!("{stem}.png")), &p)?;
    write_atomic(&dir.join(format!("{stem}.svg")), s.as_bytes())?;
    rep.figure(caption, if png { FigureContent::png(p) } else { FigureContent::inline_svg(s) });
    Ok(())
}

fn loss_plot(m: &ModelResult) -> LinePlot {
    let xs = |n: usize| (1..=n).map(|e| e as f64).collect::<Vec<f64>>();
    let mut p = LinePlot::new()
        .title(format!("{}: loss per epoch", m.id))
        .x_label("epoch")
        .y_label(format!("loss ({}{})", m.fit.loss, if m.variant == Variant::Variational { " + KL" } else { "" }))
        .log_y(true)
        .series(Series::new("loss (training)", &xs(m.history.loss.len()), &m.history.loss).color(OKABE_ITO[0]))
        .series(
            Series::new("val_loss (validation)", &xs(m.history.val_loss.len()), &m.history.val_loss)
                .color(OKABE_ITO[1])
                .dashed(),
        );
    if let Some(d) = &m.denoising {
        p = p
            .series(
                Series::new("plain twin: loss", &xs(d.plain_history.loss.len()), &d.plain_history.loss)
                    .color(OKABE_ITO[2]),
            )
            .series(
                Series::new("plain twin: val_loss", &xs(d.plain_history.val_loss.len()), &d.plain_history.val_loss)
                    .color(OKABE_ITO[3])
                    .dashed(),
            );
    }
    if let Some(ph) = &m.pretrain_history {
        for (i, h) in ph.iter().enumerate() {
            p = p.series(
                Series::new(format!("pretraining level {}", i + 1), &xs(h.loss.len()), &h.loss)
                    .color(OKABE_ITO[(4 + i) % OKABE_ITO.len()])
                    .dotted(),
            );
        }
    }
    p
}

/// Codes as 2-D points: the code itself (2 values), its two principal components (more), or
/// the code against the sample's colour value / index (1 value). Returns (xs, ys, x label,
/// y label).
fn code_points(codes: &[f64], k: usize, n: usize) -> Result<(Vec<f64>, Vec<f64>, String, String)> {
    Ok(match k {
        1 => ((0..n).map(|i| i as f64).collect(), codes.to_vec(), "sample".into(), "code z".into()),
        2 => (
            codes.iter().step_by(2).copied().collect(),
            codes.iter().skip(1).step_by(2).copied().collect(),
            "code z1".into(),
            "code z2".into(),
        ),
        _ => {
            let p = Pca::fit(codes, n, k, 2)?;
            let t = p.transform(codes);
            (
                t.iter().step_by(2).copied().collect(),
                t.iter().skip(1).step_by(2).copied().collect(),
                "first principal component of the code".into(),
                "second principal component of the code".into(),
            )
        }
    })
}

fn gray(info: &ImageInfo) -> GrayMap {
    if info.inverted {
        GrayMap::Inverted
    } else {
        GrayMap::Gray
    }
}

fn col_labels(data: &AeData, idx: &[usize]) -> Vec<String> {
    if let Some(info) = &data.ising {
        return idx.iter().map(|&i| format!("T={:.2}", info.temperature[i])).collect();
    }
    if let Some(Coloring::Classes { classes, .. }) = &data.coloring {
        return idx.iter().map(|&i| classes[i].to_string()).collect();
    }
    idx.iter().map(|&i| format!("#{i}")).collect()
}

fn model_figures(rep: &mut Report, dir: &Path, data: &AeData, m: &ModelResult, a: &Artifacts) -> Result<()> {
    let id = &m.id;
    figure(
        rep,
        dir,
        &format!("loss_{id}"),
        format!(
            "{id}: training and validation loss per epoch (log scale){}",
            if m.denoising.is_some() {
                "; the training loss is on corrupted inputs, the validation loss on clean ones, beside the plain twin's"
            } else if m.pretrain_history.is_some() {
                "; dotted: the greedy pretraining of each level (each reconstructs its own input)"
            } else {
                ""
            }
        ),
        &loss_plot(m),
        false,
    )?;
    let k = m.code_size;
    let n = data.n;
    let many = n > PNG_ABOVE_POINTS;
    // Codes.
    if let (Some(info), 1) = (&data.ising, k) {
        let sp = ScatterPlot::new()
            .title(format!("{id}: one-dimensional code z against temperature"))
            .x_label("temperature T")
            .y_label("code z")
            .points(&info.temperature, &a.codes)
            .color_by_value(&info.magnetization, "magnetization m")
            .value_range(-1.0, 1.0)
            .marker(Marker::Dot)
            .alpha(0.5);
        figure(
            rep,
            dir,
            &format!("codes_{id}"),
            format!(
                "{id}: the code z of every sample against its temperature, coloured by the sample's signed \
                 magnetization m (the sign of z is arbitrary)"
            ),
            &sp,
            many,
        )?;
    } else {
        let (xs, ys, xl, yl) = code_points(&a.codes, k, n)?;
        let mut sp = ScatterPlot::new()
            .title(format!("{id}: codes of every sample"))
            .x_label(xl)
            .y_label(yl)
            .points(&xs, &ys)
            .marker(if many { Marker::Dot } else { Marker::Circle })
            .alpha(0.6);
        let mut what = String::new();
        if let Some(info) = &data.ising {
            sp = sp.color_by_value(&info.temperature, "temperature T");
            what = ", coloured by temperature".into();
        } else {
            match &data.coloring {
                Some(Coloring::Classes { name, classes }) => {
                    sp = sp.color_by_class(classes);
                    what = format!(", coloured by {name}");
                }
                Some(Coloring::Values { name, values }) => {
                    sp = sp.color_by_value(values, name.clone());
                    what = format!(", coloured by {name}");
                }
                None => {}
            }
        }
        let how = match k {
            1 => "the one-dimensional code against the sample number",
            2 => "the two-dimensional code",
            _ => "the codes projected on their first two principal components",
        };
        figure(rep, dir, &format!("codes_{id}"), format!("{id}: {how}{what}"), &sp, many)?;
    }
    // Susceptibilities.
    if let Some(is) = &m.ising {
        let c = &is.susceptibility;
        let norm = |v: &[f64]| {
            let mx = v.iter().cloned().fold(0.0, f64::max);
            v.iter().map(|x| if mx > 0.0 { x / mx } else { f64::NAN }).collect::<Vec<f64>>()
        };
        let mut p = LinePlot::new()
            .title(format!("{id}: susceptibilities (each divided by its maximum)"))
            .x_label("temperature T")
            .y_label("chi(T) / max chi")
            .series(
                Series::new(
                    format!("chi_m, magnetization (peak T = {})", opt(is.magnetic_susceptibility_peak_temperature, 2)),
                    &c.temperature,
                    &norm(&c.chi_m),
                )
                .color(OKABE_ITO[0])
                .markers(),
            )
            .vline(T_CRITICAL, "T_c = 2.269 (infinite lattice)");
        if !c.chi_z.is_empty() {
            p = p.series(
                Series::new(
                    format!("chi_z, code (peak T = {})", opt(is.code_susceptibility_peak_temperature, 2)),
                    &c.temperature,
                    &norm(&c.chi_z),
                )
                .color(OKABE_ITO[1])
                .dashed()
                .markers(),
            );
        }
        figure(
            rep,
            dir,
            &format!("susceptibility_{id}"),
            format!(
                "{id}: chi(T) = L² (<v²> − <|v|>²) / T of the code z (centred on its mean over all samples) and of the \
                 magnetization m, over all samples"
            ),
            &p,
            false,
        )?;
    }
    // Reconstructions.
    let d = data.dim();
    let ex = &a.examples;
    let labels = col_labels(data, ex);
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    if let Some(info) = &data.image {
        let mut rows: Vec<(&str, Vec<f64>)> =
            vec![("original", data.gather(ex)), ("reconstruction", a.reconstructions.clone())];
        if let Some((noisy, den, plain)) = &a.noisy {
            rows = vec![
                ("original", data.gather(ex)),
                ("noisy input", noisy.clone()),
                ("denoised", den.clone()),
                ("plain AE", plain.clone()),
            ];
        }
        let mut g = ImageGrid::new(rows.len(), ex.len().max(1), info.width, info.height)
            .title(format!("{id}: validation samples and their reconstructions"))
            .row_labels(&rows.iter().map(|r| r.0).collect::<Vec<_>>())
            .col_labels(&label_refs)
            .value_range(info.vmin, info.vmax)
            .gray_map(gray(info));
        for (r, (_, v)) in rows.iter().enumerate() {
            for c in 0..ex.len() {
                g = g.image(r, c, &v[c * d..(c + 1) * d]);
            }
        }
        let what = if a.noisy.is_some() {
            "originals, the noisy inputs, this model's reconstruction of them, and the plain twin's"
        } else {
            "originals (top) and reconstructions (bottom)"
        };
        figure(rep, dir, &format!("reconstructions_{id}"), format!("{id}: validation samples, {what}"), &g, false)?;
    } else if data.is_windows() {
        let (t, f) = (data.sample_shape[0], data.sample_shape[1]);
        let show = ex.len().min(4);
        let mut p = LinePlot::new()
            .title(format!("{id}: validation windows (feature {}) and reconstructions", data.feature_names[0]))
            .x_label("time step (windows side by side)")
            .y_label(data.feature_names[0].clone());
        for (c, &i) in ex.iter().take(show).enumerate() {
            let xs: Vec<f64> = (0..t).map(|s| (c * (t + t / 4 + 1) + s) as f64).collect();
            let orig: Vec<f64> = (0..t).map(|s| data.sample(i)[s * f]).collect();
            let rec: Vec<f64> = (0..t).map(|s| a.reconstructions[c * d + s * f]).collect();
            let name = |s: &str| if c == 0 { s.to_string() } else { String::new() };
            p = p
                .series(Series::new(name("original"), &xs, &orig).color(OKABE_ITO[0]))
                .series(Series::new(name("reconstruction"), &xs, &rec).color(OKABE_ITO[1]).dashed());
            if let Some((noisy, den, _)) = &a.noisy {
                let nz: Vec<f64> = (0..t).map(|s| noisy[c * d + s * f]).collect();
                let dn: Vec<f64> = (0..t).map(|s| den[c * d + s * f]).collect();
                p = p
                    .series(Series::new(name("noisy input"), &xs, &nz).color(Rgb::GRAY).dotted())
                    .series(Series::new(name("denoised"), &xs, &dn).color(OKABE_ITO[2]));
            }
        }
        figure(
            rep,
            dir,
            &format!("reconstructions_{id}"),
            format!("{id}: {show} validation windows and their reconstructions"),
            &p,
            false,
        )?;
    } else {
        // A table: every validation value against its reconstruction, from the saved examples.
        let orig = data.gather(ex);
        let sp = ScatterPlot::new()
            .title(format!("{id}: reconstructed against original values ({} validation samples)", ex.len()))
            .x_label("original value")
            .y_label("reconstructed value")
            .points(&orig, &a.reconstructions);
        figure(
            rep,
            dir,
            &format!("reconstructions_{id}"),
            format!("{id}: each value of {} validation samples against its reconstruction", ex.len()),
            &sp,
            false,
        )?;
    }
    // Generated samples.
    if !a.generated.is_empty() {
        let ng = a.generated.len() / d;
        if let Some(info) = &data.image {
            let side = (ng as f64).sqrt().ceil() as usize;
            let mut g = ImageGrid::new(side, side, info.width, info.height)
                .title(format!("{id}: samples decoded from codes drawn from the prior N(0, I)"))
                .value_range(info.vmin, info.vmax)
                .gray_map(gray(info));
            for i in 0..ng {
                g = g.push(&a.generated[i * d..(i + 1) * d]);
            }
            figure(
                rep,
                dir,
                &format!("generated_{id}"),
                format!("{id}: {ng} new samples, decoded from random codes z ~ N(0, I)"),
                &g,
                false,
            )?;
        } else if data.is_windows() {
            let (t, f) = (data.sample_shape[0], data.sample_shape[1]);
            let mut p = LinePlot::new().title(format!("{id}: generated windows")).x_label("time step").y_label("value");
            for i in 0..ng.min(5) {
                let xs: Vec<f64> = (0..t).map(|s| s as f64).collect();
                let ys: Vec<f64> = (0..t).map(|s| a.generated[i * d + s * f]).collect();
                p = p.series(Series::new(format!("sample {}", i + 1), &xs, &ys));
            }
            figure(
                rep,
                dir,
                &format!("generated_{id}"),
                format!("{id}: windows decoded from random codes"),
                &p,
                false,
            )?;
        }
        if let (Some((grid, side, span)), Some(info)) = (&a.manifold, &data.image) {
            let mut g = ImageGrid::new(*side, *side, info.width, info.height)
                .title(format!("{id}: decoded codes on a grid, z1 and z2 from -{span} to {span}"))
                .value_range(info.vmin, info.vmax)
                .gray_map(gray(info));
            for i in 0..side * side {
                g = g.push(&grid[i * d..(i + 1) * d]);
            }
            figure(
                rep,
                dir,
                &format!("manifold_{id}"),
                format!(
                    "{id}: the decoder over the code plane: z1 from -{span} (left) to {span} (right), z2 from {span} (top) \
                     to -{span} (bottom)"
                ),
                &g,
                false,
            )?;
        }
    }
    Ok(())
}

fn write_report(r: &AeResults, data: &AeData, arts: &[Artifacts], dir: &Path, table: &str) -> Result<()> {
    let mut rep = Report::new("memcell: autoencoders");
    rep.paragraph(format!(
        "Data: {}. {} samples of shape {:?}: {} train, {} validate (a shuffled {:.0} % split, seed {}). \
         Config: {}. memcell {}.",
        r.data.description,
        r.data.n_samples,
        r.data.sample_shape,
        r.data.n_train,
        r.data.n_validation,
        100.0 * r.data.validation_fraction,
        r.data.seed,
        r.config,
        r.memcell_version
    ));
    rep.paragraph(
        "Reconstruction MSE is the mean squared difference over every value, in inference mode (no noise; a \
         variational code is its mean). The PCA baseline keeps as many principal components as the code has values, \
         fitted on the training samples; a linear autoencoder trained with MSE can at best match it.",
    );
    rep.heading("Summary");
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.variant.name().into(),
                crate::model::group(m.params),
                m.code_size.to_string(),
                fmt_sci(m.reconstruction_mse.train),
                fmt_sci(m.reconstruction_mse.validation),
                fmt_sci(m.pca_mse),
                format!("{:.4}", m.reconstruction_mse.validation / m.pca_mse),
                format!("{:.2}", m.seconds),
            ]
        })
        .collect();
    rep.table(
        &[
            "model",
            "variant",
            "params",
            "code size",
            "MSE train",
            "MSE validation",
            "PCA MSE validation",
            "ratio to PCA",
            "seconds",
        ],
        &rows,
    );
    if let Some(is) = &r.data.ising {
        rep.heading("Ising: the code and the magnetization");
        rep.paragraph(format!(
            "chi(T) = L² (<v²> − <|v|>²) / T per temperature, for v = the code z (centred on its mean over all \
             samples) and v = the magnetization m, over all {} samples. The magnetic susceptibility of these samples \
             peaks at T = {}; the infinite lattice orders at T_c = 2.269 (a finite lattice's peak sits above it). The \
             sign of z is arbitrary (flipping it and the decoder's first kernel gives the same model): compare |r|.",
            r.data.n_samples,
            opt(is.magnetic_susceptibility_peak_temperature, 2)
        ));
        let rows: Vec<Vec<String>> = r
            .models
            .iter()
            .filter_map(|m| m.ising.as_ref().map(|i| (m, i)))
            .map(|(m, i)| {
                vec![
                    m.id.clone(),
                    m.code_size.to_string(),
                    opt(i.code_magnetization_correlation, 4),
                    opt(i.code_magnetization_correlation.map(f64::abs), 4),
                    opt(i.code_susceptibility_peak_temperature, 2),
                    opt(i.magnetic_susceptibility_peak_temperature, 2),
                ]
            })
            .collect();
        rep.table(&["model", "code size", "r(z, m)", "|r|", "chi_z peak T", "chi_m peak T"], &rows);
        let mut p = LinePlot::new()
            .title("The samples: magnetic susceptibility and mean |m|")
            .x_label("temperature T")
            .y_label("chi_m(T) / max, <|m|>(T)")
            .vline(T_CRITICAL, "T_c = 2.269 (infinite lattice)");
        let mx = is.chi_m.iter().cloned().fold(0.0, f64::max);
        let norm: Vec<f64> = is.chi_m.iter().map(|v| if mx > 0.0 { v / mx } else { f64::NAN }).collect();
        p = p
            .series(Series::new("chi_m / max chi_m", &is.temperature, &norm).color(OKABE_ITO[0]).markers())
            .series(Series::new("<|m|>", &is.temperature, &is.mean_abs_m).color(OKABE_ITO[2]).dashed());
        figure(
            &mut rep,
            dir,
            "magnetization",
            format!(
                "The samples' chi_m(T) (peak at T = {}) and <|m|>(T)",
                opt(is.magnetic_susceptibility_peak_temperature, 2)
            ),
            &p,
            false,
        )?;
    }
    let den: Vec<&ModelResult> = r.models.iter().filter(|m| m.denoising.is_some()).collect();
    if !den.is_empty() {
        rep.heading("Denoising: held-out noisy inputs");
        rep.paragraph(
            "Each denoising model and its plain twin (the same layers without the corruption, trained on the same \
             samples with the same settings) reconstruct the same noisy validation inputs; the error is against the \
             clean samples.",
        );
        let rows: Vec<Vec<String>> = den
            .iter()
            .map(|m| {
                let d = m.denoising.as_ref().expect("filtered");
                vec![
                    m.id.clone(),
                    match d.noise {
                        super::config::Noise::Gaussian { stddev } => format!("gaussian, stddev {stddev}"),
                        super::config::Noise::Dropout { rate } => format!("dropout, rate {rate}"),
                    },
                    fmt_sci(d.noisy_input_mse),
                    fmt_sci(d.noisy_validation_mse),
                    fmt_sci(d.plain_noisy_validation_mse),
                    fmt_sci(m.reconstruction_mse.validation),
                    fmt_sci(d.plain_reconstruction_mse.validation),
                ]
            })
            .collect();
        rep.table(
            &[
                "model",
                "noise",
                "noisy input MSE",
                "denoising AE on noisy",
                "plain AE on noisy",
                "denoising AE, clean",
                "plain AE, clean",
            ],
            &rows,
        );
    }
    let sparse: Vec<&ModelResult> = r.models.iter().filter(|m| m.sparsity.is_some()).collect();
    if !sparse.is_empty() {
        rep.heading("Sparsity of the code");
        let rows: Vec<Vec<String>> = sparse
            .iter()
            .map(|m| {
                let s = m.sparsity.as_ref().expect("filtered");
                vec![
                    m.id.clone(),
                    opt(s.rho, 3),
                    opt(s.beta, 3),
                    s.l1.map(fmt_sci).unwrap_or_else(|| "—".into()),
                    format!("{:.4}", s.mean_code_activation),
                    format!("{:.4}", s.mean_abs_code),
                ]
            })
            .collect();
        rep.table(&["model", "rho", "beta", "l1", "mean code value", "mean |code|"], &rows);
    }
    for (m, a) in r.models.iter().zip(arts) {
        rep.heading(format!("{} — {}", m.id, m.title));
        let mut line = format!(
            "{} parameters, a code of {} value{}; reconstruction MSE {} (train) and {} (validation), PCA with {} \
             component{} {} (validation); {:.2} s.",
            crate::model::group(m.params),
            m.code_size,
            if m.code_size == 1 { "" } else { "s" },
            fmt_sci(m.reconstruction_mse.train),
            fmt_sci(m.reconstruction_mse.validation),
            m.pca_components,
            if m.pca_components == 1 { "" } else { "s" },
            fmt_sci(m.pca_mse),
            m.seconds
        );
        if let Some(v) = &m.variational {
            let _ = write!(
                line,
                " Variational: {} latent dimensions, KL weight {:.4}; generated values in [{:.3}, {:.3}].",
                v.latent, v.kl_weight, v.generated_min, v.generated_max
            );
        }
        rep.paragraph(line);
        model_figures(&mut rep, dir, data, m, a)?;
        rep.preformatted(&m.summary);
    }
    rep.heading("Terminal summary");
    rep.preformatted(table);
    rep.write(&dir.join("report.html"))
}

/// Writes everything into `out` (replacing it only when all of it is written). Returns the
/// terminal summary.
pub fn write_outputs(r: &AeResults, data: &AeData, arts: &mut [Artifacts], out: &Path) -> Result<String> {
    let stage = Staging::new(out)?;
    let d = &stage.dir;
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::config(format!("results.json: {e}")))?;
    write_atomic(&d.join("results.json"), &json)?;
    let table = summary_table(r);
    write_atomic(&d.join("summary.txt"), table.as_bytes())?;
    for (m, a) in r.models.iter().zip(arts.iter_mut()) {
        write_atomic(
            &d.join(format!("history_{}.csv", m.id)),
            history_csv(&m.history.loss, &m.history.val_loss).as_bytes(),
        )?;
        write_atomic(&d.join(format!("codes_{}.csv", m.id)), codes_csv(data, m, a).as_bytes())?;
        if !a.generated.is_empty() {
            let p = d.join(format!("generated_{}.npy", m.id));
            let mut shape = vec![a.generated.len() / data.dim()];
            shape.extend_from_slice(&data.sample_shape);
            write_atomic(&p, &npy_bytes(&shape, &a.generated, &p)?)?;
        }
        a.model.model.save(&d.join("models").join(&m.id))?;
    }
    write_report(r, data, arts, d, &table)?;
    stage.commit()?;
    Ok(table)
}
