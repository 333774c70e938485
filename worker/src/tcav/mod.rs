//! `explain tcav`: testing with concept activation vectors (science.md, "TCAV and completeness").
//!
//! The CAVs v live in the space of the layer's pooled activation e = (1/hw) Σ_ij A_·ij, where
//! the embed stage put the probe embeddings they are trained on. The logit y_c is a function of the whole
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
//! TCAV score of (class c, CAV v): the share of the chosen images of class c with S > 0.
//! Significance as Kim et al. (2018) test it ([`runs`]): each concept's CAV is trained `runs`
//! times, against a fresh random set of probe images each time, giving one score per run; as many
//! random CAVs (random set against random set) give the null scores; a two-sided Student t-test
//! ([`ttest`], scipy's `ttest_ind`) compares the concept's run scores with the random ones; the
//! p-values of a class's concepts are corrected together ([`correction`]: Bonferroni by default,
//! or Benjamini–Hochberg), and a concept is significant when its corrected p < `alpha`. A random
//! image set taken as a concept (the control) is tested the same way and reported beside them.
//!
//! A concept shown by fewer than 2 probe images, or missing from fewer than 2, is untestable: it
//! has no CAVs, so its run scores, p-values and verdict are null in the metrics (NaN in
//! `tcav.safetensors`, its `cavs` rows included), never 0 or "not significant", and a warning
//! names it. It is not one of the hypotheses the correction counts (see [`stage`]).
//!
//! The CAVs are trained here from the bank's probe embeddings (its `from` node) and the concept
//! labels it was built with (`labels` or `probes`); the bank's own single direction per concept
//! plays no part, so any bank with labelled probes serves, and a `random` bank has none.

pub mod correction;
pub mod runs;
pub mod ttest;

use super::concepts;
use super::data::Dataset;
use super::saliency::{gradients, Target};
use super::selection::Selection;
use super::{checkpoint, Context, Result, StageError};
use crate::models::{self, Network};
use crate::precision::Compute;
use lthlang::check::Value;
use lthlang::solvers::svm::LinearSvm;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

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

/// What the CAVs are trained on: the probe embeddings of the bank's `from` node (train split) and,
/// per concept, the rows that show it.
struct Probes {
    names: Vec<String>,
    embeddings: ndarray::Array2<f64>,
    present: Vec<Vec<usize>>,
}

fn load_probes(ctx: &Context, stage: &str) -> Result<Probes> {
    let node = ctx.upstream(stage)?;
    let Some(Value::Stage(from)) = node.fields.get("from") else {
        return Err(StageError::new(format!("the concept bank `{stage}` names no embeddings (`from`)")));
    };
    let embed = ctx
        .request
        .upstream_of(from, ctx.request.round)
        .ok_or_else(|| StageError::new(format!("the embeddings `{from}` of the concept bank `{stage}` were not provided")))?;
    // The CAVs are only meaningful at the layer their embeddings were taken from.
    let layer = ctx.text("layer")?;
    if let Some(Value::Str(embedded)) = embed.fields.get("layer") {
        if embedded != layer {
            return Err(StageError::new(format!(
                "the concepts of `{stage}` live at layer `{embedded}` (embedded by `{from}`), not at `{layer}`"
            )));
        }
    }
    let labelled = ["labels", "probes"].iter().find_map(|f| match node.fields.get(*f) {
        Some(Value::ConceptLabels { dataset }) => Some(dataset.clone()),
        _ => None,
    });
    let Some(dataset) = labelled else {
        return Err(StageError::new(format!(
            "the concept bank `{stage}` ({}) has no labelled probe images: TCAV trains each concept's CAVs from images labelled with it; use an `annotated`, `cav` or `labels` bank",
            node.method
        )));
    };
    let embedded = concepts::read_embeddings(&embed.dir)?;
    let annotations = concepts::concept_labels(&ctx.upstream(&dataset)?.dir)?;
    let (labels, x) = concepts::matching(&annotations.splits, &embedded, "train")?
        .ok_or_else(|| StageError::new(format!("the embeddings `{from}` have no train split to train CAVs on")))?;
    let present = (0..annotations.names.len()).map(|c| (0..labels.nrows()).filter(|&i| labels[[i, c]] >= 0.5).collect()).collect();
    Ok(Probes { names: annotations.names.clone(), embeddings: x.clone(), present })
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

/// One tested family of run scores against the random runs: the t-test and its fields.
fn tested(name: &str, scores: &[f64], random: &[f64]) -> (serde_json::Value, f64) {
    let test = ttest::student(scores, random);
    let p = test.map_or(f64::NAN, |t| t.p);
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let spread = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let json = serde_json::json!({
        "concept": name,
        "runs": scores.iter().map(|s| finite_or_null(*s)).collect::<Vec<_>>(),
        "mean": finite_or_null(mean),
        "std": finite_or_null(spread),
        "t": test.map_or(serde_json::Value::Null, |t| finite_or_null(t.t)),
        "df": test.map_or(serde_json::Value::Null, |t| serde_json::json!(t.df)),
        "p": finite_or_null(p),
    });
    (json, p)
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let layer = ctx.text("layer")?;
    let alpha = ctx.float("alpha")?;
    let runs = usize::try_from(ctx.int("runs")?).ok().filter(|r| *r >= 2).ok_or_else(|| StageError::new("`runs` must be at least 2"))?;
    let per_side = usize::try_from(ctx.int("n")?).ok().filter(|n| *n >= 2).ok_or_else(|| StageError::new("`n` must be at least 2"))?;
    let svm = LinearSvm { c: ctx.float("c")?, ..LinearSvm::default() };
    let correction = correction::Correction::parse(ctx.word("correction")?).ok_or_else(|| {
        StageError::new(format!("`correction` should be bonferroni or bh, got {}", ctx.word("correction").unwrap_or_default()))
    })?;
    let (net, input) = models::network_of(ctx, ctx.stage_name("of")?)?;
    // Directional derivatives are fp32 gradients; only the memory format is the stage's choice.
    // TCAV declares no `precision`, so this is fp32 (and requests without the field run NCHW).
    let compute = Compute::of_stage(ctx)?;
    compute.prepare(&net)?;
    let probes = load_probes(ctx, ctx.stage_name("concepts")?)?;
    let selection = Selection::from_field(ctx, "images")?;
    let data = Dataset::load(&ctx.upstream(&selection.dataset)?.dir, ctx.device, input)?;
    let split = data.split(&selection.split)?;
    let rows = selection.rows(split.len());
    let (x, labels) = split.batch(&Tensor::f_from_slice(&rows)?)?;
    let x = compute.input(&x)?;
    let labels: Vec<i64> = Vec::<i64>::try_from(labels.f_to_device(tch::Device::Cpu)?)?;

    let mut rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
    rng.set_stream(u64::from_le_bytes(ctx.int("seed")?.to_le_bytes()));
    let concepts = probes.names.len();
    ctx.progress(format!("training {runs} CAVs for each of {concepts} concepts, and {runs} random ones"));
    let cavs = runs::train(probes.embeddings.view(), &probes.present, &probes.names, runs, per_side, &svm, &mut rng)?;
    let why_untestable = |u: &runs::Untestable| {
        format!("shown by {} of the {} probe images; its CAVs need at least 2 with it and 2 without", u.present, u.present + u.absent)
    };
    if !cavs.untestable.is_empty() {
        let listed: Vec<String> = cavs
            .untestable
            .iter()
            .map(|u| format!("`{}` ({} of {} probe images)", probes.names[u.concept], u.present, u.present + u.absent))
            .collect();
        ctx.warn(format!(
            "TCAV cannot test {} of {concepts} concepts, shown by too few or too many probe images (a concept's CAVs need at least 2 with it and 2 without): {}; their scores, p-values and significance are null, and the correction counts only the tested concepts",
            cavs.untestable.len(),
            listed.join(", ")
        ));
    }
    // Each concept's place among the tested ones, whose CAVs are the only concept directions.
    let mut slot = vec![None; concepts];
    for (k, c) in (0..concepts).filter(|&c| cavs.concepts[c].is_some()).enumerate() {
        slot[c] = Some(k);
    }
    // Directions in one matrix: the tested concepts' runs, concept-major, then the random runs,
    // then the control's.
    let all: Vec<&ndarray::Array1<f64>> = cavs.concepts.iter().flatten().flatten().chain(&cavs.random).chain(&cavs.control).collect();
    let tested_count = all.len() - 2 * runs;
    let dim = probes.embeddings.ncols();
    let flat: Vec<f64> = all.iter().flat_map(|v| v.iter().copied()).collect();
    let count = i64::try_from(all.len()).unwrap_or(0);
    let directions = Tensor::f_from_slice(&flat)?.f_reshape([count, i64::try_from(dim).unwrap_or(0)])?;
    let on_device = directions.f_to_device(ctx.device)?;

    let classes = classes(ctx, &data)?;
    let (mut concept_scores, mut random_scores, mut control_scores) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_values, mut corrected, mut counts, mut image_rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut table = Vec::new();
    let mut significant_total = 0;
    for &class in &classes {
        let members: Vec<i64> = (0..rows.len()).filter(|&i| labels[i] == class).map(|i| i64::try_from(i).unwrap_or(0)).collect();
        ctx.progress(format!("class {class}: {} images", members.len()));
        let xs = x.f_index_select(0, &Tensor::f_from_slice(&members)?.f_to_device(ctx.device)?)?;
        let shares = positive_share(&derivatives(&net, &xs, layer, class, &on_device)?)?;
        let (tested_part, rest) = shares.split_at(tested_count);
        let (random_part, control_part) = rest.split_at(runs);
        let mut rows_json = Vec::new();
        let mut p = Vec::new();
        let mut concept_part = Vec::new();
        for (c, name) in probes.names.iter().enumerate() {
            match (slot[c], cavs.untestable.iter().find(|u| u.concept == c)) {
                (Some(k), _) => {
                    let scores = &tested_part[k * runs..(k + 1) * runs];
                    let (json, value) = tested(name, scores, random_part);
                    rows_json.push(json);
                    p.push(value);
                    concept_part.extend_from_slice(scores);
                }
                (None, untestable) => {
                    rows_json.push(serde_json::json!({
                        "concept": name,
                        "untestable": untestable.map(why_untestable),
                        "runs": null, "mean": null, "std": null, "t": null, "df": null, "p": null,
                    }));
                    p.push(f64::NAN);
                    concept_part.extend(std::iter::repeat_n(f64::NAN, runs));
                }
            }
        }
        let (mut control_json, control_p) = tested("random concept (control)", control_part, random_part);
        p.push(control_p);
        // An untestable concept's p is NaN, and the correction counts only finite p-values: the
        // family is the hypotheses actually tested. Counting a concept that was never tested
        // would raise Bonferroni's m (and shift BH's ranks) and so weaken the verdict on the
        // concepts that were, for a test nobody ran.
        let adjusted = correction.adjust(&p);
        for (json, q) in rows_json.iter_mut().chain(std::iter::once(&mut control_json)).zip(&adjusted) {
            json["p_corrected"] = finite_or_null(*q);
            // No corrected p (an untestable concept, a class without images) is no verdict.
            json["significant"] = if q.is_finite() { serde_json::json!(*q < alpha) } else { serde_json::Value::Null };
        }
        significant_total += rows_json.iter().filter(|j| j["significant"] == true).count();
        let random_mean = random_part.iter().sum::<f64>() / runs as f64;
        table.push(serde_json::json!({
            "class": data.meta.class_names.get(usize::try_from(class).unwrap_or(0)).cloned().unwrap_or_else(|| class.to_string()),
            "images": members.len(),
            "concepts": rows_json,
            "random_runs": random_part.iter().map(|s| finite_or_null(*s)).collect::<Vec<_>>(),
            "random_mean": finite_or_null(random_mean),
            "control": control_json,
        }));
        concept_scores.extend_from_slice(&concept_part);
        random_scores.extend_from_slice(random_part);
        control_scores.extend_from_slice(control_part);
        p_values.extend_from_slice(&p[..concepts]);
        corrected.extend_from_slice(&adjusted[..concepts]);
        counts.push(i64::try_from(members.len()).unwrap_or(0));
        image_rows.extend(members.iter().map(|&i| rows[usize::try_from(i).unwrap_or(0)]));
    }

    let m = i64::try_from(classes.len()).unwrap_or(0);
    let (c, r) = (i64::try_from(concepts).unwrap_or(0), i64::try_from(runs).unwrap_or(0));
    let tensor = |v: &[f64], shape: &[i64]| -> Result<Tensor> { Ok(Tensor::f_from_slice(v)?.f_reshape(shape)?.f_to_kind(Kind::Float)?) };
    // Every concept's CAVs [C, runs, d], NaN for an untestable concept's.
    let concept_cavs: Vec<f64> = cavs
        .concepts
        .iter()
        .flat_map(|family| match family {
            Some(directions) => directions.iter().flat_map(|v| v.iter().copied()).collect::<Vec<_>>(),
            None => vec![f64::NAN; runs * dim],
        })
        .collect();
    let (t, d) = (i64::try_from(tested_count).unwrap_or(0), i64::try_from(dim).unwrap_or(0));
    let tensors = BTreeMap::from([
        ("scores".to_owned(), tensor(&concept_scores, &[m, c, r])?),
        ("random_scores".to_owned(), tensor(&random_scores, &[m, r])?),
        ("control_scores".to_owned(), tensor(&control_scores, &[m, r])?),
        ("p_values".to_owned(), tensor(&p_values, &[m, c])?),
        ("p_corrected".to_owned(), tensor(&corrected, &[m, c])?),
        ("cavs".to_owned(), tensor(&concept_cavs, &[c, r, d])?),
        ("random_cavs".to_owned(), directions.f_narrow(0, t, r)?.f_to_kind(Kind::Float)?),
        ("control_cavs".to_owned(), directions.f_narrow(0, t + r, r)?.f_to_kind(Kind::Float)?),
        ("classes".to_owned(), Tensor::f_from_slice(&classes)?),
        ("counts".to_owned(), Tensor::f_from_slice(&counts)?),
        ("indices".to_owned(), Tensor::f_from_slice(&image_rows)?),
    ]);
    let metadata = BTreeMap::from([("format".to_owned(), "lthlang-tcav-2".to_owned()), ("layer".to_owned(), layer.to_owned())]);
    checkpoint::save(&ctx.request.output.join(TCAV_FILE), &tensors, &metadata)?;
    Ok(serde_json::json!({
        "layer": layer,
        "concepts": probes.names,
        "runs": runs,
        "examples_per_side": cavs.concept_sides,
        "random_examples_per_side": cavs.random_side,
        "untestable": cavs.untestable.iter().map(|u| serde_json::json!({ "concept": probes.names[u.concept], "present": u.present, "absent": u.absent })).collect::<Vec<_>>(),
        "test": "two-sided Student t-test (pooled variance) of each concept's run scores against the random runs",
        "correction": correction.name(),
        "alpha": alpha,
        "significant": significant_total,
        "classes": table,
    }))
}

#[cfg(test)]
mod tests;
