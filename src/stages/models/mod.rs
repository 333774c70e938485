//! Built-in architectures behind one type, [`Network`], that owns its variables and can return
//! the activation of any named layer beside the logits.

mod resnet;

use crate::stages::StageError;
use lthlang::kinds::layers;
use std::collections::BTreeMap;
use tch::{nn, Device, Tensor};

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
}

enum Architecture {
    ResNet(resnet::ResNet),
}

pub struct Network {
    pub vs: nn::VarStore,
    pub name: String,
    pub classes: i64,
    architecture: Architecture,
}

impl Network {
    /// Builds `architecture` with fresh weights drawn from `seed`.
    pub fn build(architecture: &str, classes: i64, width: i64, seed: u64, device: Device) -> Result<Network, StageError> {
        tch::manual_seed(i64::from_le_bytes(seed.to_le_bytes()));
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let variant = match architecture {
            "resnet_tiny" => resnet::Variant::Tiny { width },
            "resnet18" => resnet::Variant::R18,
            "resnet50" => resnet::Variant::R50,
            other => return Err(StageError::new(format!("architecture `{other}` is not available in this build of the worker"))),
        };
        let net = resnet::ResNet::new(&root, variant, classes);
        Ok(Network { vs, name: architecture.to_owned(), classes, architecture: Architecture::ResNet(net) })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut capture = Capture::none();
        self.forward_capture(x, train, &mut capture)
    }

    pub fn forward_capture(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Tensor {
        match &self.architecture {
            Architecture::ResNet(net) => net.forward(x, train, capture),
        }
    }

    /// Logits and the activation of `layer`, which must be one of the architecture's layers.
    pub fn forward_with(&self, x: &Tensor, train: bool, layer: &str) -> Result<(Tensor, Tensor), StageError> {
        let mut capture = Capture::layer(layer);
        let logits = self.forward_capture(x, train, &mut capture);
        let activation = capture.found.ok_or_else(|| StageError::new(format!("`{}` has no layer `{layer}`", self.name)))?;
        Ok((logits, activation))
    }

    /// Variables by name, in sorted order (the order every loop over them uses).
    pub fn variables(&self) -> BTreeMap<String, Tensor> {
        self.vs.variables().into_iter().collect()
    }

    /// The prunable parameters: weights of convolutions and linear layers (4-d and 2-d `weight`s).
    pub fn prunable(&self, include_output: bool) -> Vec<String> {
        self.variables()
            .into_iter()
            .filter(|(name, t)| name.ends_with(".weight") && (t.dim() == 4 || t.dim() == 2))
            .filter(|(name, _)| include_output || name != "fc.weight")
            .map(|(name, _)| name)
            .collect()
    }

    pub fn layer_names(&self) -> Vec<String> {
        layers::builtin(&self.name).unwrap_or_default().into_iter().map(|l| l.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn tiny() -> Network {
        Network::build("resnet_tiny", 8, 8, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_layer_the_checker_knows_is_captured_by_the_worker() {
        for arch in ["resnet_tiny", "resnet18"] {
            let net = Network::build(arch, 5, 8, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
            let size = if arch == "resnet_tiny" { 16 } else { 64 };
            let x = Tensor::randn([1, 3, size, size], (Kind::Float, Device::Cpu));
            for layer in net.layer_names() {
                assert!(net.forward_with(&x, false, &layer).is_ok(), "{arch}: layer `{layer}` not captured");
            }
        }
    }

    #[test]
    fn parameter_names_follow_torchvision() {
        let net = Network::build("resnet18", 10, 0, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let names = net.variables();
        for expected in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias"] {
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
}

/// File names inside model, train and prune artifacts.
pub const INIT_FILE: &str = "init.safetensors";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// How to rebuild a network from a model stage's fields.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub architecture: String,
    pub classes: i64,
    pub width: i64,
}

impl Spec {
    pub fn read(dir: &std::path::Path) -> crate::stages::Result<Spec> {
        let path = dir.join("spec.json");
        let text = std::fs::read_to_string(&path).map_err(|e| crate::stages::io_error(&path, &e))?;
        serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", path.display())))
    }

    /// A network with this spec's architecture, holding the weights stored in `file`.
    pub fn load(&self, file: &std::path::Path, device: Device) -> crate::stages::Result<Network> {
        let net = Network::build(&self.architecture, self.classes, self.width, 0, device)?;
        let stored = crate::stages::checkpoint::load(file)?;
        crate::stages::checkpoint::restore(&net.variables(), &stored, file)?;
        Ok(net)
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

/// `model` stage: draws the initial weights from the node's seed (or loads `weights`) and stores
/// them; every rewind to `init` returns to exactly these values.
pub fn init_stage(ctx: &crate::stages::Context) -> crate::stages::Result<serde_json::Value> {
    use lthlang::check::Value;
    let classes = match ctx.field("classes")? {
        Value::Int(n) => *n,
        Value::ClassesOf { dataset } => {
            let dir = &ctx.upstream(dataset)?.dir;
            let meta_path = dir.join("meta.json");
            let text = std::fs::read_to_string(&meta_path).map_err(|e| crate::stages::io_error(&meta_path, &e))?;
            let meta: crate::stages::data::Meta = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))?;
            i64::try_from(meta.classes).unwrap_or(0)
        }
        other => return Err(StageError::new(format!("`classes` should be a count, got {other:?}"))),
    };
    let width = if ctx.request.method == "resnet_tiny" { ctx.int("width")? } else { 0 };
    let spec = Spec { architecture: ctx.request.method.clone(), classes, width };
    let net = Network::build(&spec.architecture, classes, width, ctx.request.seed, tch::Device::Cpu)?;
    if let Ok(Value::Path(weights)) = ctx.field("weights") {
        let stored = crate::stages::checkpoint::load(weights)?;
        crate::stages::checkpoint::restore(&net.variables(), &stored, weights)?;
    }
    crate::stages::checkpoint::save(&ctx.request.output.join(INIT_FILE), &net.variables(), &spec.metadata(&ctx.request.stage))?;
    let path = ctx.request.output.join("spec.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap_or_default()).map_err(|e| crate::stages::io_error(&path, &e))?;
    let parameters: usize = net.vs.trainable_variables().iter().map(Tensor::numel).sum();
    Ok(serde_json::json!({ "architecture": spec.architecture, "classes": classes, "parameters": parameters }))
}
