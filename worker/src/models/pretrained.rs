//! `weights = file("...")`: initial weights with PyTorch's names, from a `torch.save` state dict
//! (torchvision's `.pth` files as distributed, read by [`torch_file`]) or from safetensors
//! (`safetensors.torch.save_file(model.state_dict(), path)`).
//!
//! Loading is strict, so a file meant for another architecture or variant cannot half-load:
//! a tensor the model has but the file lacks, a tensor the file has but the model lacks, or a
//! shape that differs is an error naming the tensors and the file. Two kinds of extra tensors
//! are skipped: PyTorch's `*.num_batches_tracked` counters (a bookkeeping integer; tch's batch
//! norm keeps none and always uses its momentum) and tensors the architecture leaves out on
//! purpose (Inception-v3's `AuxLogits.*` when built with `aux_logits = false`).
//!
//! One shape difference is allowed: the classifier head (`fc` and `AuxLogits.fc`) may have a
//! different number of classes than the model. This is the usual fine-tuning case (ImageNet
//! weights, a 10-class dataset): those head tensors keep the values drawn from the node's seed,
//! everything else is loaded, and the stage's metrics list the head tensors that were kept.

use super::Network;
use crate::{checkpoint, torch_file, Result, StageError};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

/// What loading a weights file did beyond copying tensors.
#[derive(Debug, Default)]
pub struct Pretrained {
    /// Head tensors whose class count differed: left as drawn from the seed.
    pub reinitialised: Vec<String>,
    /// Tensors in the file the model does not have, skipped by the rules above.
    pub skipped: Vec<String>,
}

/// Every tensor of a weights file of either format.
pub fn read(file: &Path) -> Result<BTreeMap<String, Tensor>> {
    use std::io::Read;
    let mut start = [0u8; 16];
    let mut opened = std::fs::File::open(file).map_err(|e| crate::io_error(file, &e))?;
    let n = opened.read(&mut start).map_err(|e| crate::io_error(file, &e))?;
    if torch_file::is_torch_file(&start[..n]) {
        torch_file::load(file)
    } else {
        checkpoint::load(file).map_err(|e| {
            StageError::new(format!("{e} (a weights file is a torch.save state dict, such as torchvision's `.pth` files, or safetensors)"))
        })
    }
}

/// Up to five names, then how many more.
fn some(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let rest = names.len().saturating_sub(shown.len());
    if rest == 0 {
        shown.join(", ")
    } else {
        format!("{} and {rest} more", shown.join(", "))
    }
}

/// Same rank and same sizes except the first (the class dimension of a head tensor).
fn differs_in_classes_only(stored: &[i64], model: &[i64]) -> bool {
    stored.len() == model.len() && stored.first() != model.first() && stored[1..] == model[1..]
}

impl Pretrained {
    /// Loads `file` into `net`'s variables, or changes nothing and explains what does not fit.
    /// The file is a `torch.save` state dict (a `.pth` as torchvision distributes them, either
    /// layout) or safetensors, told apart by their first bytes rather than the file's name.
    pub fn load(net: &Network, file: &Path) -> Result<Pretrained> {
        let stored = read(file)?;
        Pretrained::apply(net, &stored, file)
    }

    pub fn apply(net: &Network, stored: &BTreeMap<String, Tensor>, file: &Path) -> Result<Pretrained> {
        let vars = net.variables();
        let mut outcome = Pretrained::default();
        let mut unexpected = Vec::new();
        for name in stored.keys().filter(|name| !vars.contains_key(*name)) {
            if name.ends_with(".num_batches_tracked") || net.omits(name) {
                outcome.skipped.push(name.clone());
            } else {
                unexpected.push(name.clone());
            }
        }
        let missing: Vec<String> = vars.keys().filter(|name| !stored.contains_key(*name)).cloned().collect();
        let mut mismatched = Vec::new();
        for (name, var) in &vars {
            let Some(value) = stored.get(name) else { continue };
            let (have, want) = (value.size(), var.size());
            if have == want {
                continue;
            }
            if net.is_head(name) && differs_in_classes_only(&have, &want) {
                outcome.reinitialised.push(name.clone());
            } else {
                mismatched.push(format!("`{name}` is {have:?} in the file, {want:?} in the model"));
            }
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("it lacks {} of the model's tensors: {}", missing.len(), some(&missing)));
        }
        if !unexpected.is_empty() {
            problems.push(format!("it holds {} tensors the model does not have: {}", unexpected.len(), some(&unexpected)));
        }
        if !mismatched.is_empty() {
            problems.push(format!("{} shapes differ: {}", mismatched.len(), some(&mismatched)));
        }
        if !problems.is_empty() {
            return Err(StageError::new(format!("{} does not fit `{}`: {}", file.display(), net.name, problems.join("; "))));
        }
        let _guard = tch::no_grad_guard();
        for (name, var) in &vars {
            if outcome.reinitialised.contains(name) {
                continue;
            }
            let mut var = var.shallow_clone();
            var.f_copy_(&stored[name].f_to_kind(var.kind())?)?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Spec;
    use super::*;
    use tch::{Device, Kind};

    fn net(architecture: &str, classes: i64, width: i64, aux_logits: bool, seed: u64) -> Network {
        let spec = Spec { architecture: architecture.into(), classes, width, aux_logits, ..Spec::default() };
        Network::from_spec(&spec, seed, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tiny(classes: i64, width: i64, seed: u64) -> Network {
        net("resnet_tiny", classes, width, false, seed)
    }

    fn copies(net: &Network) -> BTreeMap<String, Tensor> {
        checkpoint::snapshot(&net.variables())
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && a.equal(b)
    }

    fn error(result: Result<Pretrained>) -> String {
        result.err().map(|e| e.0).unwrap_or_else(|| "loaded".into())
    }

    #[test]
    fn a_saved_network_loads_into_another_seed_and_computes_the_same() {
        let source = tiny(4, 8, 1);
        let target = tiny(4, 8, 2);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("weights.safetensors");
        let mut tensors = copies(&source);
        // PyTorch state dicts carry batch counters; they must not count as unexpected.
        tensors.insert("bn1.num_batches_tracked".into(), Tensor::scalar_tensor(7.0, (Kind::Int64, Device::Cpu)));
        checkpoint::save(&file, &tensors, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Pretrained::load(&target, &file).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.reinitialised.is_empty());
        assert_eq!(loaded.skipped, ["bn1.num_batches_tracked"]);
        let _guard = tch::no_grad_guard();
        let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let (a, b) =
            (source.forward(&x, false).unwrap_or_else(|e| panic!("{e}")), target.forward(&x, false).unwrap_or_else(|e| panic!("{e}")));
        assert!(same(&a, &b));
    }

    #[test]
    fn missing_unexpected_and_misshapen_tensors_are_named_and_nothing_loads() {
        let target = tiny(4, 8, 2);
        let before = copies(&target);
        let path = Path::new("/data/w.safetensors");

        let mut missing = copies(&tiny(4, 8, 1));
        missing.remove("layer1.0.conv1.weight");
        let message = error(Pretrained::apply(&target, &missing, path));
        assert!(
            message.contains("/data/w.safetensors") && message.contains("lacks 1") && message.contains("layer1.0.conv1.weight"),
            "{message}"
        );

        let mut extra = copies(&tiny(4, 8, 1));
        extra.insert("layer9.conv.weight".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        let message = error(Pretrained::apply(&target, &extra, path));
        assert!(message.contains("does not have: layer9.conv.weight"), "{message}");

        // Twice the width: every convolution differs, and so does the head's input size, which
        // is not a difference in classes only.
        let wider = copies(&tiny(4, 16, 1));
        let message = error(Pretrained::apply(&target, &wider, path));
        assert!(
            message.contains("shapes differ") && message.contains("`conv1.weight` is [16, 3, 3, 3] in the file, [8, 3, 3, 3] in the model"),
            "{message}"
        );

        for (name, value) in target.variables() {
            assert!(same(&value, &before[&name]), "{name} changed by a failed load");
        }
    }

    #[test]
    fn a_head_for_another_class_count_keeps_its_seeded_values() {
        let source = copies(&tiny(10, 8, 1));
        let target = tiny(4, 8, 2);
        let seeded = copies(&target);
        let loaded = Pretrained::apply(&target, &source, Path::new("w.safetensors")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.reinitialised, ["fc.bias", "fc.weight"]);
        for (name, value) in target.variables() {
            let expected = if name.starts_with("fc.") { &seeded[&name] } else { &source[&name] };
            assert!(same(&value, expected), "{name}");
        }
    }

    #[test]
    fn inception_without_aux_skips_the_aux_classifier_and_with_aux_requires_it() {
        let with_aux = net("inception_v3", 3, 0, true, 1);
        let without = net("inception_v3", 3, 0, false, 2);
        let loaded = Pretrained::apply(&without, &copies(&with_aux), Path::new("w.safetensors")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!loaded.skipped.is_empty() && loaded.skipped.iter().all(|n| n.starts_with("AuxLogits.")), "{:?}", loaded.skipped);
        assert!(same(&without.variables()["Mixed_7c.branch_pool.conv.weight"], &with_aux.variables()["Mixed_7c.branch_pool.conv.weight"]));
        let message = error(Pretrained::apply(&with_aux, &copies(&without), Path::new("w.safetensors")));
        assert!(message.contains("lacks") && message.contains("AuxLogits."), "{message}");
    }
}
