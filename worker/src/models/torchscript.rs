//! `model torchscript`: any network scripted with PyTorch (`torch.jit.script(m).save(path)`).
//!
//! # Calling convention
//!
//! The scripted module must provide two methods:
//!
//! ```python
//! def forward(self, x: Tensor) -> Tensor:
//!     # x: [batch, 3, height, width], normalised as lthlang's datasets are
//!     return logits  # [batch, classes]
//!
//! @torch.jit.export
//! def forward_with(self, x: Tensor, layer: str) -> Tuple[Tensor, Tensor]:
//!     # the same logits, and the output of the layer named `layer`
//!     return logits, activation
//! ```
//!
//! `layer` is always one of the names the experiment lists in the model's `layers` field; the
//! activation must be computed from `x` inside the same call (not detached), because the
//! explainers differentiate the logits with respect to it. Spatial layers return
//! `[batch, channels, h, w]`.
//!
//! # Parameters, training and pruning
//!
//! The module's parameters (libtorch's `named_parameters`, recursively) become the network's
//! variables under their PyTorch names (`features.0.weight`), sharing storage with the module, so
//! training updates them in place and checkpoints, masks and rewinding work as for the built-in
//! architectures. The initial weights are the scripted file's: the node's seed does not redraw
//! them (it still drives dropout and data order). Prunable tensors are, as for the built-ins, the
//! 4-d and 2-d `weight`s; the output layer (left out when `prune_output = false`) is the last of
//! them in the module's registration order.
//!
//! # Buffers
//!
//! libtorch's C interface that tch wraps enumerates parameters only, so a module with buffers
//! (batch norm's running statistics) must also export them, with their names:
//!
//! ```python
//! @torch.jit.export
//! def buffers_by_name(self) -> Dict[str, Tensor]:
//!     found: Dict[str, Tensor] = {}
//!     for module_name, module in self.named_modules():
//!         for name, buffer in module.named_buffers():
//!             found[module_name + "." + name if module_name != "" else name] = buffer
//!     return found
//! ```
//!
//! (In TorchScript `named_buffers()` lists a module's own buffers only, hence the loop.) The
//! tensors returned are the module's own, so they join the network's variables as
//! non-trainable ones, like the built-in architectures' batch-norm statistics: checkpoints hold
//! them, rewinding restores them bit for bit, and later stages see the trained statistics.
//! Without the method a module is taken to have no buffers. That is exact for modules whose
//! state is all parameters; a module with batch norm and no `buffers_by_name` trains with the
//! statistics it updates in memory, but checkpoints and rewinds leave them out, and a later stage
//! that reloads its weights gets the statistics the scripted file holds.

use super::Capture;
use crate::{Result, StageError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{nn, CModule, IValue, Tensor};

pub struct TorchScript {
    /// `CModule::f_set_train` needs `&mut`; the forward pass takes `&self`.
    module: Mutex<CModule>,
    file: PathBuf,
    layers: Vec<String>,
    classes: i64,
    /// The output layer's weight: the last prunable tensor the module registers.
    pub output: Option<String>,
}

/// The module's buffers by name, from its `buffers_by_name` method; none when it has no such
/// method.
fn buffers(module: &CModule, file: &Path) -> Result<Vec<(String, Tensor)>> {
    let no_arguments: &[IValue] = &[];
    let returned = match module.method_is("buffers_by_name", no_arguments) {
        Ok(returned) => returned,
        Err(e) if e.to_string().contains("buffers_by_name") && e.to_string().contains("not defined") => return Ok(Vec::new()),
        Err(e) => return Err(StageError::new(format!("{}: buffers_by_name() failed: {e}", file.display()))),
    };
    let wrong = || StageError::new(format!("{}: buffers_by_name() should return Dict[str, Tensor]", file.display()));
    let IValue::GenericDict(entries) = returned else { return Err(wrong()) };
    let mut found = Vec::with_capacity(entries.len());
    for (name, tensor) in entries {
        let (IValue::String(name), IValue::Tensor(tensor)) = (name, tensor) else { return Err(wrong()) };
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err(StageError::new(format!("{}: buffer name `{name}` has an empty part", file.display())));
        }
        found.push((name, tensor));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

impl TorchScript {
    /// Loads the scripted module in `file` and registers its parameters (and the buffers it
    /// exports) under `root`, by name.
    pub fn load(file: &Path, root: &nn::Path<'_>, classes: i64, layers: Vec<String>) -> Result<TorchScript> {
        let module = CModule::load_on_device(file, root.device())
            .map_err(|e| StageError::new(format!("{} is not a loadable TorchScript module: {e}", file.display())))?;
        let mut output = None;
        for (name, tensor) in module.named_parameters()? {
            let mut parts: Vec<&str> = name.split('.').collect();
            let leaf = parts.pop().unwrap_or_default();
            if leaf.is_empty() || parts.iter().any(|p| p.is_empty()) {
                return Err(StageError::new(format!("{}: parameter name `{name}` has an empty part", file.display())));
            }
            let path = parts.iter().fold(root.clone(), |p, part| p.sub(*part));
            if leaf == "weight" && matches!(tensor.dim(), 2 | 4) {
                output = Some(name.clone());
            }
            let trainable = tensor.requires_grad();
            // The store keeps the module's own tensor (same storage), not a copy.
            let _ = path.add(leaf, tensor, trainable);
        }
        for (name, tensor) in buffers(&module, file)? {
            let (parent, leaf) = name.rsplit_once('.').map_or(("", name.as_str()), |(p, l)| (p, l));
            let path = parent.split('.').filter(|p| !p.is_empty()).fold(root.clone(), |p, part| p.sub(part));
            let _ = path.add(leaf, tensor, false);
        }
        Ok(TorchScript { module: Mutex::new(module), file: file.to_owned(), layers, classes, output })
    }

    #[cfg_attr(not(test), allow(dead_code, reason = "the tests read the exposed layers back"))]
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    fn with_mode<T>(&self, train: bool, run: impl FnOnce(&CModule) -> std::result::Result<T, tch::TchError>) -> Result<T> {
        let mut module =
            self.module.lock().map_err(|_| StageError::new(format!("{}: an earlier forward pass failed midway", self.file.display())))?;
        if train {
            module.f_set_train()?;
        } else {
            module.f_set_eval()?;
        }
        run(&module).map_err(|e| StageError::new(format!("{}: {e}", self.file.display())))
    }

    fn check_logits(&self, logits: &Tensor, x: &Tensor) -> Result<()> {
        let expected = [x.size().first().copied().unwrap_or(0), self.classes];
        if logits.size() != expected {
            return Err(StageError::new(format!(
                "{}: forward returned logits of shape {:?}, the model declares {:?} ([batch, classes])",
                self.file.display(),
                logits.size(),
                expected
            )));
        }
        Ok(())
    }

    /// `forward(x)`, or `forward_with(x, layer)` when `capture` wants a layer.
    pub fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let Some(layer) = capture.wanted().map(str::to_owned) else {
            let logits = self.with_mode(train, |m| m.forward_ts(&[x]))?;
            self.check_logits(&logits, x)?;
            return Ok(logits);
        };
        if !self.layers.contains(&layer) {
            return Err(StageError::new(format!("{} exposes the layers {:?}, not `{layer}`", self.file.display(), self.layers)));
        }
        let inputs = [IValue::Tensor(x.shallow_clone()), IValue::String(layer.clone())];
        let returned = self.with_mode(train, |m| m.method_is("forward_with", &inputs)).map_err(|e| {
            StageError::new(format!("{e}\n(a torchscript model must define `forward_with(self, x: Tensor, layer: str) -> Tuple[Tensor, Tensor]` returning the logits and the layer's activation)"))
        })?;
        let (logits, activation) = <(Tensor, Tensor)>::try_from(returned).map_err(|e| {
            StageError::new(format!("{}: forward_with(x, \"{layer}\") should return (logits, activation): {e}", self.file.display()))
        })?;
        self.check_logits(&logits, x)?;
        capture.offer(&layer, &activation);
        Ok(logits)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{Network, Spec};
    use tch::{Device, Kind, Tensor};

    /// Scripts two small modules with the project venv's torch and records python's outputs on
    /// a fixed input, the independent reference for what the worker computes from the files.
    const SCRIPT: &str = r#"
import json, sys, torch, torch.nn as nn
from typing import Dict, Tuple
torch.manual_seed(0)

class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, 3)

    def forward_with(self, x: torch.Tensor, layer: str) -> Tuple[torch.Tensor, torch.Tensor]:
        found = x
        for name, module in self.features.named_children():
            x = module(x)
            if "features." + name == layer:
                found = x
        logits = self.fc(x.mean([2, 3]))
        if layer == "fc":
            found = logits
        return logits, found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with(x, "")[0]

class NoCapture(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean([2, 3]))

class WithNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean([2, 3]))

    @torch.jit.export
    def buffers_by_name(self) -> Dict[str, torch.Tensor]:
        found: Dict[str, torch.Tensor] = {}
        for module_name, module in self.named_modules():
            for name, buffer in module.named_buffers():
                found[module_name + "." + name if module_name != "" else name] = buffer
        return found

folder = sys.argv[1]
torch.jit.script(WithNorm()).save(folder + "/with_norm.pt")
small = Small().eval()
torch.jit.script(small).save(folder + "/small.pt")
torch.jit.script(NoCapture()).save(folder + "/no_capture.pt")
x = torch.sin(0.1 * torch.arange(3 * 8 * 8, dtype=torch.float64)).reshape(1, 3, 8, 8).float()
with torch.no_grad():
    logits, activation = small.forward_with(x, "features.1")
print(json.dumps({"logits": logits.flatten().tolist(), "activation_shape": list(activation.shape), "activation_sum": activation.sum().item()}))
"#;

    pub struct Scripted {
        pub dir: tempfile::TempDir,
        pub logits: Vec<f64>,
        activation_shape: Vec<i64>,
        activation_sum: f64,
    }

    fn python() -> std::path::PathBuf {
        std::env::var_os("VIRTUAL_ENV").map_or_else(|| "python3".into(), |venv| std::path::Path::new(&venv).join("bin").join("python"))
    }

    pub fn scripted() -> Scripted {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // TorchScript reads the classes' source, so the script must be a file.
        let script = dir.path().join("make_modules.py");
        std::fs::write(&script, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
        let run = std::process::Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python().display()));
        assert!(run.status.success(), "python failed: {}", String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        let json: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        let numbers = |key: &str| {
            json[key].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect::<Vec<_>>()).unwrap_or_default()
        };
        Scripted {
            logits: numbers("logits"),
            activation_shape: numbers("activation_shape").into_iter().map(|d| d as i64).collect(),
            activation_sum: json["activation_sum"].as_f64().unwrap_or(f64::NAN),
            dir,
        }
    }

    fn load(file: &std::path::Path, classes: i64) -> crate::Result<Network> {
        let spec = Spec {
            architecture: "torchscript".into(),
            classes,
            module: Some(file.to_owned()),
            layers: vec!["features.1".into(), "features.3".into(), "fc".into()],
            ..Spec::default()
        };
        Network::from_spec(&spec, 0, Device::Cpu)
    }

    fn input() -> Tensor {
        (Tensor::arange(3 * 8 * 8, (Kind::Double, Device::Cpu)) * 0.1).sin().reshape([1, 3, 8, 8]).to_kind(Kind::Float)
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1).to_kind(Kind::Double)).unwrap_or_default()
    }

    #[test]
    fn torchscript_model_follows_the_calling_convention() {
        let reference = scripted();
        let net = load(&reference.dir.path().join("small.pt"), 3).unwrap_or_else(|e| panic!("{e}"));
        let _guard = tch::no_grad_guard();
        let x = input();
        let logits = net.forward(&x, false).unwrap_or_else(|e| panic!("{e}"));
        let (with_logits, activation) = net.forward_with(&x, false, "features.1").unwrap_or_else(|e| panic!("{e}"));
        for (got, expected) in values(&logits).iter().zip(&reference.logits) {
            assert!((got - expected).abs() < 1e-5, "{:?} vs python {:?}", values(&logits), reference.logits);
        }
        assert_eq!(values(&with_logits), values(&logits));
        assert_eq!(activation.size(), reference.activation_shape);
        assert!((activation.sum(Kind::Double).double_value(&[]) - reference.activation_sum).abs() < 1e-4);
        assert_eq!(net.layer_names(), ["features.1", "features.3", "fc"]);
        let undeclared = net.forward_with(&x, false, "features.0").err().map(|e| e.0).unwrap_or_default();
        assert!(undeclared.contains("not `features.0`"), "{undeclared}");
    }

    #[test]
    fn torchscript_parameters_are_the_modules_own_under_pytorch_names() {
        let reference = scripted();
        let net = load(&reference.dir.path().join("small.pt"), 3).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = net.variables().into_keys().collect();
        assert_eq!(names, ["fc.bias", "fc.weight", "features.0.bias", "features.0.weight", "features.2.bias", "features.2.weight"]);
        assert_eq!(net.prunable(true), ["fc.weight", "features.0.weight", "features.2.weight"]);
        assert_eq!(net.prunable(false), ["features.0.weight", "features.2.weight"]);

        // Gradients reach every parameter, so the training loop can update them.
        let x = input();
        let (_, loss) = net.training_loss(&x, &Tensor::from_slice(&[2i64])).unwrap_or_else(|e| panic!("{e}"));
        loss.backward();
        for (name, var) in net.variables() {
            assert!(var.grad().defined(), "{name} has no gradient");
        }
        assert!(net.variables()["features.0.weight"].grad().abs().sum(Kind::Double).double_value(&[]) > 0.0);

        // Writing through the variables (as masks and rewinding do) changes the module itself:
        // with the head's weight zeroed the logits are its bias.
        {
            let _guard = tch::no_grad_guard();
            let _ = net.variables()["fc.weight"].shallow_clone().zero_();
        }
        let logits = net.forward(&x, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(values(&logits), values(&net.variables()["fc.bias"]));
    }

    #[test]
    fn torchscript_misuse_is_reported() {
        let reference = scripted();
        let x = input();
        let wrong_classes = load(&reference.dir.path().join("small.pt"), 5).unwrap_or_else(|e| panic!("{e}"));
        let message = wrong_classes.forward(&x, false).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("[1, 3]") && message.contains("[1, 5]"), "{message}");

        let no_capture = load(&reference.dir.path().join("no_capture.pt"), 3).unwrap_or_else(|e| panic!("{e}"));
        assert!(no_capture.forward(&x, false).is_ok());
        let message = no_capture.forward_with(&x, false, "fc").err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("forward_with(self, x: Tensor, layer: str)"), "{message}");

        let missing = load(&reference.dir.path().join("absent.pt"), 3).err().map(|e| e.0).unwrap_or_default();
        assert!(missing.contains("absent.pt"), "{missing}");
    }

    #[test]
    fn exported_buffers_are_checkpointed_and_rewound_with_the_weights() {
        use crate::checkpoint;
        let reference = scripted();
        let file = reference.dir.path().join("with_norm.pt");
        let spec = Spec { architecture: "torchscript".into(), classes: 3, module: Some(file.clone()), ..Spec::default() };
        let net = Network::from_spec(&spec, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let variables = net.variables();
        let names: Vec<&str> = variables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bn.bias",
                "bn.num_batches_tracked",
                "bn.running_mean",
                "bn.running_var",
                "bn.weight",
                "conv.bias",
                "conv.weight",
                "fc.bias",
                "fc.weight"
            ]
        );
        assert!(!variables["bn.running_mean"].requires_grad(), "buffers are not trained");
        assert_eq!(net.vs.trainable_variables().len(), 6);

        let x = input();
        let eval = |net: &Network| values(&tch::no_grad(|| net.forward(&x, false)).unwrap_or_else(|e| panic!("{e}")));
        let initial = checkpoint::snapshot(&variables);
        let before = eval(&net);
        // A training pass updates the running statistics inside the module; the variables see it.
        let batch = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
        let _ = net.training_loss(&batch, &Tensor::from_slice(&[0i64, 1, 2, 0])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(variables["bn.num_batches_tracked"].int64_value(&[]), 1);
        assert!(!variables["bn.running_mean"].equal(&initial["bn.running_mean"]));
        let trained = eval(&net);
        assert_ne!(trained, before, "new running statistics change the eval-mode output");

        // A checkpoint carries the statistics to a fresh copy of the module.
        let saved = reference.dir.path().join("trained.safetensors");
        checkpoint::save(&saved, &variables, &std::collections::BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let reloaded = spec.load(&saved, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval(&reloaded), trained);

        // Rewinding restores them bit for bit.
        checkpoint::restore(&variables, &initial, &saved).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval(&net), before);
        assert_eq!(variables["bn.num_batches_tracked"].int64_value(&[]), 0);
    }
}
