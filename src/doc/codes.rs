//! `lthlang explain CODE`: a longer text for every diagnostic code, as `rustc --explain` gives,
//! with the file its snapshot test checks as the example (tests/diagnostics/). A test fails when a
//! code used in the source has no entry here.

pub struct Code {
    pub code: &'static str,
    /// One line, for the table in docs/reference.md.
    pub summary: &'static str,
    pub text: &'static str,
    /// A file that produces the diagnostic.
    pub example: Option<&'static str>,
}

pub const CODES: &[Code] = &[
    Code {
        code: "lth::syntax::unexpected",
        summary: "The text does not follow the grammar.",
        text: "The parser met a token it did not expect: an unclosed `{`, a missing `=`, a stray character, a
keyword where a name belongs. The label points at the first token that cannot continue what came
before, and the message lists what could have come there. Declarations are
`CATEGORY NAME = METHOD { field = value ... }`, fields are separated by spaces or newlines, and
comments start with `//`.",
        example: Some(include_str!("../../tests/diagnostics/unexpected.lth")),
    },
    Code {
        code: "lth::syntax::number_out_of_range",
        summary: "A number does not fit the integer or float it is read as.",
        text: "Integers are 64-bit and signed; floats are 64-bit IEEE numbers. A literal beyond them (often a
typo with extra digits) is refused rather than silently wrapped or rounded to infinity.",
        example: Some(include_str!("../../tests/diagnostics/number_out_of_range.lth")),
    },
    Code {
        code: "lth::syntax::nesting_too_deep",
        summary: "Lists or calls are nested deeper than the parser allows.",
        text: "Nesting (lists inside lists, calls inside calls) is limited so a malformed or generated file
cannot exhaust the stack. No real experiment comes near the limit: flatten the expression, or
name the inner part as its own stage or preset.",
        example: None,
    },
    Code {
        code: "lth::check::unknown_module",
        summary: "A `use` names a standard-library module that does not exist.",
        text: "`use std.<group>.<name>` brings a preset of the standard library into scope: datasets under
`std.datasets`, models under `std.models`, training recipes under `std.recipes`. The help
suggests the nearest existing module. The built-in methods (`shapes`, `resnet_tiny`, `sgd`, ...)
need no `use`.",
        example: Some(include_str!("../../tests/diagnostics/unknown_module.lth")),
    },
    Code {
        code: "lth::check::unknown_name",
        summary: "A stage or preset name is used but never declared.",
        text: "Fields such as `of`, `from`, `model` and `concepts` refer to other stages by their names, the
words after the category in `prune tickets = imp { ... }`. The name must be declared in the same
file (anywhere: order does not matter) or come from a `use` of the standard library. The help
suggests the nearest declared name; a typo is the usual cause.",
        example: Some(include_str!("../../tests/diagnostics/unknown_name.lth")),
    },
    Code {
        code: "lth::check::unknown_method",
        summary: "A category has no method of that name.",
        text: "After `=` comes a method of the stage's category (or a preset built on one). `lthlang doc
CATEGORY` lists the methods of a category; the help suggests the nearest.",
        example: Some(include_str!("../../tests/diagnostics/unknown_method.lth")),
    },
    Code {
        code: "lth::check::unknown_field",
        summary: "A method has no field of that name.",
        text: "Each method takes a fixed set of fields. `lthlang doc METHOD` lists them with their types,
ranges and defaults; the help suggests the nearest name. Fields of another method (for
example `momentum` on `adam`) are refused rather than ignored, so nothing you write is silently
without effect.",
        example: Some(include_str!("../../tests/diagnostics/unknown_field.lth")),
    },
    Code {
        code: "lth::check::unknown_word",
        summary: "A field takes one of a fixed set of words, and this is not one of them.",
        text: "Fields such as `scope`, `rewind`, `lr_schedule` and `device` take words, not strings: write
`scope = global`, not `scope = \"global\"`. The message lists the words the field accepts.",
        example: Some(include_str!("../../tests/diagnostics/unknown_word.lth")),
    },
    Code {
        code: "lth::check::unknown_member",
        summary: "`stage.member` names a member the stage does not have.",
        text: "A dataset has the members `train`, `val` and `test` (its splits), `classes` (its class count)
and `concepts` (its concept labels, for datasets that have them). Other stages have no members.",
        example: Some(include_str!("../../tests/diagnostics/unknown_member.lth")),
    },
    Code {
        code: "lth::check::unknown_function",
        summary: "A call names a function the language does not have.",
        text: "The built-in functions are `env`, `file`, `step`, `epoch`, `round`, `cuda`, `top_iou` and
`sample` (as in `data.test.sample(16, seed = 0)`). Each is allowed only where its type fits;
`lthlang doc METHOD` shows which fields take which form.",
        example: Some(include_str!("../../tests/diagnostics/unknown_function.lth")),
    },
    Code {
        code: "lth::check::duplicate_name",
        summary: "Two declarations share a name.",
        text: "Stage and preset names are the handles other stages and the cache use, so each must be unique
in a file. The second declaration is labelled; rename one of them.",
        example: Some(include_str!("../../tests/diagnostics/duplicate_name.lth")),
    },
    Code {
        code: "lth::check::duplicate_field",
        summary: "A field is set twice in one declaration.",
        text: "Which of the two values was meant cannot be known, so neither is picked. A preset's value can
be overridden by the stage that uses it; within one `{ ... }` a field appears once.",
        example: Some(include_str!("../../tests/diagnostics/duplicate_field.lth")),
    },
    Code {
        code: "lth::check::missing_field",
        summary: "A required field is not set.",
        text: "Fields without a default must be written, either in the declaration or in a preset it builds
on. `lthlang doc METHOD` marks them `required`.",
        example: Some(include_str!("../../tests/diagnostics/missing_field.lth")),
    },
    Code {
        code: "lth::check::type_mismatch",
        summary: "A value has the wrong type for its field.",
        text: "Every field has a type: a number, a percentage, a word, a path, or a reference to a stage
producing a certain output (a model, a trained checkpoint, a ticket series, a concept bank ...).
The message says what the field expects and what was written. A common case is a reference to
the wrong stage: pruning needs a trained checkpoint, not the untrained model.",
        example: Some(include_str!("../../tests/diagnostics/type_mismatch.lth")),
    },
    Code {
        code: "lth::check::out_of_range",
        summary: "A number lies outside the range its field allows.",
        text: "Ranges keep experiments meaningful: a pruning rate of 100% would remove every weight, a
learning rate must be positive. The message names the allowed range; `lthlang doc METHOD` lists
the ranges of every field.",
        example: Some(include_str!("../../tests/diagnostics/out_of_range.lth")),
    },
    Code {
        code: "lth::check::bad_argument",
        summary: "A function was called with arguments it does not take.",
        text: "Functions take their documented parameters, by position or by name: `step(every = 30, gamma
= 0.1)`, `epoch(k)`, `round(k)`, `top_iou(20%)`, `sample(n, seed = s)`. The message names the
unknown, missing or repeated argument.",
        example: Some(include_str!("../../tests/diagnostics/bad_argument.lth")),
    },
    Code {
        code: "lth::check::env_unset",
        summary: "`env(\"VAR\")` names an environment variable that is not set.",
        text: "Dataset folders are often given as `root = env(\"CUB_ROOT\")` so one file works on several
machines. The variable must be set (and non-empty) when the file is checked or run. Set it in
the shell, or write the path directly.",
        example: Some(include_str!("../../tests/diagnostics/env_unset.lth")),
    },
    Code {
        code: "lth::check::missing_path",
        summary: "A file or folder named in the experiment does not exist, or lacks what it should hold.",
        text: "Paths are read relative to the `.lth` file they are written in. Dataset folders must hold the
files of the dataset as it is distributed; the help lists them. `lthlang check --no-data` (and
`plan`, `graph`) turn a missing dataset folder into a warning, so an experiment can be read and
planned on a machine without its data; `run` needs it.",
        example: Some(include_str!("../../tests/diagnostics/missing_path.lth")),
    },
    Code {
        code: "lth::check::cycle",
        summary: "Presets build on each other in a circle.",
        text: "A preset is a method with some fields set (`preset train fast = sgd { lr = 0.1 }`), and may
build on another preset. Following the chain must end at a built-in method; here it comes back
to where it started.",
        example: Some(include_str!("../../tests/diagnostics/cycle.lth")),
    },
    Code {
        code: "lth::check::unknown_layer",
        summary: "A layer name does not exist in the model.",
        text: "Layers are named as in the model's definition (for the ResNets: `layer1` ... `layer4`,
`avgpool`, `fc`). The message lists the layers of the model the stage reads and suggests the
nearest.",
        example: Some(include_str!("../../tests/diagnostics/unknown_layer.lth")),
    },
    Code {
        code: "lth::check::layer_not_convolutional",
        summary: "A saliency method needs a spatial feature map, and the layer has none.",
        text: "Grad-CAM and its relatives weight the channels of a convolutional feature map and upsample the
result to the image. After global pooling (`avgpool`) or in the linear head (`fc`) there is no
spatial map left; pick the last convolutional stage instead (`layer4`, or `layer3` for
`resnet_tiny`).",
        example: Some(include_str!("../../tests/diagnostics/layer_not_convolutional.lth")),
    },
    Code {
        code: "lth::check::no_concept_labels",
        summary: "Concept labels are asked of a dataset that has none.",
        text: "`data.concepts` exists only for datasets annotated with concepts (CUB, Derm7pt, the synthetic
`shapes`). For a dataset without them, learn a concept bank another way (for example `random`
concepts as a baseline) or use a dataset that has them; `lthlang doc dataset` says which do.",
        example: Some(include_str!("../../tests/diagnostics/no_concept_labels.lth")),
    },
    Code {
        code: "lth::check::sparsity_unreached",
        summary: "A compared sparsity is not reached by any round of the ticket series.",
        text: "Round k of iterative pruning at rate r leaves (1 - r)^k of the weights: at 20% per round that is
100%, 80%, 64%, 51.2% ... The `at` list of `compare` names weights remaining and each must match
a round, to the printed precision. The message lists the rounds' sparsities; change `at`, the
rate or the number of rounds.",
        example: Some(include_str!("../../tests/diagnostics/sparsity_unreached.lth")),
    },
    Code {
        code: "lth::check::tcav_before_head",
        summary: "TCAV at a layer followed only by pooling and the linear head (a warning).",
        text: "There TCAV's directional derivatives are constant over images (the head is linear), so the
scores say little beyond the sign of a weight. It is allowed, as a warning; an earlier layer
usually tells more.",
        example: Some(include_str!("../../tests/diagnostics/tcav_before_head.lth")),
    },
    Code {
        code: "lth::check::mixed_series",
        summary: "One stage reads inputs from two different ticket series.",
        text: "A stage mapped over rounds pairs round k of each input. When the inputs come from different
series (IMP tickets and random tickets), round k of one has nothing to do with round k of the
other, so the result would mean nothing. Derive every input from the same series.",
        example: Some(include_str!("../../tests/diagnostics/mixed_series.lth")),
    },
    Code {
        code: "lth::check::tcav_few_runs",
        summary: "TCAV asks for fewer than 10 runs (a warning).",
        text: "Kim et al. (2018) train each concept's CAV against at least 10 random image sets and compare the
resulting TCAV scores with as many random CAVs by a two-sided t-test. With fewer runs the test
has little power and its p-values are rough. It is allowed, as a warning, for quick looks; raise
`runs` to 10 or more for results you report.",
        example: Some(include_str!("../../tests/diagnostics/tcav_few_runs.lth")),
    },
    Code {
        code: "lth::check::field_without_effect",
        summary: "A field is written that the stage's other settings make unused (a warning).",
        text: "An `annotated` bank fits each concept's logistic probe to its optimum by default (`solver =
exact`), so the SGD settings `epochs`, `lr` and `batch` change nothing. They are usually left
over from the published recipe. Remove them, or write `solver = sgd` to train the probes by
minibatch SGD for `epochs` at `lr`.",
        example: Some(include_str!("../../tests/diagnostics/field_without_effect.lth")),
    },
    Code {
        code: "lth::check::reduced_precision_on_cpu",
        summary: "`precision = bf16` or `fp16` in an experiment on the CPU (a warning).",
        text: "libtorch's CPU autocast runs both, so the experiment is valid, but a CPU without native bf16 or
fp16 arithmetic (AVX-512 BF16, AMX, AVX-512 FP16) converts in software: on an AVX2 machine a
three-epoch `resnet_tiny` run took 2.4 times (bf16) and 4 times (fp16) as long as fp32, for
losses within 0.5% of fp32's. The setting usually comes from a GPU experiment. `precision = auto`
is fp32 on the CPU and bf16 on a GPU that supports it.",
        example: Some(include_str!("../../tests/diagnostics/reduced_precision_on_cpu.lth")),
    },
    Code {
        code: "lth::check::tcav_unlabelled_bank",
        summary: "TCAV is given a concept bank without labelled probe images.",
        text: "Each TCAV run retrains a concept's CAV from the probe images that show the concept against a
fresh random set of others, so the bank must say which images show which concept: an
`annotated`, `cav` or `labels` bank does. A `random` bank has directions but no images behind
them; the random CAVs the test needs are made by TCAV itself.",
        example: Some(include_str!("../../tests/diagnostics/tcav_unlabelled_bank.lth")),
    },
    Code {
        code: "lth::check::tcav_bank_mismatch",
        summary: "TCAV reads a concept bank from another layer or another model.",
        text: "A CAV is a direction in the space of one layer's activations of one network: the bank's
embeddings (its `from`) fix both. TCAV differentiates the logits with respect to its own `layer`
of the network it is given (`of`), so both must be the ones the bank's embeddings were taken
from; otherwise the directions have the wrong size or mean nothing there. Write the bank's layer,
or declare a bank over embeddings of the layer and model TCAV tests.",
        example: Some(include_str!("../../tests/diagnostics/tcav_bank_mismatch.lth")),
    },
    Code {
        code: "lth::check::features_mismatch",
        summary: "A concept model's `features` cannot be scored by its concept bank.",
        text: "With `features = x`, a PCBM or a completeness score applies the bank's concept directions to
the embeddings `x` (a bank learned on a probe set, scoring the task's images). That needs
directions, which a `labels` bank lacks (its scores are the dataset's own labels), and
embeddings of the same layer of the same model the bank was learned on, or the directions have
another size or mean nothing there. Embed the features like the bank's own embeddings, or drop
`features` to use the bank's scores as they are.",
        example: Some(include_str!("../../tests/diagnostics/features_mismatch.lth")),
    },
    Code {
        code: "lth::check::empty_split",
        summary: "A stage trains on, or explains, a split given 0% of the images.",
        text: "A dataset's `val` or `test` share may be 0%: the split exists but holds no image. Scores on
it are `null`, but a training stage cannot learn from it and an explainer has nothing to
explain. Give the split a share above 0%, or read another split.",
        example: Some(include_str!("../../tests/diagnostics/empty_split.lth")),
    },
    Code {
        code: "lth::check::image_too_small",
        summary: "Images too small for the model they are fed to (Inception-v3 under 75 px).",
        text: "Inception-v3's stem and its strided reductions use 3×3 convolutions without padding: below 75
px nothing of the image is left, and training its auxiliary classifier needs 299 px. `check`
refuses the combination rather than let the worker fail on it; raise the dataset's `image`, or
choose a ResNet, which takes any size.",
        example: Some(include_str!("../../tests/diagnostics/image_too_small.lth")),
    },
    Code {
        code: "lth::check::normalize_untrained",
        summary: "An untrained network whose inputs are to be normalised by its training data.",
        text: "`normalize = dataset` scales a network's inputs by the per-channel mean and deviation of the
training split of the data it is trained on, so that it reads every dataset, probe sets too, on
one scale. A stage that reads the model stage itself (an untrained baseline, `of = net`) has no
such data. Rather than guess one, `check` refuses: read a `train` or `prune` stage, or give the
model a scale that needs no data, `normalize = fixed` or `imagenet`.",
        example: Some(include_str!("../../tests/diagnostics/normalize_untrained.lth")),
    },
    Code {
        code: "lth::check::single_image_batch",
        summary: "Training one image at a time where BatchNorm would see one value per channel.",
        text: "BatchNorm in training normalises each channel over the batch and the map's pixels. Where the
network's smallest map is 1×1 at the dataset's image size (ResNets below 33 px, Inception-v3
below about 140 px, and always in its auxiliary classifier), a batch of one image gives it a
single value: PyTorch refuses such a batch, and libtorch would quietly make the running variance
NaN, so the trained network reads NaN in eval mode. `check` refuses `batch = 1` there. Where only
an epoch's last batch would hold one image, the worker leaves that image out, with a warning.",
        example: Some(include_str!("../../tests/diagnostics/single_image_batch.lth")),
    },
    Code {
        code: "lth::check::nothing_declared",
        summary: "The file declares no stage (a warning).",
        text: "Presets, `use` lines and an `experiment` block describe how stages would run, but without a
stage there is nothing to plan or run. `check` says so, and `run` refuses such a file without
creating a run folder.",
        example: Some(include_str!("../../tests/diagnostics/nothing_declared.lth")),
    },
    Code {
        code: "lth::check::reserved_flag",
        summary: "`sbatch_args` sets a flag that lthlang sets itself.",
        text: "For every Slurm job lthlang chooses the job's name, writes its log into the cache, chains it to
its inputs' jobs with `--dependency` and reads its id with `--parsable`. An `sbatch_args` entry
that sets `--output`, `--dependency`, `--job-name`, `--wait`, `--array`, `--parsable` or
`--wrap` would break that, so it is refused. Other sbatch flags pass through unchanged.",
        example: Some(include_str!("../../tests/diagnostics/reserved_flag.lth")),
    },
    Code {
        code: "lth::check::site_settings",
        summary: "The site settings in `lthlang.toml` are invalid.",
        text: "Site settings (partition names, account, module loads) live in `lthlang.toml` beside the
experiment, or in `$XDG_CONFIG_HOME/lthlang/lthlang.toml`. `check` reads the file that applies
and points into it at an unknown key (with the nearest known one), a value of the wrong type, or
TOML that does not parse. The same `.lth` file then runs unchanged on clusters whose settings
differ.",
        example: None,
    },
];

pub fn find(word: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == word || c.code.rsplit("::").next() == Some(word))
}

pub fn text(code: &Code) -> String {
    let mut out = format!("{}: {}\n\n{}\n", code.code, code.summary, code.text);
    if let Some(example) = code.example {
        out.push_str("\nFor example, `lthlang check` reports it on this file:\n\n");
        for line in example.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `lthlang explain [CODE]`: exit 0, or 2 for an unknown code.
pub fn command(word: Option<&str>) -> u8 {
    use crate::report::console;
    let Some(word) = word else {
        let width = CODES.iter().map(|c| c.code.len()).max().unwrap_or(0);
        let list: String = CODES.iter().map(|c| format!("{:<width$}  {}\n", c.code, c.summary)).collect();
        console::output(&list);
        return 0;
    };
    match find(word) {
        Some(code) => {
            console::output(&text(code));
            0
        }
        None => {
            let hint = crate::diagnostic::did_you_mean(word, CODES.iter().map(|c| c.code)).map(|h| format!(" ({h})")).unwrap_or_default();
            console::error_line(&format!("no diagnostic code `{word}`{hint}; `lthlang explain` lists them"));
            2
        }
    }
}
