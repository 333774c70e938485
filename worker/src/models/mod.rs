//! Every architecture behind one type, [`Network`], that owns its variables and can return the
//! activation of any named layer beside the logits: the ResNet family and Inception-v3 with
//! torchvision's names, and scripted PyTorch modules (`torchscript`). A `weights` file loads
//! through [`Pretrained`].

mod fallible;
mod inception;
mod pretrained;
#[cfg(test)]
mod reference_tests;
mod resnet;
mod torchscript;

pub use pretrained::Pretrained;

use crate::data::Normalisation;
use crate::StageError;
use lthlang::kinds::layers;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::{nn, Device, Kind, Tensor};

/// Collects the output of the one layer asked for during a forward pass.
pub struct Capture<'a> {
    wanted: Option<&'a str>,
    pub found: Option<Tensor>,
}

impl<'a> Capture<'a> {
    pub fn none() -> Self {
        Capture { wanted: None, found: None }
    }

    pub fn layer(name: &'a str) -> Self {
        Capture { wanted: Some(name), found: None }
    }

    /// Keeps `t` if it is the wanted layer. A layer offered twice (a block's shared ReLU) keeps the
    /// last offer, the module's final output, as a PyTorch hook would.
    pub fn offer(&mut self, name: &str, t: &Tensor) {
        if self.wanted == Some(name) {
            self.found = Some(t.shallow_clone());
        }
    }

    /// The layer asked for, if any (for architectures that compute a layer only on demand).
    pub fn wanted(&self) -> Option<&str> {
        self.wanted
    }
}

enum Architecture {
    ResNet(Box<resnet::ResNet>),
    Inception(Box<inception::Inception>),
    TorchScript(Box<torchscript::TorchScript>),
}

pub struct Network {
    pub vs: nn::VarStore,
    pub name: String,
    #[allow(dead_code, reason = "describes the network for a reader or debugger; no stage needs it")]
    pub classes: i64,
    architecture: Architecture,
}

/// Mean cross-entropy of `logits` against class indices.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor, StageError> {
    Ok(logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(labels, None::<Tensor>, tch::Reduction::Mean, -100)?)
}

impl Network {
    /// Builds a built-in `architecture` with its default options and fresh weights from `seed`.
    #[cfg_attr(not(test), allow(dead_code, reason = "tests and benches build networks directly; stages go through specs"))]
    pub fn build(architecture: &str, classes: i64, width: i64, seed: u64, device: Device) -> Result<Network, StageError> {
        Network::from_spec(&Spec { architecture: architecture.to_owned(), classes, width, ..Spec::default() }, seed, device)
    }

    /// Builds the network `spec` describes; built-in architectures draw fresh weights from `seed`.
    pub fn from_spec(spec: &Spec, seed: u64, device: Device) -> Result<Network, StageError> {
        tch::manual_seed(i64::from_le_bytes(seed.to_le_bytes()));
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let classes = spec.classes;
        let resnet = |variant| Architecture::ResNet(Box::new(resnet::ResNet::new(&root, variant, classes)));
        let architecture = match spec.architecture.as_str() {
            "resnet_tiny" => resnet(resnet::Variant::Tiny { width: spec.width }),
            "resnet18" => resnet(resnet::Variant::R18),
            "resnet50" => resnet(resnet::Variant::R50),
            "inception_v3" => {
                Architecture::Inception(Box::new(inception::Inception::new(&root, classes, spec.aux_logits, spec.transform_input)))
            }
            "torchscript" => {
                let file = spec.module.as_deref().ok_or_else(|| StageError::new("a torchscript spec without its module file"))?;
                Architecture::TorchScript(Box::new(torchscript::TorchScript::load(file, &root, classes, spec.layers.clone())?))
            }
            other => return Err(StageError::new(format!("architecture `{other}` is not available in this build of the worker"))),
        };
        Ok(Network { vs, name: spec.architecture.clone(), classes, architecture })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, StageError> {
        let mut capture = Capture::none();
        self.forward_capture(x, train, &mut capture)
    }

    pub fn forward_capture(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor, StageError> {
        match &self.architecture {
            Architecture::ResNet(net) => net.forward(x, train, capture),
            Architecture::Inception(net) => Ok(net.forward(x, train, capture)?.logits),
            Architecture::TorchScript(net) => net.forward(x, train, capture),
        }
    }

    /// Logits and the activation of `layer`, which must be one of the architecture's layers.
    pub fn forward_with(&self, x: &Tensor, train: bool, layer: &str) -> Result<(Tensor, Tensor), StageError> {
        let mut capture = Capture::layer(layer);
        let logits = self.forward_capture(x, train, &mut capture)?;
        let activation = capture.found.ok_or_else(|| StageError::new(format!("`{}` has no layer `{layer}`", self.name)))?;
        Ok((logits, activation))
    }

    /// The training objective on one batch, computed in training mode, and the batch's logits.
    /// It is the mean cross-entropy, plus [`inception::AUX_LOSS_WEIGHT`] times the auxiliary
    /// classifier's cross-entropy for Inception-v3 built with `aux_logits`.
    pub fn training_loss(&self, x: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor), StageError> {
        if let Architecture::Inception(net) = &self.architecture {
            let outputs = net.forward(x, true, &mut Capture::none())?;
            let mut loss = cross_entropy(&outputs.logits, labels)?;
            if let Some(aux) = &outputs.aux {
                loss = loss.f_add(&cross_entropy(aux, labels)?.f_mul_scalar(inception::AUX_LOSS_WEIGHT)?)?;
            }
            return Ok((outputs.logits, loss));
        }
        let logits = self.forward(x, true)?;
        let loss = cross_entropy(&logits, labels)?;
        Ok((logits, loss))
    }

    /// Variables by name, in sorted order (the order every loop over them uses).
    pub fn variables(&self) -> BTreeMap<String, Tensor> {
        self.vs.variables().into_iter().collect()
    }

    /// The weights of the classifier heads (what `prune_output = false` leaves dense).
    fn outputs(&self) -> Vec<String> {
        match &self.architecture {
            Architecture::ResNet(_) => vec!["fc.weight".to_owned()],
            Architecture::Inception(net) if net.has_aux() => vec!["fc.weight".to_owned(), "AuxLogits.fc.weight".to_owned()],
            Architecture::Inception(_) => vec!["fc.weight".to_owned()],
            Architecture::TorchScript(net) => net.output.iter().cloned().collect(),
        }
    }

    /// Whether a training batch of one image at `side` px would give some BatchNorm layer a single
    /// value per channel (its smallest map is 1 × 1), which PyTorch refuses and which makes the
    /// running variance NaN. False for TorchScript modules, whose layers are not known here.
    pub fn single_image_batch_breaks_batch_norm(&self, side: i64) -> bool {
        let aux = matches!(&self.architecture, Architecture::Inception(net) if net.has_aux());
        lthlang::kinds::model::smallest_normalised_side(&self.name, side, aux) == Some(1)
    }

    /// Whether `name` is a weight or bias of a classifier head, whose first dimension is the
    /// number of classes.
    pub fn is_head(&self, name: &str) -> bool {
        self.outputs()
            .iter()
            .any(|weight| name == weight || weight.strip_suffix(".weight").is_some_and(|layer| name.strip_suffix(".bias") == Some(layer)))
    }

    /// Whether a tensor named `name` belongs to a part of the PyTorch original this network was
    /// built without on purpose (Inception-v3's auxiliary classifier when `aux_logits = false`).
    pub fn omits(&self, name: &str) -> bool {
        matches!(&self.architecture, Architecture::Inception(net) if !net.has_aux() && name.starts_with("AuxLogits."))
    }

    /// The prunable parameters: weights of convolutions and linear layers (4-d and 2-d `weight`s).
    pub fn prunable(&self, include_output: bool) -> Vec<String> {
        let outputs = self.outputs();
        self.variables()
            .into_iter()
            .filter(|(name, t)| name.ends_with(".weight") && (t.dim() == 4 || t.dim() == 2))
            .filter(|(name, _)| include_output || !outputs.contains(name))
            .map(|(name, _)| name)
            .collect()
    }

    #[cfg_attr(not(test), allow(dead_code, reason = "the tests check every layer the checker knows is captured"))]
    pub fn layer_names(&self) -> Vec<String> {
        match &self.architecture {
            Architecture::TorchScript(net) => net.layers().to_vec(),
            Architecture::Inception(net) => {
                let table = layers::builtin(&self.name).unwrap_or_default().into_iter().map(|l| l.name);
                table.filter(|name| net.has_aux() || name != "AuxLogits").collect()
            }
            Architecture::ResNet(_) => layers::builtin(&self.name).unwrap_or_default().into_iter().map(|l| l.name).collect(),
        }
    }
}

/// File names inside model, train and prune artifacts.
pub const INIT_FILE: &str = "init.safetensors";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// A torchscript model's scripted module, copied into the model's folder so later stages do not
/// depend on the original file staying unchanged.
pub const MODULE_FILE: &str = "module.pt";

/// How to rebuild a network from a model stage's fields.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub architecture: String,
    pub classes: i64,
    pub width: i64,
    /// inception_v3: whether the auxiliary classifier exists (it has parameters of its own).
    #[serde(default)]
    pub aux_logits: bool,
    /// torchscript: the scripted module. Stored relative to the model's folder (which the front
    /// end moves into its cache); [`Spec::read`] makes it a full path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// torchscript: the layers `forward_with` can return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// How image bytes become this network's input (`normalize`); specs written before the
    /// field existed had `fixed`.
    #[serde(default)]
    pub normalize: Normalize,
    /// inception_v3: torchvision's `transform_input` (the input is taken as ImageNet-normalised
    /// and mapped to (x - 0.5) / 0.5 inside the network).
    #[serde(default)]
    pub transform_input: bool,
}

/// The `normalize` choices after the checker resolved `auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    #[default]
    Fixed,
    Imagenet,
    Dataset,
}

impl Normalize {
    fn parse(word: &str) -> crate::Result<Normalize> {
        match word {
            "fixed" => Ok(Normalize::Fixed),
            "imagenet" => Ok(Normalize::Imagenet),
            "dataset" => Ok(Normalize::Dataset),
            other => Err(StageError::new(format!("`normalize` should be `imagenet`, `dataset` or `fixed`, got `{other}`"))),
        }
    }
}

impl Spec {
    pub fn read(dir: &std::path::Path) -> crate::Result<Spec> {
        let path = dir.join("spec.json");
        let text = std::fs::read_to_string(&path).map_err(|e| crate::io_error(&path, &e))?;
        let spec: Spec = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", path.display())))?;
        Ok(spec.located_in(dir))
    }

    /// This spec with a relative module file taken as relative to `dir`.
    fn located_in(mut self, dir: &std::path::Path) -> Spec {
        if let Some(module) = &mut self.module {
            if module.is_relative() {
                *module = dir.join(&*module);
            }
        }
        self
    }

    /// A network with this spec's architecture, holding the weights stored in `file`.
    pub fn load(&self, file: &std::path::Path, device: Device) -> crate::Result<Network> {
        let net = Network::from_spec(self, 0, device)?;
        let stored = crate::checkpoint::load(file)?;
        crate::checkpoint::restore(&net.variables(), &stored, file)?;
        Ok(net)
    }

    /// The numbers this spec's inputs are normalised with. `trained_on` is the folder of the
    /// dataset the network is trained on, whose training split gives `normalize = dataset` its
    /// statistics (so a network reads every dataset, its probe sets too, on its own scale).
    pub fn normalisation(&self, trained_on: Option<&std::path::Path>) -> crate::Result<Normalisation> {
        match self.normalize {
            Normalize::Fixed => Ok(Normalisation::FIXED),
            Normalize::Imagenet => Ok(Normalisation::IMAGENET),
            Normalize::Dataset => {
                let dir = trained_on.ok_or_else(|| {
                    StageError::new("`normalize = dataset` needs the dataset the model is trained on, and none was found upstream")
                })?;
                crate::data::channel_statistics(dir)
            }
        }
    }

    pub fn metadata(&self, stage: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("format".to_owned(), "lthlang-checkpoint-1".to_owned()),
            ("architecture".to_owned(), self.architecture.clone()),
            ("classes".to_owned(), self.classes.to_string()),
            ("stage".to_owned(), stage.to_owned()),
        ])
    }
}

/// The network held by the checkpoint stage `stage` (a train node, or this node's round of a
/// ticket series), in eval-ready form on the context's device.
///
/// Train and prune folders hold weights only; the architecture is in the `spec.json` of the model
/// stage they descend from, found by following `from` (prune) and `model` (train) upstream.
///
/// Beside the network comes the normalisation its inputs need: its model's `normalize`, with the
/// statistics of the dataset the nearest train stage upstream trained it on for `dataset`.
pub fn network_of(ctx: &crate::Context, stage: &str) -> crate::Result<(Network, Normalisation)> {
    let node = ctx.upstream(stage)?;
    // A model stage read directly (`embed pooled { of = net }`) holds its weights as built.
    let file = if node.category == lthlang::kinds::Category::Model { INIT_FILE } else { WEIGHTS_FILE };
    let weights = node.dir.join(file);
    let mut current = node;
    let mut trained_on = None;
    for _ in 0..8 {
        if trained_on.is_none() && current.category == lthlang::kinds::Category::Train {
            if let Some(lthlang::check::Value::Split { dataset, .. }) = current.fields.get("data") {
                trained_on = ctx.request.upstream_of(dataset, None).map(|u| u.dir.clone());
            }
        }
        if current.dir.join("spec.json").is_file() {
            let spec = Spec::read(&current.dir)?;
            let input = spec.normalisation(trained_on.as_deref())?;
            return Ok((spec.load(&weights, ctx.device)?, input));
        }
        let parent = match current.category {
            lthlang::kinds::Category::Train => current.fields.get("model"),
            lthlang::kinds::Category::Prune => current.fields.get("from"),
            _ => None,
        };
        let Some(lthlang::check::Value::Stage(parent)) = parent else { break };
        current = ctx
            .request
            .upstream_of(parent, None)
            .ok_or_else(|| StageError::new(format!("`{}` reads `{stage}`, whose model `{parent}` was not provided", ctx.request.stage)))?;
    }
    Err(StageError::new(format!("no model specification (spec.json) found upstream of `{stage}` ({})", node.dir.display())))
}

/// The class count a `classes` field gives: a number, or `data.classes` read from the dataset.
fn classes(ctx: &crate::Context) -> crate::Result<i64> {
    use lthlang::check::Value;
    match ctx.field("classes")? {
        Value::Int(n) => Ok(*n),
        Value::ClassesOf { dataset } => {
            let dir = &ctx.upstream(dataset)?.dir;
            let meta_path = dir.join("meta.json");
            let text = std::fs::read_to_string(&meta_path).map_err(|e| crate::io_error(&meta_path, &e))?;
            let meta: crate::data::Meta =
                serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))?;
            Ok(i64::try_from(meta.classes).unwrap_or(0))
        }
        other => Err(StageError::new(format!("`classes` should be a count, got {other:?}"))),
    }
}

/// The spec a model stage's fields describe. For torchscript, copies the module into `output`.
fn spec_of(ctx: &crate::Context) -> crate::Result<Spec> {
    use lthlang::check::Value;
    let method = ctx.request.method.as_str();
    let mut spec = Spec { architecture: method.to_owned(), classes: classes(ctx)?, ..Spec::default() };
    spec.normalize = Normalize::parse(ctx.word("normalize")?)?;
    match method {
        "resnet_tiny" => spec.width = ctx.int("width")?,
        "inception_v3" => {
            spec.aux_logits = ctx.boolean("aux_logits")?;
            spec.transform_input = ctx.boolean("transform_input")?;
        }
        "torchscript" => {
            let Value::Path(source) = ctx.field("path")? else {
                return Err(StageError::new("`path` should be the scripted module's file"));
            };
            let copy = ctx.request.output.join(MODULE_FILE);
            std::fs::copy(source, &copy).map_err(|e| crate::io_error(source, &e))?;
            spec.module = Some(PathBuf::from(MODULE_FILE));
            spec.layers = match ctx.field("layers")? {
                Value::List(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::Str(name) | Value::Word(name) => Ok(name.clone()),
                        other => Err(StageError::new(format!("`layers` should hold layer names, got {other:?}"))),
                    })
                    .collect::<crate::Result<_>>()?,
                other => return Err(StageError::new(format!("`layers` should be a list of layer names, got {other:?}"))),
            };
        }
        _ => {}
    }
    Ok(spec)
}

/// `model` stage: draws the initial weights from the node's seed (or loads `weights`, see
/// [`Pretrained`]; a torchscript module brings its own) and stores them; every rewind to `init`
/// returns to exactly these values.
pub fn init_stage(ctx: &crate::Context) -> crate::Result<serde_json::Value> {
    use lthlang::check::Value;
    let spec = spec_of(ctx)?;
    let net = Network::from_spec(&spec.clone().located_in(&ctx.request.output), ctx.request.seed, tch::Device::Cpu)?;
    let mut metrics = serde_json::json!({ "architecture": spec.architecture, "classes": spec.classes });
    if let Ok(Value::Path(weights)) = ctx.field("weights") {
        let loaded = Pretrained::load(&net, weights)?;
        if !loaded.reinitialised.is_empty() {
            ctx.progress(format!(
                "{}: the classifier head has another number of classes; {} keep weights drawn from the seed",
                weights.display(),
                loaded.reinitialised.join(", ")
            ));
        }
        metrics["weights"] = serde_json::json!({ "file": weights, "reinitialised": loaded.reinitialised, "skipped": loaded.skipped.len() });
    }
    crate::checkpoint::save(&ctx.request.output.join(INIT_FILE), &net.variables(), &spec.metadata(&ctx.request.stage))?;
    let path = ctx.request.output.join("spec.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap_or_default()).map_err(|e| crate::io_error(&path, &e))?;
    let parameters: usize = net.vs.trainable_variables().iter().map(Tensor::numel).sum();
    metrics["parameters"] = serde_json::json!(parameters);
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lthlang::check::Value;
    use lthlang::exec::job::NodeRequest;
    use lthlang::kinds::Category;

    fn tiny() -> Network {
        Network::build("resnet_tiny", 8, 8, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_layer_the_checker_knows_is_captured_by_the_worker() {
        let specs = [
            (Spec { architecture: "resnet_tiny".into(), classes: 5, width: 8, ..Spec::default() }, 16),
            (Spec { architecture: "resnet18".into(), classes: 5, ..Spec::default() }, 64),
            // Without `AuxLogits`, which needs 299 px (the reference tests capture it there).
            (Spec { architecture: "inception_v3".into(), classes: 5, ..Spec::default() }, inception::MIN_SIZE),
        ];
        for (spec, size) in specs {
            let net = Network::from_spec(&spec, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
            let table: Vec<String> =
                layers::builtin(&spec.architecture).unwrap_or_default().into_iter().map(|l| l.name).filter(|n| n != "AuxLogits").collect();
            assert_eq!(net.layer_names(), table);
            let x = Tensor::randn([1, 3, size, size], (Kind::Float, Device::Cpu));
            let _guard = tch::no_grad_guard();
            for layer in net.layer_names() {
                assert!(net.forward_with(&x, false, &layer).is_ok(), "{}: layer `{layer}` not captured", spec.architecture);
            }
        }
    }

    #[test]
    fn inception_v3_blocks_and_units_are_captured_with_their_shapes() {
        let net = Network::build("inception_v3", 4, 0, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let x = Tensor::randn([1, 3, 299, 299], (Kind::Float, Device::Cpu));
        let _guard = tch::no_grad_guard();
        // Table 1 of the paper (torchvision's comments agree): 35 x 35 x 288 after Mixed_5d,
        // 17 x 17 x 768 after Mixed_6e, 8 x 8 x 2048 after Mixed_7c.
        for (layer, shape) in [
            ("Conv2d_1a_3x3", [1, 32, 149, 149]),
            ("Conv2d_1a_3x3.bn", [1, 32, 149, 149]),
            ("Conv2d_4a_3x3", [1, 192, 71, 71]),
            ("Mixed_5d", [1, 288, 35, 35]),
            ("Mixed_6e", [1, 768, 17, 17]),
            ("Mixed_6e.branch7x7dbl_5", [1, 192, 17, 17]),
            ("Mixed_7c", [1, 2048, 8, 8]),
            ("Mixed_7c.branch3x3_2b.conv", [1, 384, 8, 8]),
        ] {
            let (logits, activation) = net.forward_with(&x, false, layer).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(activation.size(), shape, "{layer}");
            assert_eq!(logits.size(), [1, 4]);
        }
        // Built without the auxiliary classifier, it has no such layer.
        assert!(net.forward_with(&x, false, "AuxLogits").is_err());
        assert!(!net.layer_names().contains(&"AuxLogits".to_owned()));
    }

    #[test]
    fn inception_v3_gives_batch_by_classes_at_299_px_and_rejects_small_images() {
        let net = Network::build("inception_v3", 7, 0, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let x = Tensor::randn([2, 3, 299, 299], (Kind::Float, Device::Cpu));
        for train in [false, true] {
            assert_eq!(net.forward(&x, train).unwrap_or_else(|e| panic!("{e}")).size(), [2, 7]);
        }
        let small = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let message = net.forward(&small, false).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("at least 75 x 75"), "{message}");
    }

    #[test]
    fn inception_v3_training_loss_adds_the_auxiliary_loss_at_its_weight() {
        let spec = Spec { architecture: "inception_v3".into(), classes: 3, aux_logits: true, ..Spec::default() };
        let net = Network::from_spec(&spec, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let x = Tensor::randn([2, 3, inception::MIN_SIZE_AUX, inception::MIN_SIZE_AUX], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 2]);
        let _guard = tch::no_grad_guard();
        // Dropout draws from the generator other tests share; with the head's weight at zero the
        // main logits are its bias whatever the mask, and the auxiliary path has no dropout, so
        // two training passes give the same outputs.
        let variables = net.variables();
        let _ = variables["fc.weight"].shallow_clone().zero_();
        variables["fc.bias"].shallow_clone().copy_(&Tensor::from_slice(&[0.5f32, -1.0, 2.0]));
        let (_, loss) = net.training_loss(&x, &labels).unwrap_or_else(|e| panic!("{e}"));
        let (logits, aux) = net.forward_with(&x, true, "AuxLogits").unwrap_or_else(|e| panic!("{e}"));
        let ce = |t: &Tensor| cross_entropy(t, &labels).map(|l| l.double_value(&[])).unwrap_or(f64::NAN);
        // Cross-entropy of logits (0.5, -1, 2) at labels 0 and 2, by hand.
        // -log softmax(z)_0 = ln(1 + e^(z1-z0) + e^(z2-z0)), and likewise for label 2.
        let first = (1.0 + (-1.5f64).exp() + 1.5f64.exp()).ln();
        let main = (first + (1.0 + (-1.5f64).exp() + (-3.0f64).exp()).ln()) / 2.0;
        assert!((ce(&logits) - main).abs() < 1e-5);
        let expected = main + 0.4 * ce(&aux);
        assert!((loss.double_value(&[]) - expected).abs() < 1e-5, "{} vs {expected}", loss.double_value(&[]));
        assert!(ce(&aux) > 0.0);
        // A batch of one image carries no auxiliary loss (its batch norm cannot normalise it).
        let one = x.narrow(0, 0, 1);
        let (_, single) = net.training_loss(&one, &labels.narrow(0, 0, 1)).unwrap_or_else(|e| panic!("{e}"));
        assert!((single.double_value(&[]) - first).abs() < 1e-5);
    }

    #[test]
    fn parameter_names_follow_torchvision() {
        let net = Network::build("resnet18", 10, 0, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let names = net.variables();
        for expected in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer4.1.bn2.bias",
            "fc.weight",
            "fc.bias",
        ] {
            assert!(names.contains_key(expected), "missing {expected}");
        }
        // torchvision's resnet18 has 11,689,512 parameters at 1000 classes; at 10 classes the head
        // shrinks by 990 * 513.
        let trainable: i64 = net.vs.trainable_variables().iter().map(Tensor::numel).map(|n| i64::try_from(n).unwrap_or(0)).sum();
        assert_eq!(trainable, 11_689_512 - 990 * 513);
    }

    #[test]
    fn resnet50_matches_torchvision_parameter_count() {
        let net = Network::build("resnet50", 1000, 0, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let trainable: usize = net.vs.trainable_variables().iter().map(Tensor::numel).sum();
        assert_eq!(trainable, 25_557_032);
    }

    #[test]
    fn prunable_set_is_conv_and_linear_weights_only() {
        let net = tiny();
        let prunable = net.prunable(true);
        assert!(prunable.iter().all(|n| n.ends_with(".weight") && !n.contains("bn")));
        assert!(prunable.contains(&"fc.weight".to_owned()));
        assert!(!net.prunable(false).contains(&"fc.weight".to_owned()));
        assert!(prunable.contains(&"layer2.0.downsample.0.weight".to_owned()));
        assert!(!prunable.iter().any(|n| n.contains("downsample.1")));
    }

    #[test]
    fn inception_v3_keeps_both_classifier_heads_dense_on_request() {
        let spec = Spec { architecture: "inception_v3".into(), classes: 3, aux_logits: true, ..Spec::default() };
        let net = Network::from_spec(&spec, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let all = net.prunable(true);
        let body = net.prunable(false);
        // 94 convolutions in the main path, 2 in the auxiliary classifier, 2 linear heads.
        assert_eq!(all.len(), 98);
        let heads: Vec<&String> = all.iter().filter(|n| !body.contains(n)).collect();
        assert_eq!(heads, ["AuxLogits.fc.weight", "fc.weight"]);
        assert!(net.is_head("AuxLogits.fc.bias") && net.is_head("fc.bias") && !net.is_head("AuxLogits.conv1.conv.weight"));
    }

    fn request(method: &str, fields: Vec<(&str, Value)>, output: &std::path::Path) -> NodeRequest {
        NodeRequest {
            id: "n1".into(),
            stage: "net".into(),
            category: Category::Model,
            method: method.into(),
            round: None,
            seed: 3,
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            upstream: Vec::new(),
            output: output.to_owned(),
            partial: output.join("partial"),
            device: "cpu".into(),
            smoke: None,
        }
    }

    fn run(request: &NodeRequest) -> crate::Result<serde_json::Value> {
        let ctx = crate::Context { request, device: Device::Cpu, emit: &|_| {} };
        init_stage(&ctx)
    }

    #[test]
    fn model_stage_loads_weights_and_reports_a_head_it_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = Network::build("resnet_tiny", 10, 8, 1, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("pretrained.safetensors");
        crate::checkpoint::save(&file, &source.variables(), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let output = dir.path().join("out");
        std::fs::create_dir(&output).unwrap_or_else(|e| panic!("{e}"));
        let fields = vec![
            ("classes", Value::Int(4)),
            ("width", Value::Int(8)),
            ("weights", Value::Path(file.clone())),
            ("normalize", Value::Word("fixed".into())),
        ];
        let metrics = run(&request("resnet_tiny", fields, &output)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(metrics["weights"]["reinitialised"], serde_json::json!(["fc.bias", "fc.weight"]));
        let stored = crate::checkpoint::load(&output.join(INIT_FILE)).unwrap_or_else(|e| panic!("{e}"));
        assert!(stored["conv1.weight"].equal(&source.variables()["conv1.weight"]));
        assert_eq!(stored["fc.weight"].size(), [4, 32]);

        let wrong = dir.path().join("wrong");
        std::fs::create_dir(&wrong).unwrap_or_else(|e| panic!("{e}"));
        let fields = vec![
            ("classes", Value::Int(4)),
            ("width", Value::Int(16)),
            ("weights", Value::Path(file.clone())),
            ("normalize", Value::Word("fixed".into())),
        ];
        let message = run(&request("resnet_tiny", fields, &wrong)).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("pretrained.safetensors") && message.contains("shapes differ"), "{message}");
    }

    #[test]
    fn torchscript_model_stage_keeps_its_own_copy_of_the_module() {
        let scripted = torchscript::tests::scripted();
        let original = scripted.dir.path().join("small.pt");
        let output = scripted.dir.path().join("out");
        std::fs::create_dir(&output).unwrap_or_else(|e| panic!("{e}"));
        let layers = Value::List(vec![Value::Str("features.1".into()), Value::Str("fc".into())]);
        let fields = vec![
            ("path", Value::Path(original.clone())),
            ("classes", Value::Int(3)),
            ("layers", layers),
            ("normalize", Value::Word("fixed".into())),
        ];
        let metrics = run(&request("torchscript", fields, &output)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(metrics["parameters"], serde_json::json!(4 * 3 * 9 + 4 + 6 * 4 * 9 + 6 + 3 * 6 + 3));

        // The front end moves the folder into its cache, and the user may change the original.
        let cached = scripted.dir.path().join("cached");
        std::fs::rename(&output, &cached).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&original).unwrap_or_else(|e| panic!("{e}"));
        let spec = Spec::read(&cached).unwrap_or_else(|e| panic!("{e}"));
        let net = spec.load(&cached.join(INIT_FILE), Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let x = (Tensor::arange(3 * 8 * 8, (Kind::Double, Device::Cpu)) * 0.1).sin().reshape([1, 3, 8, 8]).to_kind(Kind::Float);
        let logits = Vec::<f64>::try_from(net.forward(&x, false).unwrap_or_else(|e| panic!("{e}")).flatten(0, -1).to_kind(Kind::Double))
            .unwrap_or_default();
        for (got, expected) in logits.iter().zip(&scripted.logits) {
            assert!((got - expected).abs() < 1e-5, "{logits:?} vs python {:?}", scripted.logits);
        }
        assert_eq!(net.layer_names(), ["features.1", "fc"]);
    }
}
