//! `memcell autoencoder` end to end on real data: the example configs reach their physics and
//! machine-learning results (Ising: the 1-D code is the magnetization and its susceptibility
//! peaks at the transition; digits: a linear AE matches PCA, a nonlinear one beats it,
//! denoising beats plain on noisy inputs, the VAE generates valid images), the outputs are all
//! there, and bad input fails with one line naming the problem and nothing written.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memcell"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `memcell autoencoder CONFIG --out OUT --quiet`; panics with stderr on failure.
fn run_ok(config: &Path, out: &Path) -> Value {
    let o = bin().arg("autoencoder").arg(config).arg("--out").arg(out).arg("--quiet").output().unwrap();
    assert!(o.status.success(), "{}: {}", config.display(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap()
}

fn model<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["models"].as_array().unwrap().iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no model {id}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The keys every model has in results.json, and its figures.
fn check_common_outputs(out: &Path, r: &Value) {
    for k in ["memcell_version", "config", "data", "fit", "models"] {
        assert!(r.get(k).is_some(), "results.json lacks '{k}'");
    }
    for k in ["kind", "description", "n_samples", "n_train", "n_validation", "sample_shape"] {
        assert!(r["data"].get(k).is_some(), "results.json data lacks '{k}'");
    }
    for m in r["models"].as_array().unwrap() {
        for k in [
            "id",
            "variant",
            "params",
            "code_size",
            "reconstruction_mse",
            "pca_mse",
            "pca_components",
            "final_loss",
            "final_val_loss",
            "history",
            "seconds",
            "model",
        ] {
            assert!(m.get(k).is_some(), "model {} lacks '{k}'", m["id"]);
        }
        assert!(num(&m["reconstruction_mse"]["train"]) >= 0.0);
        assert!(num(&m["reconstruction_mse"]["validation"]) >= 0.0);
        assert!(num(&m["pca_mse"]).is_finite());
        assert!(num(&m["params"]) > 0.0 && num(&m["seconds"]) > 0.0);
        let epochs = num(&m["fit"]["epochs"]) as usize;
        assert_eq!(m["history"]["loss"].as_array().unwrap().len(), epochs);
        assert_eq!(m["history"]["val_loss"].as_array().unwrap().len(), epochs);
        let id = m["id"].as_str().unwrap();
        for stem in ["loss", "codes", "reconstructions"] {
            for ext in ["png", "svg"] {
                let f = out.join(format!("{stem}_{id}.{ext}"));
                assert!(f.is_file() && std::fs::metadata(&f).unwrap().len() > 500, "missing {}", f.display());
            }
        }
        assert!(out.join(format!("history_{id}.csv")).is_file());
        assert!(out.join(format!("codes_{id}.csv")).is_file());
        assert!(out.join("models").join(id).join("model.safetensors").is_file());
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("PCA"), "report.html lacks figures or the PCA table");
    assert!(!html.contains("src=\"http"), "report.html must be self-contained");
    assert!(out.join("summary.txt").is_file());
}

fn ising_checks(r: &Value, seed: u64) -> (f64, f64) {
    let m = model(r, "dense1d");
    assert_eq!(m["code_size"], 1);
    let corr = num(&m["code_magnetization_correlation"]);
    assert!(corr.abs() >= 0.9, "generator seed {seed}: |r(z, m)| = {}", corr.abs());
    let tz = num(&m["code_susceptibility_peak_temperature"]);
    assert!((2.15..=2.45).contains(&tz), "generator seed {seed}: chi_z peaks at T = {tz}");
    let tm = num(&m["magnetic_susceptibility_peak_temperature"]);
    assert!((2.2..=2.6).contains(&tm), "generator seed {seed}: chi_m peaks at T = {tm}");
    let c = &m["susceptibility"];
    assert_eq!(c["temperature"].as_array().unwrap().len(), 26);
    assert_eq!(c["chi_z"].as_array().unwrap().len(), 26);
    (tz, tm)
}

#[test]
fn ising_example_code_is_the_magnetization_and_its_susceptibility_peaks_at_the_transition() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ising");
    let r = run_ok(&root().join("examples/autoencoder_ising.toml"), &out);
    check_common_outputs(&out, &r);
    assert_eq!(r["data"]["n_samples"], 26 * 400);
    assert_eq!(r["data"]["sample_shape"], serde_json::json!([16, 16]));
    ising_checks(&r, 0);
    for f in ["susceptibility_dense1d.png", "susceptibility_dense1d.svg", "magnetization.png"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let codes = std::fs::read_to_string(out.join("codes_dense1d.csv")).unwrap();
    assert!(codes.starts_with("sample,split,temperature,magnetization,energy,z1\n"));
    assert_eq!(codes.lines().count(), 1 + 26 * 400);
}

#[test]
fn ising_susceptibility_peak_does_not_move_with_the_generator_seed() {
    let text = std::fs::read_to_string(root().join("examples/autoencoder_ising.toml")).unwrap();
    assert!(text.contains("\nseed = 0 "), "the example's [data] seed line changed");
    let dir = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    for seed in [1u64, 2] {
        let cfg = dir.path().join(format!("ising_{seed}.toml"));
        std::fs::write(&cfg, text.replacen("\nseed = 0 ", &format!("\nseed = {seed} "), 1)).unwrap();
        let r = run_ok(&cfg, &dir.path().join(format!("out{seed}")));
        assert_eq!(r["data"]["seed"], seed);
        peaks.push(ising_checks(&r, seed));
    }
    assert_eq!(peaks[0].0, peaks[1].0, "chi_z peaks moved between generator seeds 1 and 2: {peaks:?}");
}

#[test]
fn digits_example_linear_matches_pca_nonlinear_beats_it_denoising_beats_plain() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digits");
    let r = run_ok(&root().join("examples/autoencoder_digits.toml"), &out);
    check_common_outputs(&out, &r);
    assert_eq!(r["data"]["n_samples"], 1797);
    // (a) A linear autoencoder with MSE spans the PCA subspace: within 2 % of PCA(10).
    let lin = model(&r, "linear10");
    assert_eq!(lin["code_size"], 10);
    assert_eq!(lin["pca_components"], 10);
    let (ae, pca) = (num(&lin["reconstruction_mse"]["validation"]), num(&lin["pca_mse"]));
    assert!(ae <= 1.02 * pca, "linear AE {ae} vs PCA(10) {pca}");
    assert!(ae >= 0.98 * pca, "a linear AE cannot beat PCA by much: {ae} vs {pca}");
    // (b) A nonlinear one beats PCA at the same code size.
    let deep = model(&r, "deep10");
    assert!(num(&deep["reconstruction_mse"]["validation"]) < num(&deep["pca_mse"]));
    // (c) Denoising beats a plain autoencoder of the same size on held-out noisy inputs.
    let den = &model(&r, "denoise10")["denoising"];
    let (d, p, noisy) =
        (num(&den["noisy_validation_mse"]), num(&den["plain_noisy_validation_mse"]), num(&den["noisy_input_mse"]));
    assert!(d < p, "denoising {d} vs plain {p} on noisy inputs");
    assert!(d < noisy, "denoising {d} must clean the noisy inputs ({noisy})");
    assert_eq!(den["plain_params"], model(&r, "denoise10")["params"]);
    // (d) Sparse: the KL term pulls the mean code activation toward rho.
    let sp = &model(&r, "sparse32")["sparsity"];
    let (mean, rho) = (num(&sp["mean_code_activation"]), num(&sp["rho"]));
    assert!((mean - rho).abs() < 0.5 * rho, "mean code activation {mean} vs rho {rho}");
    // (e) Stacked: pretrained level by level, tied (the tied kernels count once).
    let st = model(&r, "stacked10");
    assert_eq!(st["pretrain_history"].as_array().unwrap().len(), 2);
    assert_eq!(st["params"], 64 * 32 + 32 + 32 * 10 + 10 + 32 + 64);
    assert!(num(&st["reconstruction_mse"]["validation"]) < num(&st["pca_mse"]));
    assert!(out.join("reconstructions_denoise10.png").is_file());
}

#[test]
fn digits_vae_generates_images_in_the_unit_interval() {
    use ndarray_npy::ReadNpyExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vae");
    let r = run_ok(&root().join("examples/autoencoder_digits_vae.toml"), &out);
    check_common_outputs(&out, &r);
    for (id, latent) in [("vae4", 4), ("vae2", 2)] {
        let m = model(&r, id);
        assert_eq!(m["code_size"], latent);
        assert_eq!(m["variational"]["latent"], latent);
        let g = ndarray::ArrayD::<f64>::read_npy(std::fs::File::open(out.join(format!("generated_{id}.npy"))).unwrap())
            .unwrap();
        assert_eq!(g.shape(), &[64, 8, 8]);
        assert!(g.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{id}: generated values out of [0, 1]");
        // Not a constant image: the samples differ from each other.
        let first = g.index_axis(ndarray::Axis(0), 0).to_owned();
        assert!((1..64).any(|i| (&g.index_axis(ndarray::Axis(0), i) - &first).iter().any(|d| d.abs() > 0.1)));
        assert!(out.join(format!("generated_{id}.png")).is_file());
        // It beats PCA at its code size.
        assert!(num(&m["reconstruction_mse"]["validation"]) < num(&m["pca_mse"]));
    }
    assert!(out.join("manifold_vae2.png").is_file());
}

#[test]
fn sequence_example_and_user_csv_and_npy_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seq");
    let r = run_ok(&root().join("examples/autoencoder_sequence.toml"), &out);
    check_common_outputs(&out, &r);
    let m = model(&r, "lstm2");
    assert_eq!(m["input_shape"], serde_json::json!([25, 1]));
    assert_eq!(m["code_size"], 2);
    // The noise variance 0.01 is the floor; a code of the phase gets near it.
    assert!(num(&m["reconstruction_mse"]["validation"]) < 0.02, "{}", m["reconstruction_mse"]);
    let layers: Vec<&str> =
        m["model"]["config"]["layers"].as_array().unwrap().iter().map(|l| l["class_name"].as_str().unwrap()).collect();
    assert_eq!(layers, ["InputLayer", "LSTM", "RepeatVector", "LSTM", "Dense"]);

    // A user's table: rows are samples, a label column colours the codes.
    let mut csv = String::from("a,b,c,d,kind\n");
    for i in 0..120 {
        let t = i as f64 * 0.1;
        csv += &format!("{},{},{},{},{}\n", t.sin(), t.cos(), t.sin() + t.cos(), 2.0 * t.sin(), i % 3);
    }
    std::fs::write(dir.path().join("table.csv"), csv).unwrap();
    let cfg = dir.path().join("table.toml");
    std::fs::write(
        &cfg,
        "[data]\nkind = \"csv\"\npath = \"table.csv\"\nlabel = \"kind\"\nscale = \"standard\"\n\
         [[models]]\nid = \"t\"\nvariant = \"undercomplete\"\n\
         encoder = [ { type = \"Dense\", units = 2 } ]\ndecoder = [ { type = \"Dense\", units = 4 } ]\n\
         [fit]\nepochs = 3\n",
    )
    .unwrap();
    let out = dir.path().join("table");
    let r = run_ok(&cfg, &out);
    check_common_outputs(&out, &r);
    assert_eq!(r["data"]["n_samples"], 120);
    assert_eq!(r["data"]["sample_shape"], serde_json::json!([4]));
    assert_eq!(r["data"]["scaling"]["kind"], "standard");
    assert!(std::fs::read_to_string(out.join("codes_t.csv")).unwrap().starts_with("sample,split,kind,z1,z2\n"));

    // A .npy array, one sample per row.
    use ndarray_npy::WriteNpyExt;
    let a = ndarray::Array2::<f64>::from_shape_fn((50, 6), |(i, j)| ((i * j) as f64 * 0.01).sin());
    a.write_npy(std::fs::File::create(dir.path().join("x.npy")).unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "[data]\nkind = \"npy\"\npath = \"x.npy\"\nvalidation = 0.3\n[[models]]\nid = \"n\"\nvariant = \"denoising\"\n\
         noise = { type = \"dropout\", rate = 0.2 }\n\
         encoder = [ { type = \"Dense\", units = 3, activation = \"tanh\" } ]\ndecoder = [ { type = \"Dense\", units = 6 } ]\n\
         [fit]\nepochs = 2\n",
    )
    .unwrap();
    let out = dir.path().join("npy");
    let r = run_ok(&cfg, &out);
    assert_eq!(r["data"]["n_validation"], 15);
    assert!(model(&r, "n")["denoising"]["plain_noisy_validation_mse"].is_number());
}

#[test]
fn data_ising_writes_the_configurations_and_their_observables() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["data", "ising", "--l", "8", "--temps", "1.5:3.0:0.5", "--samples", "20", "--seed", "3", "--out"])
        .arg(format!("{}/", dir.path().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("chi_m peaks at T =") && text.contains("ising_L8.npy"), "{text}");
    use ndarray_npy::ReadNpyExt;
    let a = ndarray::Array3::<i8>::read_npy(std::fs::File::open(dir.path().join("ising_L8.npy")).unwrap()).unwrap();
    assert_eq!(a.shape(), &[80, 8, 8]);
    let csv = std::fs::read_to_string(dir.path().join("ising_L8.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("temperature,energy,magnetization"));
    assert_eq!(csv.lines().count(), 81);
    let o = bin().args(["data", "ising", "--temps", "3.0:1.0:0.1"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("stop 1"));
}

const GOOD_MODEL: &str = "[[models]]\nid = \"m\"\nvariant = \"undercomplete\"\n\
    encoder = [ { type = \"Dense\", units = 4, activation = \"relu\" } ]\n\
    decoder = [ { type = \"Dense\", units = 64, activation = \"sigmoid\" } ]\n[fit]\nepochs = 1\n";

/// Runs a config that must fail: exit status nonzero, one line on stderr that contains every
/// `want`, the out folder (pre-filled) unchanged and no staging folder left.
fn fails(name: &str, text: &str, want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(format!("{name}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "previous results").unwrap();
    let o = bin().arg("autoencoder").arg(&cfg).arg("--out").arg(&out).arg("--quiet").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{name}: succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{name}: '{w}' not in: {err}");
    }
    assert!(!err.contains("panicked"), "{name}: {err}");
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["keep.txt"], "{name}: the out folder changed");
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "previous results");
    let stray: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{name}: left behind {stray:?}");
}

#[test]
fn bad_input_fails_with_one_line_naming_the_problem_and_writes_nothing() {
    let digits = "[data]\nkind = \"digits\"\n";
    fails("unknown_top", &format!("{digits}{GOOD_MODEL}[report]\nx = 1\n"), &["unknown field `report`"]);
    fails("unknown_data", &format!("[data]\nkind = \"digits\"\nsmoothing = 2\n{GOOD_MODEL}"), &["smoothing"]);
    fails(
        "unknown_model_key",
        &format!("{digits}{}", GOOD_MODEL.replace("id = \"m\"", "id = \"m\"\ncode = 3")),
        &["code"],
    );
    fails(
        "unknown_layer_key",
        &format!("{digits}{}", GOOD_MODEL.replace("units = 4,", "unit = 4, units = 4,")),
        &["model m (encoder), layer 1 (Dense): unknown key 'unit'"],
    );
    fails("unknown_fit_key", &format!("{digits}{GOOD_MODEL}patience = 3\n"), &["patience"]);
    fails(
        "key_of_other_kind",
        &format!("[data]\nkind = \"digits\"\nl = 16\n{GOOD_MODEL}"),
        &["'l'", "kind = \"ising\""],
    );
    fails("bad_kind", &format!("[data]\nkind = \"mnist\"\n{GOOD_MODEL}"), &["\"mnist\""]);
    fails("missing_csv", &format!("[data]\nkind = \"csv\"\npath = \"nowhere.csv\"\n{GOOD_MODEL}"), &["nowhere.csv"]);
    fails("missing_npy", &format!("[data]\nkind = \"npy\"\npath = \"nowhere.npy\"\n{GOOD_MODEL}"), &["nowhere.npy"]);
    // NaN in the data, named by line and column (the file is written next to the config).
    {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.csv"), "a,b\n1,2\n3,nan\n5,6\n").unwrap();
        let cfg = dir.path().join("nan.toml");
        std::fs::write(&cfg, format!("[data]\nkind = \"csv\"\npath = \"d.csv\"\n{}", GOOD_MODEL.replace("64", "2")))
            .unwrap();
        let out = dir.path().join("out");
        let o = bin().arg("autoencoder").arg(&cfg).arg("--out").arg(&out).arg("--quiet").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("line 3, column 'b'") && err.contains("nan"), "{err}");
        assert!(!out.exists());
    }
    fails(
        "code_too_large",
        &format!("{digits}{}", GOOD_MODEL.replace("units = 4, activation = \"relu\"", "units = 80")),
        &["model m", "code has 80 values for an input of 64"],
    );
    fails(
        "bad_rho",
        &format!(
            "{digits}{}",
            GOOD_MODEL
                .replace("\"undercomplete\"", "\"sparse\"\nsparsity = { rho = 1.5, beta = 3.0 }")
                .replace("\"relu\"", "\"sigmoid\"")
        ),
        &["rho must be in (0, 1), got 1.5"],
    );
    fails(
        "sparsity_needs_sigmoid",
        &format!(
            "{digits}{}",
            GOOD_MODEL.replace("\"undercomplete\"", "\"sparse\"\nsparsity = { rho = 0.05, beta = 3.0 }")
        ),
        &["activation = \"sigmoid\"", "\"relu\""],
    );
    fails(
        "noise_on_plain",
        &format!(
            "{digits}{}",
            GOOD_MODEL.replace("id = \"m\"", "id = \"m\"\nnoise = { type = \"gaussian\", stddev = 0.1 }")
        ),
        &["'noise' is only for variant = \"denoising\""],
    );
    fails(
        "bad_noise",
        &format!(
            "{digits}{}",
            GOOD_MODEL.replace("\"undercomplete\"", "\"denoising\"\nnoise = { type = \"gaussian\", stddev = -1 }")
        ),
        &["stddev must be positive", "-1"],
    );
    fails(
        "bad_variant",
        &format!("{digits}{}", GOOD_MODEL.replace("undercomplete", "contractive")),
        &["\"contractive\""],
    );
    fails(
        "wrong_output",
        &format!("{digits}{}", GOOD_MODEL.replace("units = 64", "units = 63")),
        &["reconstruct the input shape [64]", "[63]"],
    );
    fails(
        "no_validation",
        &format!("[data]\nkind = \"digits\"\nvalidation = 0.0\n{GOOD_MODEL}"),
        &["validation must be a fraction in (0, 1), got 0"],
    );
    fails(
        "stacked_needs_pretrain",
        &format!("{digits}{}", GOOD_MODEL.replace("\"undercomplete\"", "\"stacked\"")),
        &["pretrain = { epochs = N }"],
    );
    fails(
        "sequence_needs_a_recurrent_encoder",
        &format!("{digits}{}", GOOD_MODEL.replace("\"undercomplete\"", "\"sequence\"")),
        &["needs a recurrent encoder"],
    );
    fails("sine_needs_window", &format!("[data]\nkind = \"sine\"\n{GOOD_MODEL}"), &["needs window"]);
    fails(
        "bad_temps",
        &format!("[data]\nkind = \"ising\"\ntemps = \"3.0:1.0:0.1\"\n{GOOD_MODEL}"),
        &["temps", "stop 1"],
    );
    fails(
        "bad_optimizer",
        &format!("{digits}{GOOD_MODEL}optimizer = {{ type = \"adam\", lr = 0.1 }}\n"),
        &["unknown key 'lr'"],
    );
    fails(
        "duplicate_id",
        &format!("{digits}{}{}", GOOD_MODEL.replace("[fit]\nepochs = 1\n", ""), GOOD_MODEL),
        &["model id 'm' is used twice"],
    );
    // A missing config file.
    let o = bin().args(["autoencoder", "/nonexistent/config.toml", "--quiet"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/config.toml"));
}
