//! The seed experiments and `memcell run` end to end: outputs, results.json, errors for bad
//! input with nothing half-written, and the extrapolation errors against Keras's.

use memcell::experiment::{self, FitSpec, Quiet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memcell"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SMALL_MODEL: &str = r#"
[model]
id = "tiny"
kind = "window"
window = 2
layers = [ { type = "LSTM", units = 8 }, { type = "Dense", units = 1 } ]

[fit]
epochs = 5
seeds = [0, 1]
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `memcell run CONFIG --out OUT` where OUT already holds a file `keep.txt`; returns
/// (exit status, stderr).
fn run_config(dir: &Path, config: &Path) -> (i32, String, PathBuf) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "previous results").unwrap();
    let o = bin().arg("run").arg(config).arg("--out").arg(&out).arg("--quiet").output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned(), out)
}

/// After a failed run, the out folder is as it was and no staging folder is left beside it.
fn assert_untouched(dir: &Path, out: &Path) {
    let names: Vec<String> =
        std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["keep.txt".to_string()], "the out folder changed");
    let stray: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "left behind: {stray:?}");
}

#[test]
fn run_writes_every_output_and_results_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "N,energy\n".to_string()
        + &(0..16).map(|i| format!("{},{}\n", i, -0.1 * i as f64 - 0.01 * (i * i) as f64)).collect::<String>();
    write(dir.path(), "series.csv", &csv);
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("[data]\ncsv = \"series.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 10\n{SMALL_MODEL}"),
    );
    let out = dir.path().join("res");
    let o = bin().arg("run").arg(&cfg).arg("--out").arg(&out).arg("--quiet").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("tiny") && table.contains("baseline ar3_ols"), "{table}");

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let e = &r["experiments"][0];
    assert_eq!(e["id"], "tiny");
    assert_eq!(e["params"], (1 + 8 + 1) * 4 * 8 + 8 + 1); // LSTM(8) on 1 feature + Dense(1)
    let runs = e["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        for k in ["seed", "mse_all", "mse_extrapolated", "max_abs_error", "final_loss", "final_val_loss", "seconds"] {
            assert!(run[k].is_number(), "run key {k}: {}", run[k]);
        }
        assert_eq!(run["prediction"].as_array().unwrap().len(), 16);
    }
    let b = r["baselines"].as_array().unwrap();
    assert!(b.len() >= 6);
    for k in ["id", "mse_all", "mse_extrapolated", "prediction"] {
        assert!(!b[0][k].is_null(), "baseline key {k}");
    }
    for f in ["runs/tiny_seed0_predictions.csv", "runs/tiny_seed1_history.csv", "report.html"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let pred = std::fs::read_to_string(out.join("runs/tiny_seed0_predictions.csv")).unwrap();
    assert!(pred.starts_with("N,true,predicted"), "{pred}");
    assert_eq!(pred.lines().count(), 17);
    let hist = std::fs::read_to_string(out.join("runs/tiny_seed1_history.csv")).unwrap();
    assert_eq!(hist.lines().count(), 6);
    let pngs = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"))
        .count();
    let svgs = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(pngs >= 3 && pngs == svgs, "{pngs} PNG, {svgs} SVG");
}

#[test]
fn bad_input_fails_with_a_message_and_leaves_the_out_folder_alone() {
    let cases: Vec<(&str, &str, &str)> = vec![
        ("missing file", "[data]\ncsv = \"nope.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\n", "nope.csv"),
        ("missing column", "[data]\ncsv = \"s.csv\"\nx = \"N\"\ny = \"E\"\ntrain = 12\n", "no column named 'E'"),
        (
            "empty cell",
            "[data]\ncsv = \"empty.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\n",
            "column 'energy' is empty",
        ),
        ("NaN", "[data]\ncsv = \"nan.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\n", "NaN"),
        (
            "x not increasing",
            "[data]\ncsv = \"dec.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\n",
            "strictly increasing",
        ),
        (
            "train too large",
            "[data]\ncsv = \"s.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 30\n",
            "train = 30 is larger than the 20 points",
        ),
        ("unknown key", "[data]\ncsv = \"s.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\nsmoothing = 3\n", "smoothing"),
    ];
    let series = std::fs::read_to_string(root().join("data/seed_ccd_pairing_g0.5.csv")).unwrap();
    for (what, data, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "s.csv", &series);
        write(dir.path(), "empty.csv", &series.replacen("-0.2116753732", "", 1));
        write(dir.path(), "nan.csv", &series.replacen("-0.2116753732", "NaN", 1));
        write(dir.path(), "dec.csv", &series.replacen("\n8,", "\n5,", 1));
        let cfg = write(dir.path(), "c.toml", &format!("{data}{SMALL_MODEL}"));
        let (code, err, out) = run_config(dir.path(), &cfg);
        assert_ne!(code, 0, "{what}: succeeded");
        assert!(err.contains(needle), "{what}: message does not name the problem ({needle}): {err}");
        assert!(err.lines().count() <= 3 && !err.contains("panicked"), "{what}: {err}");
        assert_untouched(dir.path(), &out);
    }
}

#[test]
fn model_config_errors_name_the_layer_and_value() {
    let series = std::fs::read_to_string(root().join("data/seed_ccd_pairing_g0.5.csv")).unwrap();
    let data = "[data]\ncsv = \"s.csv\"\nx = \"N\"\ny = \"energy\"\ntrain = 12\n";
    let cases = [
        ("window too long", "[model]\nkind = \"window\"\nwindow = 12\nlayers = [ { type = \"LSTM\", units = 4 }, { type = \"Dense\", units = 1 } ]\n", "window length 12 needs at least 13"),
        ("unknown layer key", "[model]\nkind = \"window\"\nwindow = 2\nlayers = [ { type = \"LSTM\", unit = 4 }, { type = \"Dense\", units = 1 } ]\n", "unknown key 'unit'"),
        ("fractional units", "[model]\nkind = \"window\"\nwindow = 2\nlayers = [ { type = \"LSTM\", units = 2.5 }, { type = \"Dense\", units = 1 } ]\n", "2.5"),
        ("unknown activation", "[model]\nkind = \"window\"\nwindow = 2\nlayers = [ { type = \"LSTM\", units = 4, activation = \"swishy\" }, { type = \"Dense\", units = 1 } ]\n", "swishy"),
        ("unknown layer type", "[model]\nkind = \"window\"\nwindow = 2\nlayers = [ { type = \"Conv1D\", units = 4 } ]\n", "Conv1D"),
        ("wrong output", "[model]\nkind = \"window\"\nwindow = 2\nlayers = [ { type = \"LSTM\", units = 4 } ]\n", "one value per y column"),
    ];
    for (what, model, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "s.csv", &series);
        let cfg = write(dir.path(), "c.toml", &format!("{data}{model}[fit]\nepochs = 2\nseeds = [0]\n"));
        let (code, err, out) = run_config(dir.path(), &cfg);
        assert_ne!(code, 0, "{what}: succeeded");
        assert!(err.contains(needle), "{what}: {err}");
        assert_untouched(dir.path(), &out);
    }
}

#[test]
fn seed_command_rejects_unknown_models() {
    let o = bin()
        .args(["seed", "--models", "S1,S9", "--out"])
        .arg(std::env::temp_dir().join("memcell-never"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("S9"));
}

#[test]
fn a_seed_gives_the_same_results_twice() {
    let s = memcell::datasets::seed_series();
    let specs: Vec<_> = experiment::seed_specs().into_iter().filter(|s| s.id == "S1").collect();
    let fit = FitSpec { epochs: 20, seeds: vec![3], ..FitSpec::default() };
    let a = experiment::run_all(&s, "", 12, &specs, &fit, &mut Quiet).unwrap();
    let b = experiment::run_all(&s, "", 12, &specs, &fit, &mut Quiet).unwrap();
    assert_eq!(a.experiments[0].runs[0].prediction, b.experiments[0].runs[0].prediction);
    assert_eq!(a.experiments[0].runs[0].loss, b.experiments[0].runs[0].loss);
}

/// The note's five experiments over five seeds land where Keras's do. Keras 3.15 medians of
/// mse_all over seeds 0-4 on this kind of machine (bench/keras_seed.py): S1 5.1e-5,
/// S2 3.3e-1, S3 1.5e-2, S4 1.5e-4, S5 6.0e-2. Seeds draw different initial weights in the
/// two libraries, so the medians are compared within a factor of 5 (from the same initial
/// weights the trajectories agree to float32 rounding: tests/keras_training.rs).
#[test]
fn seed_experiments_match_keras_extrapolation_errors() {
    let keras = [("S1", 5.1e-5), ("S2", 3.3e-1), ("S3", 1.5e-2), ("S4", 1.5e-4), ("S5", 6.0e-2)];
    let s = memcell::datasets::seed_series();
    let r = experiment::run_all(&s, "", 12, &experiment::seed_specs(), &FitSpec::default(), &mut Quiet).unwrap();
    let params: Vec<usize> = r.experiments.iter().map(|e| e.params).collect();
    assert_eq!(params, vec![40_601, 752_001, 753_251, 675_501, 40_601]);
    for (e, (id, k)) in r.experiments.iter().zip(keras) {
        assert_eq!(e.id, id);
        let (median, _, _) = e.mse_stats();
        let ratio = median / k;
        assert!((0.2..5.0).contains(&ratio), "{id}: median mse_all {median:.3e}, Keras {k:.1e}");
    }
    // S2's sigmoid layers saturate: it predicts an almost constant value, as in Keras.
    let s2 = &r.experiments[1].runs[0].prediction;
    let spread = s2[12..].iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
        - s2[12..].iter().fold(f64::INFINITY, |a, &b| a.min(b));
    assert!(spread < 0.05, "S2 extrapolation spread {spread}");
}

#[test]
fn pairing_command_regenerates_the_bundled_series() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairing.csv");
    let o = bin().args(["data", "pairing", "--g", "0.5", "--n", "2:40:2", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let bundled = memcell::datasets::seed_series();
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut it = l.split(',');
            (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 20);
    for ((n, e), (x, y)) in rows.iter().zip(bundled.x.iter().zip(bundled.y0())) {
        assert_eq!(n, x);
        assert!((e - y).abs() < 1e-7, "N = {n}: {e} vs bundled {y}");
    }
    let bad = bin().args(["data", "pairing", "--n", "3:7:2"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("odd"), "{}", String::from_utf8_lossy(&bad.stderr));
}
