//! `explain tcav`: testing with concept activation vectors (science.md, "TCAV and completeness").
//!
//! The concept bank's directions v live in the space of the layer's pooled activation
//! e = (1/hw) Σ_ij A_·ij, where the embed stage put them. The logit y_c is a function of the whole
//! map A, so its derivative along v needs a way to move A when e moves. We move every position by
//! the same amount: δA_kij = ε v_k changes e by exactly ε v, and among all changes of A that do so
//! it is the smallest (the pseudo-inverse of the averaging). Hence
//!
//!   S_c,v(x) = d/dε y_c(A + ε v ⊗ 1) = Σ_k v_k Σ_ij ∂y_c/∂A_kij,
//!
//! the gradient summed (not averaged) over positions, dotted with v. Where the layer is followed
//! only by global pooling and the head, Σ_ij ∂y_c/∂A_kij = W[c, k] and S is exactly ∂y_c/∂e · v.
//! Only the sign of S enters the TCAV score, so the choice between sum and mean would not change
//! a score; the sum is kept because it is the derivative in the bank's own units.
//!
//! TCAV score of (class c, concept): the share of the chosen images of class c with S > 0.
//! Significance: the same score for `random` random unit directions (Gaussian, normalised, drawn
//! from the node's seed and the `seed` field), and a two-sided Student t-test of the concept's
//! score against the random directions' scores ([`ttest`]); significant when p < `alpha`.

pub mod ttest;

use super::data::Dataset;
use super::saliency::{gradients, Target};
use super::selection::Selection;
use super::{checkpoint, io_error, Context, Result, StageError};
use crate::models::Network;
use lthlang::check::Value;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

pub const CONCEPTS_FILE: &str = "concepts.safetensors";
pub const BANK_FILE: &str = "bank.json";
pub const TCAV_FILE: &str = "tcav.safetensors";

const IMAGES_PER_PASS: i64 = 16;

/// ∂y/∂e for the pooled activation e: the gradient summed over positions, `[B, K, h, w]` →
/// `[B, K]`. A gradient without positions (`[B, K]`) is already in that space.
pub fn pooled_gradient(gradient: &Tensor) -> Result<Tensor> {
    match gradient.dim() {
        2 => Ok(gradient.f_to_kind(Kind::Double)?),
        4 => Ok(gradient.f_sum_dim_intlist(&[2i64, 3][..], false, Kind::Double)?),
        d => Err(StageError::new(format!("cannot pool a gradient of {d} dimensions ({:?})", gradient.size()))),
    }
}

/// The share of rows of `derivatives` `[n, D]` that are positive, per column. No rows give NaN.
pub fn positive_share(derivatives: &Tensor) -> Result<Vec<f64>> {
    let n = derivatives.size().first().copied().unwrap_or(0);
    let positive = derivatives.f_gt(0.0)?.f_sum_dim_intlist(0, false, Kind::Double)?.f_div_scalar(n as f64)?;
    Ok(Vec::<f64>::try_from(positive.f_to_device(tch::Device::Cpu)?)?)
}

/// `count` unit vectors in `dim` dimensions, uniform on the sphere: Gaussian coordinates
/// (Box–Muller on ChaCha8) divided by their norm.
pub fn random_directions(count: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    (0..count)
        .map(|_| {
            let v: Vec<f64> = (0..dim)
                .map(|_| {
                    let u1 = 1.0 - rng.gen::<f64>();
                    let u2 = rng.gen::<f64>();
                    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Directional derivatives `[n, D]` of class `class`'s logit for images `x` along `directions`
/// `[D, K]` (double), in passes of a few images.
pub fn derivatives(net: &Network, x: &Tensor, layer: &str, class: i64, directions: &Tensor) -> Result<Tensor> {
    let n = x.size().first().copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let count = IMAGES_PER_PASS.min(n - start);
        let targets = Tensor::f_full([count], class, (Kind::Int64, x.device()))?;
        let pass = gradients(net, &x.f_narrow(0, start, count)?, layer, &targets, Target::Label)?;
        let pooled = pooled_gradient(&pass.gradient)?;
        if pooled.size().get(1) != directions.size().get(1) {
            return Err(StageError::new(format!(
                "layer `{layer}` has {:?} channels but the concept directions have {:?} dimensions",
                pooled.size().get(1),
                directions.size().get(1)
            )));
        }
        out.push(pooled.f_matmul(&directions.f_tr()?)?);
        start += count;
    }
    if out.is_empty() {
        return Ok(Tensor::f_zeros([0, directions.size()[0]], (Kind::Double, x.device()))?);
    }
    Ok(Tensor::f_cat(&out, 0)?)
}

/// The concept bank: names and directions `[C, d]`.
struct Bank {
    names: Vec<String>,
    directions: Tensor,
}

fn load_bank(ctx: &Context, stage: &str) -> Result<Bank> {
    let node = ctx.upstream(stage)?;
    let file = node.dir.join(CONCEPTS_FILE);
    let mut tensors = checkpoint::load(&file)?;
    let directions = tensors.remove("directions").ok_or_else(|| StageError::new(format!("{}: no `directions` tensor", file.display())))?;
    let path = node.dir.join(BANK_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, &e))?;
    let bank: serde_json::Value = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", path.display())))?;
    let names: Vec<String> =
        bank["names"].as_array().map(|a| a.iter().map(|n| n.as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default();
    let size = directions.size();
    if size.len() != 2 || usize::try_from(size[0]).ok() != Some(names.len()) {
        return Err(StageError::new(format!(
            "{}: `directions` has shape {size:?} but {} names {} concepts",
            file.display(),
            path.display(),
            names.len()
        )));
    }
    // The directions are only meaningful at the layer their embeddings were taken from.
    let layer = ctx.text("layer")?;
    if let Some(Value::Stage(from)) = node.fields.get("from") {
        if let Some(Value::Str(embedded)) = ctx.request.upstream_of(from, ctx.request.round).and_then(|u| u.fields.get("layer")) {
            if embedded != layer {
                return Err(StageError::new(format!(
                    "the concepts of `{stage}` live at layer `{embedded}` (embedded by `{from}`), not at `{layer}`"
                )));
            }
        }
    }
    Ok(Bank { names, directions: directions.f_to_kind(Kind::Double)? })
}

/// The class indices the `classes` field names; empty means every class.
fn classes(ctx: &Context, data: &Dataset) -> Result<Vec<i64>> {
    let names = &data.meta.class_names;
    let count = i64::try_from(data.meta.classes).unwrap_or(0);
    let items = match ctx.field("classes")? {
        Value::List(items) => items.clone(),
        other => return Err(StageError::new(format!("`classes` should be a list, got {other:?}"))),
    };
    if items.is_empty() {
        return Ok((0..count).collect());
    }
    items
        .iter()
        .map(|item| match item {
            Value::Int(i) if (0..count).contains(i) => Ok(*i),
            Value::Str(name) => names
                .iter()
                .position(|n| n == name)
                .map(|i| i64::try_from(i).unwrap_or(0))
                .ok_or_else(|| StageError::new(format!("`classes`: no class `{name}`; the dataset has {}", names.join(", ")))),
            other => Err(StageError::new(format!("`classes`: {other:?} is not one of the dataset's {count} classes"))),
        })
        .collect()
}

fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::Null
    }
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let layer = ctx.text("layer")?;
    let alpha = ctx.float("alpha")?;
    let random = usize::try_from(ctx.int("random")?).unwrap_or(0);
    let net = checkpoint::network_of(ctx, ctx.stage_name("of")?)?;
    let bank = load_bank(ctx, ctx.stage_name("concepts")?)?;
    let selection = Selection::from_field(ctx, "images")?;
    let data = Dataset::load(&ctx.upstream(&selection.dataset)?.dir, ctx.device)?;
    let split = data.split(&selection.split)?;
    let rows = selection.rows(split.len());
    let (x, labels) = split.batch(&Tensor::f_from_slice(&rows)?)?;
    let labels: Vec<i64> = Vec::<i64>::try_from(labels.f_to_device(tch::Device::Cpu)?)?;

    let dim = usize::try_from(bank.directions.size()[1]).unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
    rng.set_stream(u64::from_le_bytes(ctx.int("seed")?.to_le_bytes()));
    let random_rows: Vec<f64> = random_directions(random, dim, &mut rng).concat();
    let random_directions =
        Tensor::f_from_slice(&random_rows)?.f_reshape([i64::try_from(random).unwrap_or(0), i64::try_from(dim).unwrap_or(0)])?;
    let concepts = bank.names.len();
    let all_directions =
        Tensor::f_cat(&[bank.directions.f_to_device(tch::Device::Cpu)?, random_directions.shallow_clone()], 0)?.f_to_device(ctx.device)?;

    let classes = classes(ctx, &data)?;
    let (mut scores, mut p_values, mut random_scores, mut counts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut per_image, mut image_rows, mut image_labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut table = Vec::new();
    for &class in &classes {
        let members: Vec<i64> = (0..rows.len()).filter(|&i| labels[i] == class).map(|i| i64::try_from(i).unwrap_or(0)).collect();
        ctx.progress(format!("class {class}: {} images", members.len()));
        let xs = x.f_index_select(0, &Tensor::f_from_slice(&members)?.f_to_device(ctx.device)?)?;
        let derivative = derivatives(&net, &xs, layer, class, &all_directions)?;
        let shares = positive_share(&derivative)?;
        let (concept_shares, random_shares) = shares.split_at(concepts);
        let tests: Vec<Option<ttest::TTest>> =
            concept_shares.iter().map(|s| if members.is_empty() { None } else { ttest::student(&[*s], random_shares) }).collect();
        let p: Vec<f64> = tests.iter().map(|t| t.map_or(f64::NAN, |t| t.p)).collect();
        table.push(serde_json::json!({
            "class": data.meta.class_names.get(usize::try_from(class).unwrap_or(0)).cloned().unwrap_or_else(|| class.to_string()),
            "images": members.len(),
            "scores": concept_shares.iter().map(|s| finite_or_null(*s)).collect::<Vec<_>>(),
            "p_values": p.iter().map(|x| finite_or_null(*x)).collect::<Vec<_>>(),
            "significant": p.iter().map(|x| x.is_finite() && *x < alpha).collect::<Vec<_>>(),
            "random_mean": finite_or_null(random_shares.iter().sum::<f64>() / random.max(1) as f64),
        }));
        scores.extend_from_slice(concept_shares);
        random_scores.extend_from_slice(random_shares);
        p_values.extend(p);
        counts.push(i64::try_from(members.len()).unwrap_or(0));
        per_image.push(derivative.f_narrow(1, 0, i64::try_from(concepts).unwrap_or(0))?.f_to_device(tch::Device::Cpu)?);
        image_rows.extend(members.iter().map(|&i| rows[usize::try_from(i).unwrap_or(0)]));
        image_labels.extend(std::iter::repeat_n(class, members.len()));
    }

    let m = i64::try_from(classes.len()).unwrap_or(0);
    let to_f32 = |v: &[f64], cols: usize| -> Result<Tensor> {
        Ok(Tensor::f_from_slice(v)?.f_reshape([m, i64::try_from(cols).unwrap_or(0)])?.f_to_kind(Kind::Float)?)
    };
    let tensors = BTreeMap::from([
        ("scores".to_owned(), to_f32(&scores, concepts)?),
        ("p_values".to_owned(), to_f32(&p_values, concepts)?),
        ("random_scores".to_owned(), to_f32(&random_scores, random)?),
        ("random_directions".to_owned(), random_directions.f_to_kind(Kind::Float)?),
        ("classes".to_owned(), Tensor::f_from_slice(&classes)?),
        ("counts".to_owned(), Tensor::f_from_slice(&counts)?),
        ("derivatives".to_owned(), Tensor::f_cat(&per_image, 0)?.f_to_kind(Kind::Float)?),
        ("indices".to_owned(), Tensor::f_from_slice(&image_rows)?),
        ("labels".to_owned(), Tensor::f_from_slice(&image_labels)?),
    ]);
    let metadata = BTreeMap::from([("format".to_owned(), "lthlang-tcav-1".to_owned()), ("layer".to_owned(), layer.to_owned())]);
    checkpoint::save(&ctx.request.output.join(TCAV_FILE), &tensors, &metadata)?;
    Ok(serde_json::json!({
        "layer": layer,
        "concepts": bank.names,
        "random": random,
        "alpha": alpha,
        "classes": table,
    }))
}

#[cfg(test)]
mod tests;
