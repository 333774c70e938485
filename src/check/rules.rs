//! Rules that span stages: cycles, layer names and kinds, sparsities the schedule must reach,
//! rounds that must exist, and ticket series that must not mix.

use super::codes;
use super::program::{Program, Stage, Value};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::kinds::layers::{self, Layer, LayerKind};
use crate::kinds::{prune::remaining, Category, LayerNeed, Ty};
use crate::source::{Sources, Span};
use crate::syntax::ast::{Declaration, ExprKind, Module};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

/// Reports every dependency cycle; returns whether there was one.
pub fn check_cycles(program: &Program, diagnostics: &mut Vec<Diagnostic>) -> bool {
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..program.stages.len()).map(|i| graph.add_node(i)).collect();
    let index: HashMap<&str, usize> = program.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    for (i, stage) in program.stages.iter().enumerate() {
        for input in stage.inputs() {
            if let Some(&j) = index.get(input.as_str()) {
                graph.add_edge(nodes[j], nodes[i], ());
            }
        }
    }
    let mut found = false;
    for component in petgraph::algo::tarjan_scc(&graph) {
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        found = true;
        let mut members: Vec<&Stage> = component.iter().map(|n| &program.stages[graph[*n]]).collect();
        members.sort_by_key(|s| s.name_span);
        let names: Vec<String> = members.iter().map(|s| format!("`{}`", s.name)).collect();
        let mut d = Diagnostic::error(
            codes::CYCLE,
            members[0].name_span,
            format!("stages {} depend on each other", names.join(", ")),
            if self_loop { "reads its own output".to_owned() } else { "part of a cycle".to_owned() },
        );
        for other in &members[1..] {
            d = d.with_label(other.name_span, "also in the cycle");
        }
        diagnostics.push(d.with_help("a stage may only read stages that do not read it back"));
    }
    found
}

pub fn check_cross_stage(sources: &Sources, module: &Module, program: &Program, diagnostics: &mut Vec<Diagnostic>) {
    let declarations: HashMap<&str, &Declaration> =
        module.declarations.iter().filter(|d| !d.preset).map(|d| (d.name.name.as_str(), d)).collect();
    for stage in &program.stages {
        let Some(decl) = declarations.get(stage.name.as_str()) else { continue };
        check_layers(program, stage, diagnostics);
        check_series(program, stage, diagnostics);
        check_rewind(program, stage, diagnostics);
        if stage.category == Category::Explain && stage.method.name == "tcav" {
            check_tcav(program, stage, diagnostics);
        }
        if stage.category == Category::Train {
            check_classes(program, stage, diagnostics);
        }
        if stage.category == Category::Explain && stage.method.name == "completeness" {
            check_completeness_classes(program, stage, diagnostics);
        }
        check_empty_splits(program, stage, diagnostics);
        if stage.category == Category::Explain && stage.method.field("features").is_some() {
            check_features(program, stage, diagnostics);
        }
        if stage.category == Category::Concepts && stage.method.name == "annotated" {
            check_probe_solver(stage, diagnostics);
        }
        if stage.category == Category::Compare {
            check_compare(sources, program, stage, decl, diagnostics);
        }
        check_precision(program, stage, diagnostics);
    }
}

/// bf16 or fp16 written for an experiment pinned to the CPU: it runs (libtorch's CPU autocast
/// has both), but CPUs without native bf16/fp16 arithmetic emulate it, slower than fp32, and the
/// user almost certainly meant the GPU setting. `auto` says nothing: it is fp32 on the CPU.
fn check_precision(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if !matches!(program.experiment.device, super::program::Device::Cpu) {
        return;
    }
    let Some(Value::Word(word)) = stage.value("precision") else { return };
    if !matches!(word.as_str(), "bf16" | "fp16") || !matches!(stage.fields.get("precision").map(|f| f.written), Some(super::Written::At(_)))
    {
        return;
    }
    diagnostics.push(
        Diagnostic::warning(
            codes::REDUCED_PRECISION_ON_CPU,
            span_of(stage, "precision"),
            format!("`precision = {word}` in an experiment on the CPU is slower than fp32 on most CPUs"),
            "emulated in software unless the CPU has native bf16/fp16 arithmetic",
        )
        .with_help("write `precision = auto` (fp32 on the CPU, bf16 on a GPU that supports it), or set `device = auto` or `cuda` in the `experiment` block"),
    );
}

fn span_of(stage: &Stage, field: &str) -> Span {
    match stage.fields.get(field).map(|f| f.written) {
        Some(super::Written::At(span)) => span,
        _ => stage.name_span,
    }
}

/// The layers a model declaration exposes: a built-in table, or those a torchscript module names.
fn model_layers(model: &Stage) -> Vec<Layer> {
    layers::builtin(model.method.name).unwrap_or_else(|| match model.value("layers") {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(name) => Some(Layer { name: name.clone(), kind: LayerKind::Block, before_head: false }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

fn check_layers(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    for spec in stage.method.fields {
        let Ty::Layer { needs } = spec.ty else { continue };
        let Some(Value::Str(name)) = stage.value(spec.name) else { continue };
        let Some(model) = program.model_of(&stage.name) else { continue };
        let span = span_of(stage, spec.name);
        let table = model_layers(model);
        let Some(layer) = table.iter().find(|l| &l.name == name) else {
            let top_level: Vec<&str> = table.iter().filter(|l| !l.name.contains('.')).map(|l| l.name.as_str()).collect();
            diagnostics.push(
                Diagnostic::error(
                    codes::UNKNOWN_LAYER,
                    span,
                    format!("model `{}` ({}) has no layer `{name}`", model.name, model.method.name),
                    "no such layer",
                )
                .with_label(model.name_span, format!("`{}` is declared here", model.name))
                .with_help(
                    did_you_mean(name, table.iter().map(|l| l.name.as_str()))
                        .unwrap_or_else(|| format!("top-level layers: {}", top_level.join(", "))),
                ),
            );
            continue;
        };
        let last_spatial = table.iter().rev().find(|l| l.kind.is_spatial() && !l.name.contains('.')).map_or("", |l| l.name.as_str());
        match needs {
            LayerNeed::Spatial if !layer.kind.is_spatial() => diagnostics.push(
                Diagnostic::error(
                    codes::LAYER_NOT_CONVOLUTIONAL,
                    span,
                    format!("`{}` needs a convolutional layer, and `{name}` is {}", stage.method.name, layer.kind.describe()),
                    "has no spatial feature map",
                )
                .with_label(model.name_span, format!("`{}` is declared here", model.name))
                .with_help(format!("saliency maps come from a layer with a spatial output; the last one of `{}` is `{last_spatial}`", model.method.name)),
            ),
            LayerNeed::NotBeforeHead if layer.before_head => diagnostics.push(
                Diagnostic::warning(codes::TCAV_BEFORE_HEAD, span, format!("TCAV at `{name}` cannot depend on the image"), "only pooling and the linear head follow this layer")
                    .with_help("the directional derivative of a logit there is the same for every image, so each score is 0 or 1; choose an earlier layer"),
            ),
            _ => {}
        }
    }
}

/// TCAV as Kim et al. test it needs enough runs for a t-test with some power, and a bank whose
/// probe images are labelled with its concepts, since every run retrains the concept's CAV.
fn check_tcav(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if let Some(Value::Int(runs)) = stage.value("runs") {
        if *runs < 10 {
            diagnostics.push(
                Diagnostic::warning(codes::TCAV_FEW_RUNS, span_of(stage, "runs"), format!("TCAV with {runs} runs"), "fewer than 10 runs")
                    .with_help(
                        "Kim et al. train each CAV against at least 10 random sets; with fewer, the t-test of the run scores has little power and its p-values are rough",
                    ),
            );
        }
    }
    let Some(Value::Stage(bank)) = stage.value("concepts") else { return };
    let Some(bank) = program.stage(bank) else { return };
    check_tcav_bank(program, stage, bank, diagnostics);
    if bank.category == Category::Concepts && bank.method.name == "random" {
        diagnostics.push(
            Diagnostic::error(
                codes::TCAV_UNLABELLED_BANK,
                span_of(stage, "concepts"),
                format!("TCAV needs labelled probe images, and `{}` is a `random` bank", bank.name),
                "its concepts have no images",
            )
            .with_label(bank.name_span, format!("`{}` is declared here", bank.name))
            .with_help("each TCAV run retrains a concept's CAV from the images showing it: use an `annotated`, `cav` or `labels` bank; the random CAVs of the test are made by TCAV itself"),
        );
    }
}

/// TCAV's CAVs are directions in the space of the bank's embeddings: the layer TCAV differentiates
/// must be the layer those embeddings were pooled from, in a network of the same model.
fn check_tcav_bank(program: &Program, stage: &Stage, bank: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let Some(embed) = bank.value("from").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let (Some(Value::Str(layer)), Some(Value::Str(embedded))) = (stage.value("layer"), embed.value("layer")) else { return };
    if layer != embedded {
        diagnostics.push(
            Diagnostic::error(
                codes::TCAV_BANK_MISMATCH,
                span_of(stage, "layer"),
                format!("TCAV at `{layer}` reads the bank `{}`, whose concepts live at `{embedded}`", bank.name),
                "not the bank's layer",
            )
            .with_label(span_of(embed, "layer"), format!("`{}` embeds `{embedded}` for `{}`", embed.name, bank.name))
            .with_help(format!(
                "a CAV is a direction among the activations of the layer it was trained at; write `layer = \"{embedded}\"`, or give TCAV a bank over embeddings of `{layer}`"
            )),
        );
    }
    let (Some(tested), Some(probed)) = (program.model_of(&stage.name), program.model_of(&embed.name)) else { return };
    if tested.name != probed.name {
        diagnostics.push(
            Diagnostic::error(
                codes::TCAV_BANK_MISMATCH,
                span_of(stage, "concepts"),
                format!("TCAV tests `{}` with concepts learned on another model, `{}`", tested.name, probed.name),
                "a bank of another model",
            )
            .with_label(tested.name_span, format!("`{}` is tested", tested.name))
            .with_label(probed.name_span, format!("`{}` is the model `{}` embeds", probed.name, embed.name))
            .with_help("the CAVs must live in the activations of the network TCAV differentiates: embed a checkpoint of the tested model"),
        );
    }
}

/// The class count of a dataset when the program fixes it: a method's fixed count, a `classes`
/// field, or `digits`' task.
fn dataset_classes(dataset: &Stage) -> Option<i64> {
    if let Some(n) = dataset.method.dataset.and_then(|facts| facts.fixed_classes) {
        return Some(i64::from(n));
    }
    match dataset.method.name {
        "shapes" => dataset.value("classes").and_then(Value::as_int),
        "digits" => match dataset.value("task") {
            Some(Value::Word(task)) if task == "digit" => Some(10),
            Some(Value::Word(_)) => Some(2),
            _ => None,
        },
        _ => None,
    }
}

/// A model's output count when the program fixes it: a number, or `d.classes` of a dataset
/// whose class count is fixed.
fn model_outputs(program: &Program, model: &Stage) -> Option<i64> {
    match model.value("classes")? {
        Value::Int(n) => Some(*n),
        Value::ClassesOf { dataset } => program.stage(dataset).and_then(dataset_classes),
        _ => None,
    }
}

/// A model with fewer outputs than the classes it is trained on has no logit for some labels.
fn check_classes(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let Some(Value::Split { dataset, .. }) = stage.value("data") else { return };
    let Some(dataset) = program.stage(dataset) else { return };
    let Some(model) = stage.value("model").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let (Some(outputs), Some(classes)) = (model_outputs(program, model), dataset_classes(dataset)) else { return };
    if outputs < classes {
        diagnostics.push(
            Diagnostic::error(
                codes::OUT_OF_RANGE,
                span_of(stage, "data"),
                format!(
                    "`{}` trains `{}`, which has {outputs} outputs, on the {classes} classes of `{}`",
                    stage.name, model.name, dataset.name
                ),
                "more classes than outputs",
            )
            .with_label(span_of(model, "classes"), format!("`{}` has {outputs} outputs", model.name))
            .with_help(format!("write `classes = {}.classes` on `{}`", dataset.name, model.name)),
        );
    }
}

/// Completeness compares concept predictions with the network's over the embedded images' labels,
/// so those labels must be among the network's outputs.
fn check_completeness_classes(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let bank = stage.value("concepts").and_then(Value::as_stage).and_then(|n| program.stage(n));
    let embed_name = match stage.value("features").and_then(Value::as_stage) {
        Some(features) => Some(features),
        None => bank.and_then(|b| b.value("from")).and_then(Value::as_stage),
    };
    let Some(embed) = embed_name.and_then(|n| program.stage(n)) else { return };
    let Some(dataset) = embed.value("data").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let Some(model) = program.model_of(&embed.name) else { return };
    let (Some(outputs), Some(classes)) = (model_outputs(program, model), dataset_classes(dataset)) else { return };
    if outputs < classes {
        diagnostics.push(
            Diagnostic::error(
                codes::OUT_OF_RANGE,
                span_of(stage, "concepts"),
                format!(
                    "`{}` explains `{}`, which has {outputs} outputs, on `{}`, whose {classes} classes it cannot predict",
                    stage.name, model.name, dataset.name
                ),
                "more classes than outputs",
            )
            .with_label(span_of(embed, "data"), format!("`{}` embeds `{}`", embed.name, dataset.name))
            .with_label(span_of(model, "classes"), format!("`{}` has {outputs} outputs", model.name))
            .with_help(format!("embed a dataset with at most {outputs} classes, the one `{}` is trained on", model.name)),
        );
    }
}

/// Images a stage must have at least one of: the split it trains on and the images it explains.
/// A dataset whose `val` or `test` share is written as 0% has no such images.
fn check_empty_splits(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    for spec in stage.method.fields {
        let needs_images = matches!(spec.ty, Ty::Images) || (stage.category == Category::Train && spec.name == "data");
        if !needs_images {
            continue;
        }
        let (dataset, split) = match stage.value(spec.name) {
            Some(Value::Split { dataset, split } | Value::Sample { dataset, split, .. }) => (dataset, split),
            _ => continue,
        };
        let Some(dataset) = program.stage(dataset) else { continue };
        if !matches!(dataset.value(split), Some(Value::Fraction(share)) if *share == 0.0) {
            continue;
        }
        diagnostics.push(
            Diagnostic::error(
                codes::EMPTY_SPLIT,
                span_of(stage, spec.name),
                format!("`{}` reads `{}.{split}`, which holds no images", stage.name, dataset.name),
                "an empty split",
            )
            .with_label(span_of(dataset, split), format!("`{}` keeps 0% of its images for `{split}`", dataset.name))
            .with_help(format!("give `{split}` a share above 0% on `{}`, or read another split", dataset.name)),
        );
    }
}

/// `features = x` scores the embeddings `x` with the bank's directions: the bank must have
/// directions (a `labels` bank's scores are a dataset's labels), and `x` must be embedded at the
/// layer of the model the bank's own embeddings come from, or the directions do not fit.
fn check_features(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let Some(features) = stage.value("features").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let Some(bank) = stage.value("concepts").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let refuse = |message: String, label: &str, help: String| {
        Diagnostic::error(codes::FEATURES_MISMATCH, span_of(stage, "features"), message, label.to_owned())
            .with_label(bank.name_span, format!("`{}` is declared here", bank.name))
            .with_help(help)
    };
    if bank.method.name == "labels" {
        diagnostics.push(refuse(
            format!(
                "the bank `{}` cannot score `{}`: a `labels` bank has no directions, only its dataset's labels",
                bank.name, features.name
            ),
            "nothing to apply",
            "remove `features` to fit on the labels themselves, or give an `annotated`, `cav` or `random` bank".to_owned(),
        ));
        return;
    }
    let Some(embed) = bank.value("from").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    if let (Some(Value::Str(wanted)), Some(Value::Str(given))) = (embed.value("layer"), features.value("layer")) {
        if wanted != given {
            diagnostics.push(refuse(
                format!("`{}` embeds `{given}`, but the directions of `{}` live at `{wanted}`", features.name, bank.name),
                "embeddings of another layer",
                format!("embed the features at `{wanted}`, the layer `{}` embeds for the bank", embed.name),
            ));
            return;
        }
    }
    if let (Some(wanted), Some(given)) = (program.model_of(&embed.name), program.model_of(&features.name)) {
        if wanted.name != given.name {
            diagnostics.push(refuse(
                format!(
                    "`{}` embeds model `{}`, but the directions of `{}` live in model `{}`",
                    features.name, given.name, bank.name, wanted.name
                ),
                "embeddings of another model",
                format!("embed the features with a checkpoint of `{}`, the model the bank was learned on", wanted.name),
            ));
        }
    }
}

/// An annotated bank fitted exactly ignores the SGD fields; written ones are almost certainly a
/// leftover from the published recipe, and the user should learn they changed nothing.
fn check_probe_solver(stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if !matches!(stage.value("solver"), Some(Value::Word(w)) if w == "exact") {
        return;
    }
    for field in ["epochs", "lr", "batch"] {
        if !matches!(stage.fields.get(field).map(|f| f.written), Some(super::Written::At(_))) {
            continue;
        }
        diagnostics.push(
            Diagnostic::warning(
                codes::FIELD_WITHOUT_EFFECT,
                span_of(stage, field),
                format!("`{field}` has no effect on `{}`: its probes are fitted exactly", stage.name),
                "used only with `solver = sgd`",
            )
            .with_help("remove it, or write `solver = sgd` to train the probes by minibatch SGD as the published recipe does"),
        );
    }
}

/// A stage mapped over rounds must read one ticket series, or rounds would pair up arbitrarily.
fn check_series(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if !matches!(stage.category, Category::Embed | Category::Concepts | Category::Explain) {
        return;
    }
    let series = program.series(&stage.name);
    if series.len() > 1 {
        let names: Vec<String> = series.iter().map(|s| format!("`{s}`")).collect();
        let mut d = Diagnostic::error(
            codes::MIXED_SERIES,
            stage.name_span,
            format!("`{}` reads the rounds of several ticket series: {}", stage.name, names.join(", ")),
            "mixes ticket series",
        );
        for prune in series.iter().filter_map(|s| program.stage(s)) {
            d = d.with_label(prune.name_span, format!("a ticket series `{}` reads", stage.name));
        }
        diagnostics.push(d.with_help("a stage is mapped over the rounds of one series; declare one stage per series"));
    }
}

/// `rewind = epoch(k)` must name an epoch the dense training reaches.
fn check_rewind(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let Some(Value::Call { function, args }) = stage.value("rewind") else { return };
    if function != "epoch" {
        return;
    }
    let k = args.get("k").and_then(Value::as_int).unwrap_or(0);
    let Some(train) = stage.value("from").and_then(Value::as_stage).and_then(|n| program.stage(n)) else { return };
    let epochs = train.value("epochs").and_then(Value::as_int).unwrap_or(0);
    if k > epochs {
        diagnostics.push(
            Diagnostic::error(
                codes::OUT_OF_RANGE,
                span_of(stage, "rewind"),
                format!("`{}` trains for {epochs} epochs; there is no epoch {k} to rewind to", train.name),
                "epoch out of range",
            )
            .with_label(train.name_span, format!("`{}` is declared here", train.name))
            .with_help(format!("rewind to an epoch from 0 to {epochs}")),
        );
    }
}

/// Rounds and densities of a prune stage: (rate, rounds).
/// None when either was written and rejected: the rules that need them have nothing true to say.
fn schedule(prune: &Stage) -> Option<(f64, u32)> {
    let rate = prune.value("rate").and_then(Value::as_fraction)?;
    let rounds = prune.value("rounds").and_then(Value::as_int).and_then(|r| u32::try_from(r).ok())?;
    Some((rate, rounds))
}

/// Decimal places written in a percentage literal (`72.9%` → 1).
fn decimals(text: &str) -> usize {
    text.trim_end_matches('%').split_once('.').map_or(0, |(_, frac)| frac.len())
}

fn check_compare(sources: &Sources, program: &Program, stage: &Stage, decl: &Declaration, diagnostics: &mut Vec<Diagnostic>) {
    let series: Vec<&Stage> = program.upstream_series(&stage.name).iter().filter_map(|n| program.stage(n)).collect();
    let Some(at) = decl.fields.iter().find(|f| f.name.name == "at") else { return };
    let items: Vec<_> = match &at.value.kind {
        ExprKind::List(items) => items.iter().collect(),
        _ => vec![&at.value],
    };
    for item in items {
        let ExprKind::Percent(written) = item.kind else { continue };
        let places = decimals(sources.snippet(item.span));
        let scale = 10f64.powi(i32::try_from(places).unwrap_or(0));
        for prune in &series {
            let Some((rate, rounds)) = schedule(prune) else { continue };
            let reached = (0..=rounds).any(|r| ((remaining(rate, r) * 100.0 * scale).round() - written * scale).abs() < 1e-6);
            if reached {
                continue;
            }
            let mut nearest: Vec<u32> = (0..=rounds).collect();
            nearest.sort_by(|a, b| {
                let da = (remaining(rate, *a) * 100.0 - written).abs();
                let db = (remaining(rate, *b) * 100.0 - written).abs();
                da.total_cmp(&db)
            });
            nearest.truncate(2);
            nearest.sort_unstable();
            let listed: Vec<String> = nearest.iter().map(|r| format!("round {r} leaves {:.2}%", remaining(rate, *r) * 100.0)).collect();
            let precision = if places == 0 {
                "whole percent".to_owned()
            } else {
                format!("{places} decimal place{}", if places == 1 { "" } else { "s" })
            };
            diagnostics.push(
                Diagnostic::error(
                    codes::SPARSITY_UNREACHED,
                    item.span,
                    format!("no round of `{}` leaves {written}% of the weights", prune.name),
                    "no round matches",
                )
                .with_label(
                    span_of(prune, "rate"),
                    format!("`{}` removes {:.4}% per round for {rounds} rounds", prune.name, rate * 100.0).replace(".0000%", "%"),
                )
                .with_help(format!(
                    "nearest: {}; a value matches a round when the exact share, rounded to the {precision} written, equals it",
                    listed.join(", ")
                )),
            );
        }
    }
    for (field, option) in [("concepts", "reference"), ("saliency", "reference")] {
        let Some(Value::Configured { fields, .. }) = stage.value(field) else { continue };
        let Some(Value::Call { args, .. }) = fields.get(option) else { continue };
        let k = args.get("k").and_then(Value::as_int).unwrap_or(0);
        for prune in &series {
            let Some((_, rounds)) = schedule(prune) else { continue };
            if k > i64::from(rounds) {
                diagnostics.push(
                    Diagnostic::error(
                        codes::OUT_OF_RANGE,
                        span_of(stage, field),
                        format!("`round({k})` does not exist: `{}` has rounds 0 to {rounds}", prune.name),
                        "round out of range",
                    )
                    .with_label(prune.name_span, format!("`{}` is declared here", prune.name))
                    .with_help("round 0 is the dense network; pick a reference round within the schedule"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::source::{Origin, Sources};

    /// The error codes `check` gives `text`.
    fn errors(text: &str) -> Vec<&'static str> {
        let mut sources = Sources::default();
        let id = sources.add(Origin::File("t.lth".into()), "t.lth".to_owned(), text.to_owned());
        crate::check::check(&mut sources, id).diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code).collect()
    }

    /// A model with fewer outputs than the dataset's classes is refused; as many or more is fine.
    #[test]
    fn a_model_with_fewer_outputs_than_classes_is_refused() {
        let program = |task: &str, classes: &str| {
            format!(
                "dataset data = digits {{ task = {task} }}\nmodel net = resnet_tiny {{ classes = {classes} }}\ntrain dense = sgd {{ model = net  data = data.train }}\n"
            )
        };
        assert_eq!(errors(&program("digit", "4")), ["lth::check::out_of_range"]);
        assert!(errors(&program("digit", "10")).is_empty());
        assert!(errors(&program("even_odd", "4")).is_empty());
        assert!(errors(&program("digit", "data.classes")).is_empty());
        let shapes = "dataset data = shapes { classes = 8 }\nmodel net = resnet_tiny { classes = 3 }\ntrain dense = adam { model = net  data = data.test }\n";
        assert_eq!(errors(shapes), ["lth::check::out_of_range"]);
    }

    /// Completeness over embeddings of a dataset with more classes than the network predicts is
    /// refused (found by the program generator: the worker failed on the labels).
    #[test]
    fn completeness_over_a_dataset_with_more_classes_than_outputs_is_refused() {
        let program = |embedded: &str| {
            format!(
                "dataset small = shapes {{ classes = 5 }}
dataset large = shapes {{ classes = 8 }}
                 model net = resnet_tiny {{ classes = small.classes }}
                 train dense = sgd {{ model = net  data = small.train }}
                 embed feats = pooled {{ of = dense  layer = \"layer3\"  data = {embedded} }}
                 concepts bank = random {{ from = feats }}
                 explain whole = completeness {{ concepts = bank }}
"
            )
        };
        assert_eq!(errors(&program("large")), ["lth::check::out_of_range"]);
        assert!(errors(&program("small")).is_empty());
    }

    /// Training on, or explaining images of, a split given 0% of the images is refused.
    #[test]
    fn reading_a_split_declared_empty_is_refused() {
        let program = |test: &str, images: &str| {
            format!(
                "dataset data = digits {{ test = {test} }}\nmodel net = resnet_tiny {{ classes = data.classes }}\n\
                 train dense = sgd {{ model = net  data = data.train }}\n\
                 explain cam = gradcam {{ of = dense  layer = \"layer2\"  images = {images} }}\n"
            )
        };
        assert_eq!(errors(&program("0%", "data.test")), ["lth::check::empty_split"]);
        assert_eq!(errors(&program("0%", "data.test.sample(4)")), ["lth::check::empty_split"]);
        assert!(errors(&program("0%", "data.val")).is_empty());
        assert!(errors(&program("1%", "data.test")).is_empty());
        let train = "dataset data = digits { val = 0% }\nmodel net = resnet_tiny { classes = data.classes }\ntrain dense = sgd { model = net  data = data.val }\n";
        assert_eq!(errors(train), ["lth::check::empty_split"]);
    }
}
