//! `prune` stages: one round of a ticket series per node (science.md, "Pruning").
//!
//! Round r starts from round r-1's trained weights and mask (round 1 from the dense network),
//! removes a share of the surviving prunable weights, rewinds the survivors, and retrains with a
//! fresh optimizer and schedule. The mask arithmetic is plain Rust below, tested on its own.

use super::checkpoint;
use super::models::WEIGHTS_FILE;
use super::train::{self, Recipe};
use super::{Context, Result, StageError};
use lthlang::check::Value;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

pub const MASK_FILE: &str = "mask.safetensors";

/// Weights to remove from `alive` survivors at `rate`: round(rate × alive) with halves to even,
/// as `torch.nn.utils.prune` does (Python's `round`), so a layer whose count ends in .5 (22.5 of
/// 225 at 10%) loses 22 weights here as there, and the masks of a series match PyTorch's.
pub fn removal_count(alive: usize, rate: f64) -> usize {
    ((rate * alive as f64).round_ties_even() as usize).min(alive)
}

/// Survivors of a layer of `total` weights after `rounds` rounds at `rate`.
pub fn survivors_after(total: usize, rate: f64, rounds: u32) -> usize {
    (0..rounds).fold(total, |alive, _| alive - removal_count(alive, rate))
}

/// Alive indices ordered by (|w|, index): the deterministic pruning order.
fn ranked(layers: &[(&[f32], &[bool])]) -> Vec<(usize, usize)> {
    let mut alive: Vec<(usize, usize)> = Vec::new();
    for (l, (_, mask)) in layers.iter().enumerate() {
        alive.extend(mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| (l, i)));
    }
    alive.sort_by(|a, b| {
        let wa = layers[a.0].0[a.1].abs();
        let wb = layers[b.0].0[b.1].abs();
        wa.total_cmp(&wb).then(a.cmp(b))
    });
    alive
}

/// Removes the `remove` alive weights of smallest magnitude across `layers` (one threshold; a
/// single layer for layerwise pruning). Ties go to the lower layer, then the lower index.
pub fn magnitude(layers: &[(&[f32], &[bool])], remove: usize) -> Vec<Vec<bool>> {
    let mut masks: Vec<Vec<bool>> = layers.iter().map(|(_, m)| m.to_vec()).collect();
    for (l, i) in ranked(layers).into_iter().take(remove) {
        masks[l][i] = false;
    }
    masks
}

/// Removes `remove` alive weights chosen uniformly at random across `masks`.
pub fn random(masks: &[&[bool]], remove: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<bool>> {
    let mut out: Vec<Vec<bool>> = masks.iter().map(|m| m.to_vec()).collect();
    let mut alive: Vec<(usize, usize)> = Vec::new();
    for (l, m) in masks.iter().enumerate() {
        alive.extend(m.iter().enumerate().filter(|(_, a)| **a).map(|(i, _)| (l, i)));
    }
    for (l, i) in alive.choose_multiple(rng, remove) {
        out[*l][*i] = false;
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Layerwise,
    Global,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Imp,
    Random,
    OneShot,
}

/// Next masks for one round. `weights` are the previous round's trained weights (IMP), or the
/// dense weights (one-shot); `masks` the previous masks; `round` the round being made (1-based).
pub fn next_masks(
    method: Method,
    scope: Scope,
    rate: f64,
    round: u32,
    weights: &[Vec<f32>],
    masks: &[Vec<bool>],
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<bool>> {
    let alive = |m: &[bool]| m.iter().filter(|a| **a).count();
    match (method, scope) {
        (Method::Random, Scope::Layerwise) => masks.iter().map(|m| random(&[m], removal_count(alive(m), rate), rng).remove(0)).collect(),
        (Method::Random, Scope::Global) => {
            let total = masks.iter().map(|m| alive(m)).sum();
            random(&masks.iter().map(Vec::as_slice).collect::<Vec<_>>(), removal_count(total, rate), rng)
        }
        (Method::Imp, Scope::Layerwise) => {
            weights.iter().zip(masks).map(|(w, m)| magnitude(&[(w, m)], removal_count(alive(m), rate)).remove(0)).collect()
        }
        (Method::Imp, Scope::Global) => {
            let layers: Vec<(&[f32], &[bool])> = weights.iter().zip(masks).map(|(w, m)| (w.as_slice(), m.as_slice())).collect();
            let total = masks.iter().map(|m| alive(m)).sum();
            magnitude(&layers, removal_count(total, rate))
        }
        (Method::OneShot, Scope::Layerwise) => weights
            .iter()
            .map(|w| {
                let full = vec![true; w.len()];
                magnitude(&[(w, &full)], w.len() - survivors_after(w.len(), rate, round)).remove(0)
            })
            .collect(),
        (Method::OneShot, Scope::Global) => {
            let full: Vec<Vec<bool>> = weights.iter().map(|w| vec![true; w.len()]).collect();
            let layers: Vec<(&[f32], &[bool])> = weights.iter().zip(&full).map(|(w, m)| (w.as_slice(), m.as_slice())).collect();
            let total: usize = weights.iter().map(Vec::len).sum();
            magnitude(&layers, total - survivors_after(total, rate, round))
        }
    }
}

fn to_vec_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.f_flatten(0, -1)?.f_to_kind(Kind::Float)?.f_to_device(tch::Device::Cpu)?)?)
}

fn mask_tensor(mask: &[bool], like: &Tensor) -> Result<Tensor> {
    let bytes: Vec<f32> = mask.iter().map(|m| if *m { 1.0 } else { 0.0 }).collect();
    Ok(Tensor::f_from_slice(&bytes)?.f_reshape(like.size())?.f_to_kind(like.kind())?.f_to_device(like.device())?)
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let request = ctx.request;
    let round = request.round.ok_or_else(|| StageError::new("a prune node needs a round"))?;
    let from_name = match ctx.field("from")? {
        Value::Stage(s) => s.clone(),
        other => return Err(StageError::new(format!("`from` should name a train stage, got {other:?}"))),
    };
    let dense = request
        .upstream_of(&from_name, None)
        .ok_or_else(|| StageError::new(format!("the dense checkpoint `{from_name}` was not provided")))?;
    let previous_dir = if round == 1 {
        dense.dir.clone()
    } else {
        request
            .upstream
            .iter()
            .find(|u| u.stage == request.stage && u.round == Some(round - 1))
            .map(|u| u.dir.clone())
            .ok_or_else(|| StageError::new(format!("round {} of `{}` was not provided", round - 1, request.stage)))?
    };
    let method = match request.method.as_str() {
        "random" => Method::Random,
        "oneshot" => Method::OneShot,
        _ => Method::Imp,
    };
    let scope = if ctx.word("scope")? == "global" { Scope::Global } else { Scope::Layerwise };
    let rate = ctx.float("rate")?;
    let mut recipe = Recipe::from_fields(&dense.method, &dense.fields)?;
    // Each round keeps the weights it retrains from (masked and rewound: the ticket itself) as
    // its own epoch 0; the dense network's kept epochs are the dense node's business.
    recipe.keep_epochs = vec![0];
    let (spec, init_file, data) = train::inputs(ctx, &dense.fields)?;
    let net = spec.load(&previous_dir.join(WEIGHTS_FILE), ctx.device)?;
    let prunable = net.prunable(ctx.boolean("prune_output")?);
    let vars = net.variables();

    // Masks are computed from the previous round's trained weights (or the dense ones for one-shot).
    let previous_masks: Vec<Vec<bool>> = if round == 1 {
        prunable.iter().map(|n| vec![true; vars[n].numel()]).collect()
    } else {
        let stored = checkpoint::load(&previous_dir.join(MASK_FILE))?;
        prunable
            .iter()
            .map(|n| {
                stored
                    .get(n)
                    .ok_or_else(|| StageError::new(format!("{}: no mask for `{n}`", previous_dir.display())))
                    .and_then(to_vec_f32)
                    .map(|v| v.iter().map(|x| *x > 0.5).collect())
            })
            .collect::<Result<_>>()?
    };
    let source_weights =
        if method == Method::OneShot { checkpoint::load(&dense.dir.join(WEIGHTS_FILE))? } else { checkpoint::snapshot(&vars) };
    let weights: Vec<Vec<f32>> = prunable.iter().map(|n| to_vec_f32(&source_weights[n])).collect::<Result<_>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let masks = next_masks(method, scope, rate, round, &weights, &previous_masks, &mut rng);

    // Rewind the survivors, with biases and batch-norm statistics, bit for bit.
    match ctx.field("rewind")? {
        Value::Word(w) if w == "init" => checkpoint::restore(&vars, &checkpoint::load(&init_file)?, &init_file)?,
        Value::Call { args, .. } => {
            let k = args.get("k").and_then(Value::as_int).unwrap_or(0);
            let file = dense.dir.join(format!("epoch-{k}.safetensors"));
            if !file.is_file() {
                return Err(StageError::new(format!(
                    "`rewind = epoch({k})`: the dense network `{from_name}` kept no weights after epoch {k} ({} is missing); rerun with `--force {from_name}`",
                    file.display()
                )));
            }
            checkpoint::restore(&vars, &checkpoint::load(&file)?, &file)?;
        }
        _ => {}
    }
    let mut mask_tensors = BTreeMap::new();
    {
        let _guard = tch::no_grad_guard();
        for (name, mask) in prunable.iter().zip(&masks) {
            let m = mask_tensor(mask, &vars[name])?;
            let _ = vars[name].shallow_clone().f_mul_(&m)?;
            mask_tensors.insert(name.clone(), m);
        }
    }
    let outcome = train::train(ctx, &net, &data, &recipe, &mask_tensors, Some(&request.output))?;
    let mut metadata = spec.metadata(&request.stage);
    metadata.insert("round".to_owned(), round.to_string());
    checkpoint::save(&request.output.join(WEIGHTS_FILE), &net.variables(), &metadata)?;
    let stored_masks: BTreeMap<String, Tensor> = mask_tensors.iter().map(|(k, v)| (k.clone(), v.to_kind(Kind::Uint8))).collect();
    checkpoint::save(&request.output.join(MASK_FILE), &stored_masks, &metadata)?;
    let mut metrics = serde_json::json!({
        "round": round,
        "val_accuracy": outcome.val_accuracy,
        "best_epoch": outcome.best_epoch,
        "history": outcome.history,
        "density": density(&net, &prunable, &masks),
        "weights_remaining": density_share(&masks),
        "precision": outcome.precision.name(),
    });
    outcome.test.insert_into(&mut metrics, "test_");
    Ok(metrics)
}

fn density_share(masks: &[Vec<bool>]) -> f64 {
    let total: usize = masks.iter().map(Vec::len).sum();
    let alive: usize = masks.iter().map(|m| m.iter().filter(|a| **a).count()).sum();
    alive as f64 / total.max(1) as f64
}

/// Density as % of prunable weights, % of all trainable parameters, and per layer.
fn density(net: &super::models::Network, prunable: &[String], masks: &[Vec<bool>]) -> serde_json::Value {
    let all: usize = net.vs.trainable_variables().iter().map(Tensor::numel).sum();
    let pruned: usize = masks.iter().map(|m| m.iter().filter(|a| !**a).count()).sum();
    let layers: BTreeMap<&str, f64> =
        prunable.iter().zip(masks).map(|(n, m)| (n.as_str(), density_share(std::slice::from_ref(m)))).collect();
    serde_json::json!({
        "prunable": density_share(masks),
        "all_parameters": (all - pruned) as f64 / all.max(1) as f64,
        "layers": layers,
    })
}

#[cfg(test)]
mod torch_reference_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn negative_weights_are_ranked_by_magnitude_not_sign() {
        // The published freeze `weight < eps` (no abs) treated every negative weight as pruned.
        let w = [-0.9f32, 0.1, -0.05, 0.8];
        let m = [true; 4];
        let out = magnitude(&[(&w, &m)], 2).remove(0);
        assert_eq!(out, vec![true, false, false, true]);
    }

    #[test]
    fn removal_counts_round_halves_to_even() {
        // 0.1 × 225 = 22.5 → 22, 0.1 × 165 = 16.5 → 16, 0.1 × 35 = 3.5 → 4, 0.5 × 5 = 2.5 → 2.
        assert_eq!(removal_count(225, 0.1), 22);
        assert_eq!(removal_count(165, 0.1), 16);
        assert_eq!(removal_count(35, 0.1), 4);
        assert_eq!(removal_count(5, 0.5), 2);
        assert_eq!(removal_count(3, 0.5), 2);
        assert_eq!(removal_count(0, 0.1), 0);
    }

    #[test]
    fn ties_break_by_index_so_masks_are_deterministic() {
        let w = [0.5f32, 0.5, 0.5, 0.5];
        let out = magnitude(&[(&w, &[true; 4])], 2).remove(0);
        assert_eq!(out, vec![false, false, true, true]);
    }

    #[test]
    fn pruned_weights_are_never_revived_and_masks_only_shrink() {
        let w = vec![vec![0.0f32, 5.0, 0.3, -2.0, 0.01, 7.0]];
        let mut masks = vec![vec![true, false, true, true, true, true]];
        for round in 1..6 {
            let next = next_masks(Method::Imp, Scope::Layerwise, 0.3, round, &w, &masks, &mut rng());
            for (a, b) in masks[0].iter().zip(&next[0]) {
                assert!(*a || !*b, "a pruned weight came back");
            }
            masks = next;
        }
        assert!(!masks[0][1], "index 1 was pruned before the first round and must stay pruned");
    }

    #[test]
    fn layerwise_density_after_r_rounds_is_within_one_weight_of_the_power_law() {
        let sizes = [27usize, 1000, 4608, 10];
        let weights: Vec<Vec<f32>> = sizes.iter().map(|n| (0..*n).map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5).collect()).collect();
        let mut masks: Vec<Vec<bool>> = sizes.iter().map(|n| vec![true; *n]).collect();
        for r in 1..=14u32 {
            masks = next_masks(Method::Imp, Scope::Layerwise, 0.1, r, &weights, &masks, &mut rng());
            for (n, m) in sizes.iter().zip(&masks) {
                let alive = m.iter().filter(|a| **a).count() as f64;
                let expected = *n as f64 * 0.9f64.powi(r as i32);
                assert!(
                    (alive - expected).abs() <= 1.0 + 1e-9 * expected + (r as f64) * 0.5,
                    "layer of {n}, round {r}: {alive} alive, expected {expected:.2}"
                );
            }
        }
    }

    #[test]
    fn global_pruning_uses_one_threshold_across_layers() {
        let weights = vec![vec![0.1f32, 0.2, 0.3], vec![10.0, 20.0, 0.05]];
        let masks = vec![vec![true; 3], vec![true; 3]];
        let out = next_masks(Method::Imp, Scope::Global, 0.5, 1, &weights, &masks, &mut rng());
        assert_eq!(out, vec![vec![false, false, true], vec![true, true, false]]);
    }

    #[test]
    fn random_pruning_removes_the_same_counts_reproducibly() {
        let weights = vec![vec![1.0f32; 100]];
        let masks = vec![vec![true; 100]];
        let a = next_masks(Method::Random, Scope::Layerwise, 0.2, 1, &weights, &masks, &mut rng());
        let b = next_masks(Method::Random, Scope::Layerwise, 0.2, 1, &weights, &masks, &mut rng());
        assert_eq!(a, b);
        assert_eq!(a[0].iter().filter(|x| !**x).count(), 20);
    }

    #[test]
    fn one_shot_reaches_the_same_density_as_imp_with_nested_masks() {
        let weights = vec![(0..200).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<f32>>()];
        let full = vec![vec![true; 200]];
        let mut previous = full.clone();
        for r in 1..=5 {
            let m = next_masks(Method::OneShot, Scope::Layerwise, 0.2, r, &weights, &full, &mut rng());
            assert_eq!(m[0].iter().filter(|a| **a).count(), survivors_after(200, 0.2, r));
            assert!(previous[0].iter().zip(&m[0]).all(|(a, b)| *a || !*b));
            previous = m;
        }
    }
}
