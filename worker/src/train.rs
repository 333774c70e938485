//! `train` stages and the training loop prune rounds reuse.
//!
//! The optimizers are written here on tensors rather than taken from libtorch, so their state
//! (momentum buffers, Adam moments) can be saved each epoch and a killed run resumes bit for bit,
//! and so masks apply exactly: the gradient is masked before the step and the weight after it.

use super::checkpoint;
use super::data::{Dataset, Split};
use super::models::{Network, Spec, INIT_FILE, WEIGHTS_FILE};
use super::precision::{Compute, GradScaler, Precision};
use super::{io_error, Context, Result, StageError};
use lthlang::check::Value;
use lthlang::exec::job::Event;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Clone, Debug)]
pub enum Optimizer {
    Sgd { momentum: f64, nesterov: bool },
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

#[derive(Clone, Debug)]
pub enum Schedule {
    Constant,
    Cosine,
    Step { every: u32, gamma: f64 },
}

impl Schedule {
    /// The learning rate for `epoch` (0-based) of `epochs`.
    pub fn lr(&self, base: f64, epoch: u32, epochs: u32) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * f64::from(epoch) / f64::from(epochs.max(1))).cos()),
            Schedule::Step { every, gamma } => base * gamma.powi(i32::try_from(epoch / (*every).max(1)).unwrap_or(0)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Recipe {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub epochs: u32,
    pub batch: i64,
    pub data_split: String,
    pub val_split: Option<String>,
    /// Epochs after which the weights are kept for late rewinding (`rewind = epoch(k)`).
    pub keep_epochs: Vec<u32>,
    /// The `precision` field's word (`auto` is resolved for the device when training starts).
    pub precision: String,
    pub channels_last: bool,
}

impl Recipe {
    /// The recipe written in a train stage's fields.
    pub fn from_fields(method: &str, fields: &BTreeMap<String, Value>) -> Result<Recipe> {
        let get = |name: &str| fields.get(name).ok_or_else(|| StageError::new(format!("train field `{name}` missing")));
        let float = |name: &str| match get(name)? {
            Value::Float(x) | Value::Fraction(x) => Ok(*x),
            Value::Int(n) => Ok(*n as f64),
            other => Err(StageError::new(format!("`{name}`: expected a number, got {other:?}"))),
        };
        let int = |name: &str| match get(name)? {
            Value::Int(n) => Ok(*n),
            other => Err(StageError::new(format!("`{name}`: expected an integer, got {other:?}"))),
        };
        let split = |name: &str| match get(name)? {
            Value::Split { split, .. } => Ok(Some(split.clone())),
            Value::None => Ok(None),
            other => Err(StageError::new(format!("`{name}`: expected a split, got {other:?}"))),
        };
        let optimizer = match method {
            "adam" => Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            _ => Optimizer::Sgd { momentum: float("momentum")?, nesterov: matches!(get("nesterov")?, Value::Bool(true)) },
        };
        let schedule = match get("lr_schedule")? {
            Value::Word(w) if w == "cosine" => Schedule::Cosine,
            Value::Call { function, args } if function == "step" => Schedule::Step {
                every: args.get("every").and_then(Value::as_int).and_then(|n| u32::try_from(n).ok()).unwrap_or(1),
                gamma: args.get("gamma").and_then(Value::as_fraction).unwrap_or(0.1),
            },
            _ => Schedule::Constant,
        };
        let keep_epochs = match fields.get("keep_epochs") {
            Some(Value::List(items)) => items.iter().filter_map(Value::as_int).filter_map(|k| u32::try_from(k).ok()).collect(),
            _ => Vec::new(),
        };
        Ok(Recipe {
            optimizer,
            lr: float("lr")?,
            weight_decay: float("weight_decay")?,
            schedule,
            epochs: u32::try_from(int("epochs")?).unwrap_or(1),
            batch: int("batch")?,
            data_split: split("data")?.unwrap_or_else(|| "train".to_owned()),
            val_split: split("val")?,
            keep_epochs,
            precision: match fields.get("precision") {
                Some(Value::Word(w)) => w.clone(),
                _ => "fp32".to_owned(),
            },
            channels_last: matches!(fields.get("channels_last"), Some(Value::Bool(true))),
        })
    }
}

/// Optimizer state per trainable variable, in sorted name order, and the fp16 loss scaler.
struct State {
    buffers: BTreeMap<String, Vec<Tensor>>,
    steps: i64,
    scaler: Option<GradScaler>,
}

/// The optimizer's constants as one-element tensors on the parameters' device, made once per
/// epoch (the learning rate changes between epochs only): building them every step copied them
/// from the host each time, twice per parameter for Adam.
struct Scalars {
    minus_lr: Tensor,
    decay: Tensor,
    one_minus_beta1: Tensor,
    one_minus_beta2: Tensor,
}

impl Scalars {
    fn new(recipe: &Recipe, lr: f64, device: tch::Device) -> Result<Scalars> {
        let scalar =
            |x: f64| Tensor::f_from_slice(&[x as f32]).and_then(|t| t.f_reshape([] as [i64; 0])).and_then(|t| t.f_to_device(device));
        let (beta1, beta2) = match recipe.optimizer {
            Optimizer::Adam { beta1, beta2, .. } => (beta1, beta2),
            Optimizer::Sgd { .. } => (0.0, 0.0),
        };
        Ok(Scalars {
            minus_lr: scalar(-lr)?,
            decay: scalar(recipe.weight_decay)?,
            one_minus_beta1: scalar(1.0 - beta1)?,
            one_minus_beta2: scalar(1.0 - beta2)?,
        })
    }
}

#[cfg(test)]
fn step(recipe: &Recipe, lr: f64, params: &BTreeMap<String, Tensor>, masks: &BTreeMap<String, Tensor>, state: &mut State) -> Result<()> {
    let device = params.values().next().map_or(tch::Device::Cpu, Tensor::device);
    step_with(recipe, &Scalars::new(recipe, lr, device)?, params, masks, state)
}

fn step_with(
    recipe: &Recipe,
    scalars: &Scalars,
    params: &BTreeMap<String, Tensor>,
    masks: &BTreeMap<String, Tensor>,
    state: &mut State,
) -> Result<()> {
    let _guard = tch::no_grad_guard();
    state.steps += 1;
    // In-place updates with scalar tensors through addcmul_: one pass over each parameter and no
    // temporaries of its size, which is where a hand-written optimizer loses to PyTorch's. (tch
    // 0.24 exposes none of libtorch's foreach or fused optimizer kernels: they take tensor lists,
    // which its generator skips.)
    let Scalars { minus_lr, decay, one_minus_beta1, one_minus_beta2 } = scalars;
    for (name, p) in params {
        let mut g = p.grad();
        if !g.defined() {
            continue;
        }
        // The gradient is zeroed before every backward pass, so it may be changed in place.
        if let Some(m) = masks.get(name) {
            let _ = g.f_mul_(m)?;
        }
        if recipe.weight_decay > 0.0 {
            let _ = g.f_addcmul_(p, decay)?;
        }
        let update = match &recipe.optimizer {
            Optimizer::Sgd { momentum, nesterov } => {
                if *momentum == 0.0 {
                    g
                } else {
                    let buffers = state.buffers.entry(name.clone()).or_default();
                    if buffers.is_empty() {
                        // PyTorch starts the momentum buffer at the first gradient.
                        buffers.push(g.copy());
                    } else {
                        let _ = buffers[0].f_mul_scalar_(*momentum)?.f_add_(&g)?;
                    }
                    if *nesterov {
                        g.f_add(&buffers[0].f_mul_scalar(*momentum)?)?
                    } else {
                        buffers[0].shallow_clone()
                    }
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                let buffers = state.buffers.entry(name.clone()).or_default();
                if buffers.is_empty() {
                    buffers.push(g.zeros_like());
                    buffers.push(g.zeros_like());
                }
                let _ = buffers[0].f_mul_scalar_(*beta1)?.f_addcmul_(&g, one_minus_beta1)?;
                let _ = buffers[1].f_mul_scalar_(*beta2)?.f_addcmul_(&g.f_mul(&g)?, one_minus_beta2)?;
                let t = i32::try_from(state.steps).unwrap_or(i32::MAX);
                let m_hat = buffers[0].f_div_scalar(1.0 - beta1.powi(t))?;
                let v_hat = buffers[1].f_div_scalar(1.0 - beta2.powi(t))?;
                m_hat.f_div(&v_hat.f_sqrt()?.f_add_scalar(*eps)?)?
            }
        };
        let mut p = p.shallow_clone();
        let _ = p.f_addcmul_(&update, minus_lr)?;
        if let Some(m) = masks.get(name) {
            let _ = p.f_mul_(m)?;
        }
    }
    Ok(())
}

/// Test-split scores of a classifier. Balanced accuracy weighs every class present alike, and
/// AUROC (binary tasks only) ranks the images by the logit margin z₁ − z₀, which orders them as
/// the positive class's softmax probability does: on HAM10000, 16% malignant, accuracy alone
/// rewards a network that calls everything benign.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestScores {
    /// None for a split without images: no score, rather than a score of 0.
    pub accuracy: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub auroc: Option<f64>,
}

impl TestScores {
    /// What a split without images scores.
    pub const EMPTY: TestScores = TestScores { accuracy: None, balanced_accuracy: None, auroc: None };

    /// The scores of `logits` [n, K] against `labels` [n].
    pub fn of(logits: &Tensor, labels: &Tensor) -> Result<TestScores> {
        let labels: Vec<i64> = Vec::try_from(&labels.f_to_device(tch::Device::Cpu)?)?;
        let logits = logits.f_to_device(tch::Device::Cpu)?;
        let predictions: Vec<i64> = Vec::try_from(&logits.f_argmax(-1, false)?)?;
        let margins: Option<Vec<f64>> = match logits.size().as_slice() {
            [_, 2] => Some(Vec::try_from(&(logits.f_select(1, 1)? - logits.f_select(1, 0)?).f_to_kind(Kind::Double)?)?),
            _ => None,
        };
        Ok(TestScores::from_predictions(&predictions, &labels, margins.as_deref()))
    }

    /// The scores of predicted classes against `labels`; `margins` (z₁ − z₀ per image) are given
    /// for binary tasks only.
    pub fn from_predictions(predictions: &[i64], labels: &[i64], margins: Option<&[f64]>) -> TestScores {
        use lthlang::metrics::summary::{balanced_accuracy, binary_auroc};
        if labels.is_empty() {
            return TestScores::EMPTY;
        }
        let correct = predictions.iter().zip(labels).filter(|(p, l)| p == l).count();
        let auroc = margins.and_then(|m| binary_auroc(m, &labels.iter().map(|l| *l == 1).collect::<Vec<_>>()).ok());
        TestScores {
            accuracy: Some(correct as f64 / labels.len() as f64),
            balanced_accuracy: balanced_accuracy(predictions, labels).ok(),
            auroc,
        }
    }

    /// The scores under `{prefix}accuracy`, `{prefix}balanced_accuracy` and `{prefix}auroc`.
    pub fn insert_into(&self, metrics: &mut serde_json::Value, prefix: &str) {
        metrics[format!("{prefix}accuracy")] = serde_json::json!(self.accuracy);
        metrics[format!("{prefix}balanced_accuracy")] = serde_json::json!(self.balanced_accuracy);
        metrics[format!("{prefix}auroc")] = serde_json::json!(self.auroc);
    }
}

/// The scores of `net` on a split (the test split, or validation for model selection), in eval
/// mode.
pub fn test_scores(net: &Network, split: &Split) -> Result<TestScores> {
    scores_of_first(net, split, 256, None, &crate::no_progress)
}

/// Like [`test_scores`] over the first `batches` batches of `batch` images only (a smoke run's).
/// `progress` is called with (images done, images) after each batch.
pub fn scores_of_first(
    net: &Network,
    split: &Split,
    batch: i64,
    batches: Option<usize>,
    progress: &dyn Fn(i64, i64),
) -> Result<TestScores> {
    let _guard = tch::no_grad_guard();
    let batch = batch.max(1);
    let n = match batches {
        Some(b) => split.len().min(batch * i64::try_from(b).unwrap_or(i64::MAX / batch.max(1))),
        None => split.len(),
    };
    let mut logits = Vec::new();
    for start in (0..n).step_by(usize::try_from(batch).unwrap_or(256)) {
        let index = Tensor::f_arange_start(start, (start + batch).min(n), (Kind::Int64, tch::Device::Cpu))?;
        let (x, _) = split.batch(&index)?;
        logits.push(net.forward(&x, false)?);
        progress((start + batch).min(n), n);
    }
    if logits.is_empty() {
        return Ok(TestScores::EMPTY);
    }
    TestScores::of(&Tensor::f_cat(&logits, 0)?, &split.labels.f_narrow(0, 0, n)?)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: u32,
    pub lr: f64,
    pub loss: f64,
    pub accuracy: f64,
    pub val_accuracy: Option<f64>,
    /// fp16 steps skipped because their gradients held inf or NaN (absent when none were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_steps: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub history: Vec<EpochRecord>,
    pub best_epoch: u32,
    pub val_accuracy: Option<f64>,
    /// The precision training ran in (`auto` resolved).
    pub precision: Precision,
    /// No score at all when the dataset has no test split or it is empty.
    pub test: TestScores,
}

/// Resumable state saved after every epoch in the node's partial folder.
#[derive(Serialize, Deserialize)]
struct Progress {
    epochs_done: u32,
    steps: i64,
    history: Vec<EpochRecord>,
    best_epoch: u32,
    best_val: Option<f64>,
}

/// First random stream of the training-batch augmentation (epoch e uses this + e).
const AUGMENT_STREAMS: u64 = 1 << 32;

/// The node's one resumable training state: the variables, the optimizer's buffers and, in its
/// metadata, the [`Progress`] record. It is replaced after every epoch by writing a temporary
/// file and renaming it over the old one, so the rename is the epoch's commit point and a kill
/// at any moment leaves the previous epoch's state whole.
const STATE: &str = "state.safetensors";

/// The best epoch's weights, kept apart from the state only once a later epoch failed to improve
/// on them. While the best epoch is the last one finished, its weights are the state's own
/// variables and nothing extra is written; so an epoch writes best weights at most once per
/// improvement, and a run whose validation accuracy keeps rising writes none.
fn best_file(epoch: u32) -> String {
    format!("best-{epoch}.safetensors")
}

fn save_progress(
    dir: &Path,
    progress: &Progress,
    vars: &BTreeMap<String, Tensor>,
    state: &State,
    best: &BTreeMap<String, Tensor>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    let best_apart = progress.best_val.is_some() && progress.best_epoch != progress.epochs_done;
    // Written before the state that no longer holds these weights is committed; if it already
    // exists (a killed attempt wrote it, or an earlier epoch did), it is the same epoch's weights.
    let best_path = dir.join(best_file(progress.best_epoch));
    if best_apart && !best_path.is_file() {
        checkpoint::save(&best_path, best, &BTreeMap::new())?;
    }
    let mut tensors = BTreeMap::new();
    for (k, v) in vars {
        tensors.insert(format!("var.{k}"), v.shallow_clone());
    }
    for (k, bufs) in &state.buffers {
        for (i, b) in bufs.iter().enumerate() {
            tensors.insert(format!("opt{i}.{k}"), b.shallow_clone());
        }
    }
    if let Some(scaler) = &state.scaler {
        tensors.insert("scaler.scale".to_owned(), scaler.scale.shallow_clone());
        tensors.insert("scaler.growth_tracker".to_owned(), scaler.growth_tracker.shallow_clone());
    }
    let metadata = BTreeMap::from([("progress".to_owned(), serde_json::to_string(progress).unwrap_or_default())]);
    checkpoint::save(&dir.join(STATE), &tensors, &metadata)?;
    // Best weights the committed state does not name are no longer needed.
    let keep = best_apart.then(|| best_file(progress.best_epoch));
    if let Ok(listing) = std::fs::read_dir(dir) {
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("best-") && name.ends_with(".safetensors") && Some(&name) != keep.as_ref() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Loads saved progress if a previous attempt left some; a damaged partial area is discarded
/// (nothing is changed unless the state and the best weights it names both read back).
fn load_progress(dir: &Path, vars: &BTreeMap<String, Tensor>, state: &mut State, best: &mut BTreeMap<String, Tensor>) -> Option<Progress> {
    let (mut tensors, metadata) = checkpoint::load_with_metadata(&dir.join(STATE)).ok()?;
    let progress: Progress = serde_json::from_str(metadata.get("progress")?).ok()?;
    let current: BTreeMap<String, Tensor> =
        vars.keys().filter_map(|k| tensors.remove(&format!("var.{k}")).map(|t| (k.clone(), t))).collect();
    let stored_best = if progress.best_val.is_some() && progress.best_epoch != progress.epochs_done {
        Some(checkpoint::load(&dir.join(best_file(progress.best_epoch))).ok()?)
    } else {
        None
    };
    let device = vars.values().next().map_or(tch::Device::Cpu, Tensor::device);
    let mut buffers: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
    let mut scaler_parts: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in tensors {
        if let Some(part) = name.strip_prefix("scaler.") {
            scaler_parts.insert(part.to_owned(), t);
            continue;
        }
        let (slot, k) = name.split_once('.')?;
        let i: usize = slot.strip_prefix("opt")?.parse().ok()?;
        let bufs = buffers.entry(k.to_owned()).or_default();
        while bufs.len() <= i {
            bufs.push(Tensor::new());
        }
        bufs[i] = t.f_to_device(device).ok()?;
    }
    // The loss scaler of an fp16 run: restored only with everything else, and a state without it
    // (saved in another precision) is not this run's.
    let scaler_state = match state.scaler {
        Some(_) => Some((scaler_parts.get("scale")?, scaler_parts.get("growth_tracker")?)),
        None => None,
    };
    checkpoint::restore(vars, &current, dir).ok()?;
    if let (Some(scaler), Some((scale, growth))) = (state.scaler.as_mut(), scaler_state) {
        scaler.scale.f_copy_(scale).ok()?;
        scaler.growth_tracker.f_copy_(growth).ok()?;
    }
    if progress.best_val.is_some() {
        *best = match stored_best {
            Some(stored) => stored.into_iter().map(|(k, t)| (k, t.to_device(device))).collect(),
            None => checkpoint::snapshot(vars),
        };
    }
    state.buffers = buffers;
    state.steps = progress.steps;
    Some(progress)
}

/// Trains `net` in place with a fresh optimizer. `masks` (prunable name → 0/1 tensor) keep pruned
/// weights at exactly zero. Selects the best epoch on validation when a val split is given.
pub fn train(
    ctx: &Context,
    net: &Network,
    data: &Dataset,
    recipe: &Recipe,
    masks: &BTreeMap<String, Tensor>,
    keep_dir: Option<&Path>,
) -> Result<Outcome> {
    let train_split = data.split(&recipe.data_split)?;
    let val_split = recipe.val_split.as_deref().map(|s| data.split(s)).transpose()?;
    let device = net.vs.device();
    let compute =
        Compute { precision: Precision::resolve(&recipe.precision, device)?, channels_last: recipe.channels_last }.on_device_of(ctx);
    compute.prepare(net)?;
    if device.is_cuda() {
        // cuDNN times its algorithms on the first batches of each shape and keeps the fastest;
        // training repeats the same shapes for thousands of steps.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let vars = net.variables();
    let params: BTreeMap<String, Tensor> =
        vars.iter().filter(|(_, t)| t.requires_grad()).map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
    let scaler = if compute.precision == Precision::Fp16 { Some(GradScaler::new(device)?) } else { None };
    let mut state = State { buffers: BTreeMap::new(), steps: 0, scaler };
    let mut best = BTreeMap::new();
    let partial = &ctx.request.partial;
    let mut progress = load_progress(partial, &vars, &mut state, &mut best).unwrap_or(Progress {
        epochs_done: 0,
        steps: 0,
        history: Vec::new(),
        best_epoch: 0,
        best_val: None,
    });
    if progress.epochs_done > 0 {
        ctx.progress(format!("resuming after epoch {}", progress.epochs_done));
    }
    // Kept epochs go to the partial folder first, which outlives a killed attempt (the output
    // folder does not), and are copied out once training ends.
    let kept = |epoch: u32| format!("epoch-{epoch}.safetensors");
    if keep_dir.is_some() && recipe.keep_epochs.contains(&0) && progress.epochs_done == 0 {
        checkpoint::save(&partial.join(kept(0)), &vars, &BTreeMap::new())?;
    }
    let n = train_split.len();
    let batch_size = usize::try_from(recipe.batch).unwrap_or(64).max(1);
    // An epoch's last batch of a single image is left out where BatchNorm would see one value per
    // channel (`check` refuses `batch = 1` there), as `drop_last` would in PyTorch, which
    // otherwise refuses the batch; kept, it would make the running variance NaN.
    let images = usize::try_from(n).unwrap_or(0);
    let drop_single = images > 1
        && images % batch_size == 1
        && net.single_image_batch_breaks_batch_norm(i64::try_from(data.meta.image).unwrap_or(i64::MAX));
    let trained = if drop_single { images - 1 } else { images };
    if drop_single {
        ctx.warn(format!(
            "the last batch of each epoch would hold one image, which {}'s 1×1 BatchNorm maps at {} px cannot normalise; it is left out ({trained} of {images} images train per epoch)",
            net.name, data.meta.image
        ));
    }
    // A smoke run trains N batches an epoch, and only up to the last epoch something rewinds to
    // (at least one), so `rewind = epoch(k)` finds its weights.
    let smoke = ctx.smoke();
    let batches = i64::try_from(trained.div_ceil(batch_size).min(smoke.unwrap_or(usize::MAX))).unwrap_or(i64::MAX);
    let epochs = match smoke {
        Some(_) => recipe.epochs.min(recipe.keep_epochs.iter().copied().max().unwrap_or(0).max(1)),
        None => recipe.epochs,
    };
    let score = |split: &Split, what: &str| {
        let progress = ctx.loop_progress(format!("scoring the {what} split: images"));
        match smoke {
            Some(batches) => scores_of_first(net, split, recipe.batch, Some(batches), &progress),
            None => scores_of_first(net, split, 256, None, &progress),
        }
    };
    for epoch in progress.epochs_done..epochs {
        let lr = recipe.schedule.lr(recipe.lr, epoch, recipe.epochs);
        let mut order: Vec<i64> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
        rng.set_stream(u64::from(epoch) + 1);
        order.shuffle(&mut rng);
        // Crops come from their own stream per epoch (disjoint from the shuffle streams 1, 2, ...)
        // so a resumed run draws the same ones.
        let mut crop_rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
        crop_rng.set_stream(AUGMENT_STREAMS + u64::from(epoch));
        let scalars = Scalars::new(recipe, lr, device)?;
        // Loss and correct count accumulate on the device and are read once, after the epoch:
        // reading them every step would make the host wait for the device every step.
        let mut loss_sum = Tensor::f_zeros([] as [i64; 0], (Kind::Double, device))?;
        let mut correct = Tensor::f_zeros([] as [i64; 0], (Kind::Int64, device))?;
        let mut seen = 0i64;
        let mut skipped = 0u64;
        let batch_progress = ctx.loop_progress(format!("epoch {}/{epochs}: batches", epoch + 1));
        for (done, chunk) in (1..).zip(order[..trained].chunks(batch_size).take(smoke.unwrap_or(usize::MAX))) {
            let index = Tensor::f_from_slice(chunk)?;
            let (x, y) = match &data.meta.augment {
                Some(augmentation) => train_split.batch_augmented(&index, augmentation, &mut crop_rng)?,
                None => train_split.batch(&index)?,
            };
            for p in params.values() {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.f_zero_()?;
                }
            }
            let x = compute.input(&x)?;
            let (logits, loss) = compute.run(device, || net.training_loss(&x, &y))?;
            match state.scaler.as_mut() {
                // fp16: the scaled loss's gradients are unscaled and checked; a step with inf or
                // NaN in them is skipped, as `GradScaler.step` skips `optimizer.step()`.
                Some(scaler) => {
                    scaler.scale(&loss)?.f_backward()?;
                    let finite = scaler.unscale(params.values())?;
                    scaler.update()?;
                    if finite {
                        step_with(recipe, &scalars, &params, masks, &mut state)?;
                    } else {
                        skipped += 1;
                    }
                }
                None => {
                    loss.f_backward()?;
                    step_with(recipe, &scalars, &params, masks, &mut state)?;
                }
            }
            let count = i64::try_from(chunk.len()).unwrap_or(0);
            let _ = loss_sum.f_add_(&loss.f_detach()?.f_to_kind(Kind::Double)?.f_mul_scalar(count as f64)?)?;
            let _ = correct.f_add_(&logits.f_argmax(-1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Int64)?)?;
            seen += count;
            batch_progress(done, batches);
        }
        let (loss_sum, correct) = (loss_sum.f_double_value(&[])?, correct.f_int64_value(&[])?);
        // A loss that is NaN or infinite has already made the weights so (fp16 training excepted:
        // its scaler skips such steps): every later result would be NaN, read as chance. PyTorch
        // trains on; the node stops here and says why.
        if !loss_sum.is_finite() && state.scaler.is_none() {
            return Err(StageError::new(format!(
                "training diverged: the loss of epoch {} is {loss_sum} (lr {lr}, batch {}); lower `lr`",
                epoch + 1,
                recipe.batch
            )));
        }
        let val_accuracy = val_split.map(|v| score(v, "val").map(|s| s.accuracy)).transpose()?.flatten();
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            loss: loss_sum / seen.max(1) as f64,
            accuracy: correct as f64 / seen.max(1) as f64,
            val_accuracy,
            skipped_steps: skipped,
        };
        (ctx.emit)(Event::Epoch {
            node: ctx.request.id.clone(),
            epoch: epoch + 1,
            epochs,
            loss: record.loss,
            accuracy: record.accuracy,
            val_accuracy,
        });
        progress.history.push(record);
        progress.epochs_done = epoch + 1;
        progress.steps = state.steps;
        if let Some(v) = val_accuracy {
            if progress.best_val.is_none_or(|b| v > b) {
                progress.best_val = Some(v);
                progress.best_epoch = epoch + 1;
                best = checkpoint::snapshot(&vars);
            }
        }
        if keep_dir.is_some() && recipe.keep_epochs.contains(&(epoch + 1)) {
            checkpoint::save(&partial.join(kept(epoch + 1)), &vars, &BTreeMap::new())?;
        }
        save_progress(partial, &progress, &vars, &state, &best)?;
        if crate::stop::requested() && progress.epochs_done < recipe.epochs {
            return Err(StageError::new(format!(
                "stopped after epoch {} of {}; its state is saved and a rerun resumes there",
                progress.epochs_done, recipe.epochs
            )));
        }
    }
    if let Some(dir) = keep_dir {
        for epoch in &recipe.keep_epochs {
            let (from, to) = (partial.join(kept(*epoch)), dir.join(kept(*epoch)));
            // The partial area and the output folder are both in the cache: a link moves the
            // file into the entry without writing it again (a copy where links do not work).
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(|e| super::io_error(&from, &e))?;
            }
        }
    }
    if progress.best_val.is_some() && !best.is_empty() {
        checkpoint::restore(&vars, &best, partial)?;
    } else {
        progress.best_epoch = epochs;
    }
    let test = match data.splits.get("test") {
        Some(test) => score(test, "test")?,
        None => TestScores::EMPTY,
    };
    Ok(Outcome {
        history: progress.history,
        best_epoch: progress.best_epoch,
        val_accuracy: progress.best_val,
        precision: compute.precision,
        test,
    })
}

/// The model and dataset a train stage's fields name, loaded on the context's device.
pub fn inputs(ctx: &Context, fields: &BTreeMap<String, Value>) -> Result<(Spec, std::path::PathBuf, Dataset)> {
    let model = match fields.get("model") {
        Some(Value::Stage(s)) => ctx.upstream(s)?,
        _ => return Err(StageError::new("train stage without a `model`")),
    };
    let dataset = match fields.get("data") {
        Some(Value::Split { dataset, .. }) => ctx.upstream(dataset)?,
        _ => return Err(StageError::new("train stage without `data`")),
    };
    let spec = Spec::read(&model.dir)?;
    let input = spec.normalisation(Some(&dataset.dir))?;
    Ok((spec, model.dir.join(INIT_FILE), Dataset::load(&dataset.dir, ctx.device, input)?))
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let fields = &ctx.request.fields;
    let recipe = Recipe::from_fields(&ctx.request.method, fields)?;
    let (spec, init, data) = inputs(ctx, fields)?;
    let net = spec.load(&init, ctx.device)?;
    let outcome = train(ctx, &net, &data, &recipe, &BTreeMap::new(), Some(&ctx.request.output))?;
    checkpoint::save(&ctx.request.output.join(WEIGHTS_FILE), &net.variables(), &spec.metadata(&ctx.request.stage))?;
    let mut metrics = serde_json::json!({
        "val_accuracy": outcome.val_accuracy,
        "best_epoch": outcome.best_epoch,
        "history": outcome.history,
        "weights_remaining": 1.0,
        "precision": outcome.precision.name(),
    });
    outcome.test.insert_into(&mut metrics, "test_");
    Ok(metrics)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod augmentation_tests {
    use super::super::augmentation::Augmentation;
    use super::super::data::{self, Meta, RawSplit};
    use super::*;
    use lthlang::exec::job::NodeRequest;
    use lthlang::kinds::Category;
    use tch::Device;

    /// Trains a fresh tiny network for one epoch on `data` and returns its weights.
    fn weights_after_an_epoch(data: &Dataset, partial: &Path) -> BTreeMap<String, Tensor> {
        let request = NodeRequest {
            id: "t".to_owned(),
            stage: "t".to_owned(),
            category: Category::Train,
            method: "sgd".to_owned(),
            round: None,
            seed: 4,
            fields: BTreeMap::new(),
            upstream: Vec::new(),
            output: partial.join("out"),
            partial: partial.to_owned(),
            device: "cpu".to_owned(),
            smoke: None,
        };
        let ctx = Context { request: &request, device: Device::Cpu, emit: &|_| {} };
        let recipe = Recipe {
            optimizer: Optimizer::Sgd { momentum: 0.0, nesterov: false },
            lr: 0.1,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            epochs: 1,
            batch: 4,
            data_split: "train".to_owned(),
            val_split: None,
            keep_epochs: Vec::new(),
            precision: "fp32".to_owned(),
            channels_last: false,
        };
        let net = Network::build("resnet_tiny", 2, 4, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        train(&ctx, &net, data, &recipe, &BTreeMap::new(), None).unwrap_or_else(|e| panic!("{e}"));
        checkpoint::snapshot(&net.variables())
    }

    #[test]
    fn training_batches_are_augmented_only_when_the_dataset_asks_and_repeat_with_the_seed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let side = 8;
        // Eight images with a left-to-right ramp (class 0) or its mirror (class 1).
        let mut images = Vec::new();
        for i in 0..8u8 {
            for _ in 0..3 * side {
                images.extend((0..side).map(|x| if i % 2 == 0 { 30 * x as u8 } else { 30 * (side - 1 - x) as u8 }));
            }
        }
        let raw = RawSplit { images: data::Rows::Memory(images), labels: (0..8).map(|i| i % 2).collect(), concepts: None, masks: None };
        let meta = Meta {
            classes: 2,
            class_names: vec!["a".to_owned(), "b".to_owned()],
            class_concepts: vec![Vec::new(); 2],
            image: side,
            splits: BTreeMap::from([("train".to_owned(), 8)]),
            augment: Some(Augmentation::standard()),
            ..Meta::default()
        };
        data::save(dir.path(), &meta, &BTreeMap::from([("train", raw)])).unwrap_or_else(|e| panic!("{e}"));
        let mut data = Dataset::load(dir.path(), Device::Cpu, crate::data::Normalisation::FIXED).unwrap_or_else(|e| panic!("{e}"));
        let first = weights_after_an_epoch(&data, &dir.path().join("a"));
        let second = weights_after_an_epoch(&data, &dir.path().join("b"));
        data.meta.augment = None;
        let plain = weights_after_an_epoch(&data, &dir.path().join("c"));
        let same = |x: &BTreeMap<String, Tensor>, y: &BTreeMap<String, Tensor>| x.iter().all(|(k, v)| v.equal(&y[k]));
        assert!(same(&first, &second), "the same seed should draw the same crops");
        assert!(!same(&first, &plain), "augmentation should change what the network sees");
    }
}
