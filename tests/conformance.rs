//! Keras conformance: every bundled fixture passes in f64, the `verify` command reports and
//! exits as documented, and a fixture whose reference is wrong fails.

use memcell::model::{read_safetensors, write_safetensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    vec![root.join("keras"), root.join("keras_extra")]
}

#[test]
fn every_bundled_fixture_passes_in_f64() {
    let files = memcell::verify::collect(&fixture_dirs());
    assert!(files.len() >= 12 + 264, "only {} fixtures found", files.len());
    let failed: Vec<String> =
        files.iter().map(|f| memcell::verify::run_fixture(f)).filter(|r| !r.passed()).map(|r| r.line()).collect();
    assert!(failed.is_empty(), "{} of {} fixtures fail:\n{}", failed.len(), files.len(), failed.join("\n"));
}

/// Rewrites a fixture with one reference value changed.
fn corrupt(src: &Path, dst: &Path, tensor: &str, delta: f64) {
    let bytes = std::fs::read(src).unwrap();
    let f = read_safetensors(src, &bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f64>)> = Vec::new();
    let mut mask = None;
    for (n, (s, v)) in &f.tensors {
        if n == "mask" {
            mask = Some((s.clone(), v.clone()));
            continue;
        }
        let mut v = v.clone();
        if n == tensor {
            v[0] += delta;
        }
        tensors.push((n.clone(), s.clone(), v));
    }
    assert!(mask.is_none(), "pick a fixture without a mask");
    let meta: HashMap<String, String> = f.metadata.clone();
    std::fs::write(dst, write_safetensors(&tensors, Some(meta)).unwrap()).unwrap();
}

#[test]
fn verify_command_reports_passes_failures_and_exit_status() {
    let bin = env!("CARGO_BIN_EXE_memcell");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/lstm_sequences.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let bad_out = dir.path().join("bad_output.safetensors");
    corrupt(&good, &bad_out, "output", 1e-3);
    let bad_grad = dir.path().join("bad_grad.safetensors");
    corrupt(&good, &bad_grad, "grad/lstm/recurrent_kernel", 1e-3);
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a fixture").unwrap();

    let out = Command::new(bin).arg("verify").arg(&good).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS  lstm_sequences") && text.ends_with("1 passed, 0 failed\n"), "{text}");

    let out = Command::new(bin).arg("verify").arg(&good).arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  bad_output") && text.contains("output: 1 of"), "{text}");
    assert!(text.contains("FAIL  bad_grad") && text.contains("grad/lstm/recurrent_kernel"), "{text}");
    assert!(text.contains("FAIL  junk") && text.contains("not a safetensors file"), "{text}");
    assert!(text.ends_with("1 passed, 3 failed\n"), "{text}");
}

#[test]
fn unsupported_layer_fails_that_fixture_with_a_message() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/dense_tanh_3d.safetensors");
    let bytes = std::fs::read(&good).unwrap();
    let f = read_safetensors(&good, &bytes).unwrap();
    let mut meta = f.metadata.clone();
    meta.insert("model".into(), meta["model"].replace("\"Dense\"", "\"ConvLSTM1D\""));
    let tensors: Vec<(String, Vec<usize>, Vec<f64>)> =
        f.tensors.iter().map(|(n, (s, v))| (n.clone(), s.clone(), v.clone())).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("conv.safetensors");
    std::fs::write(&p, write_safetensors(&tensors, Some(meta)).unwrap()).unwrap();
    let r = memcell::verify::run_fixture(&p);
    assert!(!r.passed());
    assert!(r.line().contains("ConvLSTM1D"), "{}", r.line());
}
