//! Masks checked against `torch.nn.utils.prune` run in the project's Python environment: the same
//! weights pruned by 10% of the survivors per round, layerwise (`l1_unstructured` applied again
//! each round) and global (`global_unstructured`), must give the same masks bit for bit. The
//! layers are sized so that removal counts end in .5 (225 → 22.5 and later 16.5; 245 → 24.5),
//! where rounding halves away from zero would remove one weight more than PyTorch.

use super::*;

const ROUNDS: u32 = 14;

const SCRIPT: &str = r#"
import json, sys
import torch
from torch.nn.utils import prune

spec = json.load(sys.stdin)
rounds = spec["rounds"]
def modules():
    out = []
    for weights in spec["layers"]:
        m = torch.nn.Linear(len(weights), 1, bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(weights, dtype=torch.float32).view(1, -1))
        out.append(m)
    return out

layerwise = modules()
per_round = []
for r in range(rounds):
    for m in layerwise:
        prune.l1_unstructured(m, "weight", amount=spec["rate"])
    per_round.append([m.weight_mask.view(-1).int().tolist() for m in layerwise])

glob = modules()
global_rounds = []
for r in range(rounds):
    prune.global_unstructured([(m, "weight") for m in glob], pruning_method=prune.L1Unstructured, amount=spec["rate"])
    global_rounds.append([m.weight_mask.view(-1).int().tolist() for m in glob])
print(json.dumps({"layerwise": per_round, "global": global_rounds}))
"#;

fn python() -> std::path::PathBuf {
    std::env::var_os("VIRTUAL_ENV").map_or_else(|| "python3".into(), |venv| std::path::Path::new(&venv).join("bin").join("python"))
}

/// Distinct magnitudes of both signs, so PyTorch's `topk` has no ties to break its own way.
fn layer(size: usize, phase: f32) -> Vec<f32> {
    (0..size).map(|i| (i as f32 * 0.731 + phase).sin() * (1.0 + i as f32 * 1e-3)).collect()
}

fn torch_masks(layers: &[Vec<f32>], rate: f64) -> serde_json::Value {
    use std::io::Write;
    let input = serde_json::json!({ "layers": layers, "rate": rate, "rounds": ROUNDS }).to_string();
    let mut child = std::process::Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python().display()));
    child.stdin.take().map(|mut s| s.write_all(input.as_bytes())).transpose().unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn as_masks(value: &serde_json::Value) -> Vec<Vec<bool>> {
    value
        .as_array()
        .map(|layers| {
            layers.iter().map(|m| m.as_array().map(|v| v.iter().map(|x| x.as_i64() == Some(1)).collect()).unwrap_or_default()).collect()
        })
        .unwrap_or_default()
}

#[test]
fn prune_masks_at_ten_percent_equal_torch_nn_utils_prune() {
    let weights = vec![layer(225, 0.0), layer(20, 1.3)];
    let reference = torch_masks(&weights, 0.1);
    for (scope, key) in [(Scope::Layerwise, "layerwise"), (Scope::Global, "global")] {
        let mut masks: Vec<Vec<bool>> = weights.iter().map(|w| vec![true; w.len()]).collect();
        let mut halves = 0;
        for round in 1..=ROUNDS {
            let alive: Vec<usize> = masks.iter().map(|m| m.iter().filter(|a| **a).count()).collect();
            let counted: Vec<usize> = if scope == Scope::Global { vec![alive.iter().sum()] } else { alive };
            halves += counted.iter().filter(|n| (0.1 * **n as f64).fract() == 0.5).count();
            masks = next_masks(Method::Imp, scope, 0.1, round, &weights, &masks, &mut ChaCha8Rng::seed_from_u64(0));
            let want = as_masks(&reference[key][(round - 1) as usize]);
            assert_eq!(masks, want, "{key} round {round}: masks differ from torch.nn.utils.prune");
        }
        // The comparison must have met counts ending in .5, or it shows nothing about rounding.
        assert!(halves >= 1, "{key}: no removal count ended in .5");
        eprintln!("{key}: {ROUNDS} rounds equal torch.nn.utils.prune's masks, {halves} removal count(s) ending in .5");
    }
}
