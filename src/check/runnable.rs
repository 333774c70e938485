//! Combinations every field of which types on its own, but that no worker could run: Inception-v3
//! on images its stride-2 stem shrinks to nothing, an untrained network whose inputs are to be
//! normalised by its training data, training one image at a time where BatchNorm would see a
//! single value per channel, and a file that declares no stage at all.
//! (TCAV's banks are checked with the other cross-stage rules: it retrains CAVs from a bank's
//! labelled probe images, so `annotated`, `cav` and `labels` banks serve and `random` does not.) `check` refuses them (or, for the empty file, says
//! so) so that what it accepts runs as written.

use super::codes;
use super::program::{Program, Stage, Value, Written};
use crate::diagnostic::Diagnostic;
use crate::kinds::model::{smallest_normalised_side, INCEPTION_AUX_MIN_SIDE, INCEPTION_MIN_SIDE};
use crate::kinds::Category;
use crate::source::{SourceId, Span};

pub fn check(root: SourceId, program: &Program, diagnostics: &mut Vec<Diagnostic>) {
    if program.stages.is_empty() {
        diagnostics.push(
            Diagnostic::warning(codes::NOTHING_DECLARED, Span::new(root, 0, 0), "the file declares no stage", "nothing to run")
                .with_help("declare a stage such as `dataset data = shapes {}`; presets and an `experiment` block alone run nothing"),
        );
    }
    for stage in &program.stages {
        check_inception_side(program, stage, diagnostics);
        check_normalize_untrained(program, stage, diagnostics);
        check_single_image_batch(program, stage, diagnostics);
    }
}

/// `batch = 1` where the network's smallest BatchNorm map is 1 × 1 at the dataset's image size:
/// every step would give those layers one value per channel, which PyTorch refuses and which
/// turns their running variance into NaN (see [`smallest_normalised_side`]). The worker leaves
/// out an epoch's last batch when only that one holds a single image.
fn check_single_image_batch(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if stage.category != Category::Train || stage.value("batch").and_then(Value::as_int) != Some(1) {
        return;
    }
    let Some(model) = program.model_of(&stage.name) else { return };
    let aux = matches!(model.value("aux_logits"), Some(Value::Bool(true)));
    for (dataset, field) in datasets_read(program, stage) {
        if field != "data" {
            continue;
        }
        let Some(side) = dataset.value("image").and_then(Value::as_int) else { continue };
        if smallest_normalised_side(model.method.name, side, aux) != Some(1) {
            continue;
        }
        diagnostics.push(
            Diagnostic::error(
                codes::SINGLE_IMAGE_BATCH,
                span_of(stage, "batch"),
                format!(
                    "`{}` trains `{}` one image at a time, and at {side} px its last BatchNorm layers see a 1×1 map: one value per channel",
                    stage.name, model.name
                ),
                "one image per step",
            )
            .with_label(span_of(dataset, "image"), format!("`{}` makes {side} px images", dataset.name))
            .with_help(format!(
                "BatchNorm cannot normalise a single value (PyTorch refuses it, and its running variance would become NaN); set `batch = 2` or more, or raise `image` on `{}`",
                dataset.name
            )),
        );
    }
}

/// `normalize = dataset` takes its statistics from the training split of the data the network is
/// trained on. A stage that reads a model stage directly (`embed pooled { of = net }`, an untrained
/// baseline) has no such data; rather than guess one, `check` asks for a scale that needs none.
fn check_normalize_untrained(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    let Some(read) = stage.value("of").and_then(Value::as_stage) else { return };
    // The stages from `read` up to its model; a train stage among them means it was trained.
    let mut lineage = program.lineage(read).skip_while(|s| s.category != Category::Train && s.category != Category::Model);
    let Some(model) = lineage.next().filter(|s| s.category == Category::Model) else { return };
    if model.value("normalize").and_then(Value::as_word) != Some("dataset") {
        return;
    }
    diagnostics.push(
        Diagnostic::error(
            codes::NORMALIZE_UNTRAINED,
            span_of(stage, "of"),
            format!(
                "`{}` reads `{}` untrained, but `{}` normalises its inputs by the data it is trained on (`normalize = dataset`)",
                stage.name, read, model.name
            ),
            "no training data to take statistics from",
        )
        .with_label(span_of(model, "normalize"), "statistics of the training split of the data the model is trained on")
        .with_help(format!(
            "read a trained stage (a `train` or `prune` stage) instead, or write `normalize = fixed` or `normalize = imagenet` on `{}`",
            model.name
        )),
    );
}

fn span_of(stage: &Stage, field: &str) -> Span {
    match stage.fields.get(field).map(|f| f.written) {
        Some(Written::At(span)) => span,
        _ => stage.name_span,
    }
}

/// The datasets whose images a stage feeds through its model, with the field that names each.
fn datasets_read<'p>(program: &'p Program, stage: &Stage) -> Vec<(&'p Stage, &'static str)> {
    let mut out = Vec::new();
    for spec in stage.method.fields {
        let dataset = match stage.value(spec.name) {
            Some(Value::Split { dataset, .. } | Value::Sample { dataset, .. }) => dataset.as_str(),
            Some(Value::Stage(name)) => name.as_str(),
            _ => continue,
        };
        if let Some(d) = program.stage(dataset).filter(|d| d.category == Category::Dataset) {
            out.push((d, spec.name));
        }
    }
    out
}

fn check_inception_side(program: &Program, stage: &Stage, diagnostics: &mut Vec<Diagnostic>) {
    if !matches!(stage.category, Category::Train | Category::Embed | Category::Explain) {
        return;
    }
    let Some(model) = program.model_of(&stage.name).filter(|m| m.method.name == "inception_v3") else { return };
    let aux = stage.category == Category::Train && matches!(model.value("aux_logits"), Some(Value::Bool(true)));
    let (least, why) = if aux {
        (INCEPTION_AUX_MIN_SIDE, "its auxiliary classifier needs the 17×17 map `Mixed_6e` has at 299 px")
    } else {
        (INCEPTION_MIN_SIDE, "its strided stem and reductions leave no pixel below 75 px")
    };
    for (dataset, field) in datasets_read(program, stage) {
        let Some(side) = dataset.value("image").and_then(Value::as_int) else { continue };
        if side >= least {
            continue;
        }
        diagnostics.push(
            Diagnostic::error(
                codes::IMAGE_TOO_SMALL,
                span_of(stage, field),
                format!("`{}` feeds {side} px images of `{}` to Inception-v3, which needs at least {least} px", stage.name, dataset.name),
                "images too small for the model",
            )
            .with_label(span_of(dataset, "image"), format!("`{}` makes {side} px images", dataset.name))
            .with_label(model.name_span, format!("`{}` is Inception-v3", model.name))
            .with_help(format!("{why}; set `image = {least}` or more on `{}`, or choose a ResNet", dataset.name)),
        );
    }
}
