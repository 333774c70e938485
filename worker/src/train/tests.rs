//! The training rules the published code got wrong, checked on tensors small enough to work out
//! by hand, and the rewinding and fresh-optimizer guarantees checked on a real network.

use super::*;
use crate::data::{Meta, Split};
use crate::models::Network;
use crate::precision::Precision;
use tch::Device;

fn recipe(optimizer: Optimizer, weight_decay: f64) -> Recipe {
    Recipe {
        optimizer,
        lr: 0.1,
        weight_decay,
        schedule: Schedule::Constant,
        epochs: 1,
        batch: 8,
        data_split: "train".to_owned(),
        val_split: None,
        keep_epochs: Vec::new(),
        precision: "fp32".to_owned(),
        channels_last: false,
    }
}

fn sgd(momentum: f64) -> Optimizer {
    Optimizer::Sgd { momentum, nesterov: false }
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

/// loss = Σ c·p, so ∂loss/∂p = c whatever the sign of p.
fn linear_loss_step(p: &Tensor, c: &[f32], recipe: &Recipe, mask: &Tensor, state: &mut State) {
    let params = BTreeMap::from([("w".to_owned(), p.shallow_clone())]);
    let masks = BTreeMap::from([("w".to_owned(), mask.shallow_clone())]);
    let mut g = p.grad();
    if g.defined() {
        let _ = g.zero_();
    }
    (p * Tensor::from_slice(c)).sum(Kind::Float).backward();
    step(recipe, 0.1, &params, &masks, state).unwrap();
}

#[test]
fn negative_weights_keep_their_gradients() {
    // A mask taken as `w > threshold` instead of `|w| > threshold` would freeze the negative
    // weights; here only index 2 is pruned and both negative weights move by lr·c.
    let p = Tensor::from_slice(&[-1.0f32, -0.5, 0.0, 1.0]).set_requires_grad(true);
    let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 1.0]);
    let mut state = State { buffers: BTreeMap::new(), steps: 0, scaler: None };
    linear_loss_step(&p, &[1.0, 2.0, 3.0, 4.0], &recipe(sgd(0.0), 0.0), &mask, &mut state);
    let expected = [-1.0f32 - 0.1 * 1.0, -0.5 - 0.1 * 2.0, 0.0, 1.0 - 0.1 * 4.0];
    assert_eq!(values(&p), expected);
}

#[test]
fn pruned_weights_stay_exactly_zero_with_momentum_and_weight_decay() {
    for optimizer in [sgd(0.9), Optimizer::Sgd { momentum: 0.9, nesterov: true }, Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }] {
        tch::manual_seed(7);
        let mask = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
        let p = (Tensor::randn([8], (Kind::Float, Device::Cpu)) * &mask).set_requires_grad(true);
        let start = values(&p);
        let mut state = State { buffers: BTreeMap::new(), steps: 0, scaler: None };
        let r = recipe(optimizer.clone(), 5e-4);
        for step_number in 0..25 {
            // Gradients that do not vanish on pruned weights: the mask must stop them.
            let c: Vec<f32> = (0..8).map(|i| ((i + step_number) % 5) as f32 - 2.0).collect();
            linear_loss_step(&p, &c, &r, &mask, &mut state);
            let now = values(&p);
            for i in [1usize, 3, 4, 7] {
                assert!(now[i] == 0.0, "{optimizer:?}: pruned weight {i} is {} after step {step_number}", now[i]);
            }
        }
        let end = values(&p);
        for i in [0usize, 2, 5, 6] {
            assert_ne!(start[i], end[i], "{optimizer:?}: surviving weight {i} never moved");
        }
    }
}

fn tiny_data(n: i64) -> Dataset {
    tch::manual_seed(3);
    let images = Tensor::randint(256, [n, 3, 16, 16], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(4);
    let meta = Meta {
        classes: 4,
        class_names: vec![],
        concept_names: vec![],
        class_concepts: vec![],
        image: 16,
        splits: BTreeMap::new(),
        masks: false,
        skipped: 0,
        ..Meta::default()
    };
    let split = Split::in_memory(images, labels, Device::Cpu);
    Dataset { meta, splits: BTreeMap::from([("train".to_owned(), split)]) }
}

fn request(partial: &Path) -> lthlang::exec::job::NodeRequest {
    lthlang::exec::job::NodeRequest {
        id: "t".to_owned(),
        stage: "t".to_owned(),
        category: lthlang::kinds::Category::Train,
        method: "sgd".to_owned(),
        round: None,
        seed: 11,
        fields: BTreeMap::new(),
        upstream: Vec::new(),
        output: partial.to_path_buf(),
        partial: partial.to_path_buf(),
        device: "cpu".to_owned(),
        smoke: None,
    }
}

fn equal_variables(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> Vec<String> {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter().filter(|(k, t)| !t.equal(&b[*k])).map(|(k, _)| k.clone()).collect()
}

#[test]
fn rewinding_restores_weights_biases_and_batch_norm_buffers_bit_for_bit() {
    let net = Network::build("resnet_tiny", 4, 4, 5, Device::Cpu).unwrap();
    let init = checkpoint::snapshot(&net.variables());
    assert!(init.keys().any(|k| k.ends_with("running_mean")), "batch-norm statistics are variables too");
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path());
    let emit = |_e: Event| {};
    let ctx = Context { request: &req, device: Device::Cpu, emit: &emit };
    train(&ctx, &net, &tiny_data(16), &recipe(sgd(0.9), 5e-4), &BTreeMap::new(), None).unwrap();
    let changed = equal_variables(&init, &net.variables());
    assert!(
        changed.iter().any(|k| k.ends_with("running_var")) && changed.iter().any(|k| k.ends_with("bias")),
        "training should move statistics and biases: {changed:?}"
    );
    checkpoint::restore(&net.variables(), &init, dir.path()).unwrap();
    assert_eq!(equal_variables(&init, &net.variables()), Vec::<String>::new());
}

#[test]
fn a_last_batch_of_one_image_is_left_out_where_batch_norm_maps_are_1x1() {
    // ResNet-18's layer4 is 1 × 1 at 16 px. 17 images in batches of 8 leave one image for a third
    // step; kept, it would give layer4's BatchNorm one value per channel and a NaN running variance.
    let net = Network::build("resnet18", 4, 0, 5, Device::Cpu).unwrap();
    assert!(net.single_image_batch_breaks_batch_norm(16) && !net.single_image_batch_breaks_batch_norm(64));
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path());
    let events = std::cell::RefCell::new(Vec::new());
    let emit = |e: Event| events.borrow_mut().push(e);
    let ctx = Context { request: &req, device: Device::Cpu, emit: &emit };
    train(&ctx, &net, &tiny_data(17), &recipe(sgd(0.9), 0.0), &BTreeMap::new(), None).unwrap();
    for (name, t) in net.variables() {
        assert!(t.isfinite().all().int64_value(&[]) == 1, "{name} holds non-finite values after training");
    }
    let warnings: Vec<String> =
        events.borrow().iter().filter_map(|e| if let Event::Warning { message, .. } = e { Some(message.clone()) } else { None }).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("one image") && warnings[0].contains("16 of 17 images"), "{}", warnings[0]);
    // In eval mode the network reads finite logits.
    let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
    let logits = tch::no_grad(|| net.forward(&x, false)).unwrap();
    assert!(logits.isfinite().all().int64_value(&[]) == 1);
}

#[test]
fn each_training_run_starts_a_fresh_optimizer() {
    // Train, rewind, train again (as a second prune round does): if any momentum survived the
    // first run, the second would differ from a single run on a copy of the same start.
    let data = tiny_data(16);
    let r = recipe(sgd(0.9), 0.0);
    let emit = |_e: Event| {};
    let (first, second, single) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let net = Network::build("resnet_tiny", 4, 4, 5, Device::Cpu).unwrap();
    let init = checkpoint::snapshot(&net.variables());
    for dir in [&first, &second] {
        let req = request(dir.path());
        checkpoint::restore(&net.variables(), &init, dir.path()).unwrap();
        train(&Context { request: &req, device: Device::Cpu, emit: &emit }, &net, &data, &r, &BTreeMap::new(), None).unwrap();
    }
    let copy = Network::build("resnet_tiny", 4, 4, 5, Device::Cpu).unwrap();
    let req = request(single.path());
    train(&Context { request: &req, device: Device::Cpu, emit: &emit }, &copy, &data, &r, &BTreeMap::new(), None).unwrap();
    assert_eq!(equal_variables(&copy.variables(), &net.variables()), Vec::<String>::new());
}

#[test]
fn test_scores_by_hand_on_an_imbalanced_binary_task() {
    // Labels 0, 1, 1, 1; predictions (argmax) 0, 1, 0, 1: accuracy 3/4; recall of class 0 is 1/1
    // and of class 1 is 2/3, so balanced accuracy (1 + 2/3) / 2 = 5/6. The margins z₁ − z₀ are
    // −2, 1, −1, 3: the one negative lies below every positive, so AUROC is 1 although the
    // third image is misclassified.
    let logits = Tensor::from_slice2(&[[2.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]]);
    let labels = Tensor::from_slice(&[0i64, 1, 1, 1]);
    let scores = TestScores::of(&logits, &labels).unwrap();
    assert_eq!(scores.accuracy, Some(0.75));
    assert!((scores.balanced_accuracy.unwrap() - 5.0 / 6.0).abs() < 1e-12);
    assert_eq!(scores.auroc, Some(1.0));
    // Three classes: no AUROC. All one class: no AUROC either (it needs both).
    let three = TestScores::of(&Tensor::from_slice2(&[[1.0f32, 0.0, 0.0], [0.0, 0.0, 1.0]]), &Tensor::from_slice(&[0i64, 1])).unwrap();
    assert_eq!((three.accuracy, three.balanced_accuracy, three.auroc), (Some(0.5), Some(0.5), None));
    assert_eq!(TestScores::from_predictions(&[], &[], None), TestScores::EMPTY);
    assert_eq!(TestScores::EMPTY.accuracy, None);
    let one_class = TestScores::of(&logits, &Tensor::from_slice(&[1i64, 1, 1, 1])).unwrap();
    assert_eq!(one_class.auroc, None);
    assert_eq!(one_class.balanced_accuracy, Some(0.5));
}

/// The files the partial area holds, sorted.
fn partial_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_resumed_run_matches_an_uninterrupted_one_and_best_weights_are_written_only_when_needed() {
    let mut data = tiny_data(16);
    tch::manual_seed(8);
    let val_images = Tensor::randint(256, [12, 3, 16, 16], (Kind::Uint8, Device::Cpu));
    let val_labels = Tensor::randint(4, [12], (Kind::Int64, Device::Cpu));
    data.splits.insert("val".to_owned(), Split::in_memory(val_images, val_labels, Device::Cpu));
    let mut six = recipe(sgd(0.9), 5e-4);
    six.epochs = 6;
    six.batch = 4;
    six.val_split = Some("val".to_owned());
    let epochs_trained = std::cell::Cell::new(0);
    let emit = |e: Event| {
        if matches!(e, Event::Epoch { .. }) {
            epochs_trained.set(epochs_trained.get() + 1);
        }
    };
    let run = |dir: &Path, recipe: &Recipe| {
        let net = Network::build("resnet_tiny", 4, 4, 5, Device::Cpu).unwrap();
        let req = request(dir);
        let ctx = Context { request: &req, device: Device::Cpu, emit: &emit };
        epochs_trained.set(0);
        let outcome = train(&ctx, &net, &data, recipe, &BTreeMap::new(), None).unwrap();
        (outcome, checkpoint::snapshot(&net.variables()))
    };

    let whole = tempfile::tempdir().unwrap();
    let (expected, expected_vars) = run(whole.path(), &six);
    assert_eq!(epochs_trained.get(), 6);
    // The case this test is about: the best epoch is not the last, so its weights had to be
    // kept apart from the state; with random labels validation accuracy does not keep rising.
    assert!(expected.best_epoch < 6, "validation improved every epoch; the test needs a data set where it does not");
    assert_eq!(partial_files(whole.path()), [best_file(expected.best_epoch), STATE.to_owned()]);

    // Stopped after each epoch in turn and resumed: the same history, best epoch and weights.
    for stop in 1..6u32 {
        let dir = tempfile::tempdir().unwrap();
        let mut first = six.clone();
        first.epochs = stop;
        let (partly, _) = run(dir.path(), &first);
        // One state; best weights apart only when an epoch after the best one has finished.
        let apart = partly.best_epoch != stop;
        let expected_files = if apart { vec![best_file(partly.best_epoch), STATE.to_owned()] } else { vec![STATE.to_owned()] };
        assert_eq!(partial_files(dir.path()), expected_files, "after {stop} epochs (best {})", partly.best_epoch);
        let (resumed, vars) = run(dir.path(), &six);
        assert_eq!(epochs_trained.get(), 6 - stop, "the rerun should resume after epoch {stop}, not start over");
        assert_eq!(resumed.best_epoch, expected.best_epoch, "stopped after {stop}");
        assert_eq!(format!("{:?}", resumed.history), format!("{:?}", expected.history), "stopped after {stop}");
        assert_eq!(equal_variables(&vars, &expected_vars), Vec::<String>::new(), "stopped after {stop}");
    }
}

/// Trains a fresh tiny network for three epochs in `precision` (and the memory format) and returns
/// the epoch losses and the run's resolved precision.
fn losses_in(precision: &str, channels_last: bool) -> (Vec<f64>, Precision) {
    losses_on(Device::Cpu, precision, channels_last)
}

fn losses_on(device: Device, precision: &str, channels_last: bool) -> (Vec<f64>, Precision) {
    let mut data = tiny_data(64);
    if device != Device::Cpu {
        let split = &data.splits["train"];
        let moved = Split::in_memory(split.images().to_device(Device::Cpu), split.labels.to_device(Device::Cpu), device);
        data.splits.insert("train".to_owned(), moved);
    }
    let net = Network::build("resnet_tiny", 4, 8, 5, device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let req = request(dir.path());
    let emit = |_e: Event| {};
    let mut r = recipe(sgd(0.9), 5e-4);
    r.lr = 0.05;
    r.epochs = 3;
    r.precision = precision.to_owned();
    r.channels_last = channels_last;
    let started = std::time::Instant::now();
    let outcome = train(&Context { request: &req, device, emit: &emit }, &net, &data, &r, &BTreeMap::new(), None).unwrap();
    let losses: Vec<f64> = outcome.history.iter().map(|e| e.loss).collect();
    eprintln!("{device:?} {precision} (channels_last {channels_last}): losses {losses:?} in {:.2} s", started.elapsed().as_secs_f64());
    assert!(outcome.history.iter().all(|e| e.skipped_steps == 0), "{precision}: no step should overflow at this scale");
    (losses, outcome.precision)
}

#[test]
fn bf16_and_fp16_training_on_the_cpu_follow_fp32() {
    // The same seed, data and steps in each precision: autocast rounds the convolutions' inputs
    // to 8 (bf16) or 11 (fp16) significant bits, so the losses agree to a few per cent over three
    // epochs, not bit for bit. `auto` is fp32 on the CPU.
    let (fp32, resolved) = losses_in("auto", false);
    assert_eq!(resolved, Precision::Fp32);
    assert!(fp32[2] < fp32[0], "fp32 training should lower the loss: {fp32:?}");
    for precision in ["bf16", "fp16"] {
        let (low, resolved) = losses_in(precision, false);
        assert_eq!(resolved.name(), precision);
        for (epoch, (a, b)) in fp32.iter().zip(&low).enumerate() {
            assert!((a - b).abs() <= 0.03 * a.abs(), "{precision} epoch {epoch}: loss {b} against fp32's {a}");
        }
        assert_ne!(fp32, low, "{precision} should not be fp32 under another name");
    }
    // Channels-last changes the memory layout only: the same losses to rounding.
    let (nhwc, _) = losses_in("fp32", true);
    for (a, b) in fp32.iter().zip(&nhwc) {
        assert!((a - b).abs() <= 1e-4 * a.abs(), "channels-last loss {b} against {a}");
    }
}

/// The CUDA device, loading libtorch's CUDA half first; `None` on a machine without one, and a
/// failure instead when `LTHLANG_REQUIRE_CUDA=1` (scripts/gpu-check.sh sets it).
pub(crate) fn cuda_or_skip(test: &str) -> Option<Device> {
    let loaded = crate::precision::cuda::load();
    if tch::Cuda::is_available() {
        return Some(Device::Cuda(0));
    }
    assert!(
        std::env::var("LTHLANG_REQUIRE_CUDA").as_deref() != Ok("1"),
        "{test}: LTHLANG_REQUIRE_CUDA=1 but libtorch sees no CUDA device ({loaded:?})"
    );
    eprintln!("{test}: skipped, no CUDA device");
    None
}

#[test]
fn cuda_training_in_each_precision_follows_fp32() {
    // On a GPU: `auto` resolves to bf16 where the GPU supports it, fp16 runs with the loss
    // scaler, and channels-last with bf16 (the fast path the CUB experiment uses) trains as fp32.
    let Some(device) = cuda_or_skip("cuda_training_in_each_precision_follows_fp32") else { return };
    let (fp32, _) = losses_on(device, "fp32", false);
    let (_, auto) = losses_on(device, "auto", false);
    let major = crate::precision::cuda::capability(0).map(|c| c.0).unwrap_or(0);
    assert_eq!(auto, if major >= 8 { Precision::Bf16 } else { Precision::Fp32 });
    let mut cases = vec![("fp16", false), ("fp16", true)];
    if major >= 8 {
        cases.extend([("bf16", false), ("bf16", true)]);
    }
    for (precision, channels_last) in cases {
        let (low, resolved) = losses_on(device, precision, channels_last);
        assert_eq!(resolved.name(), precision);
        for (epoch, (a, b)) in fp32.iter().zip(&low).enumerate() {
            assert!(
                (a - b).abs() <= 0.03 * a.abs(),
                "{precision} (channels_last {channels_last}) epoch {epoch}: loss {b} against fp32's {a}"
            );
        }
    }
}
