//! `weights = file("x.pth")`: torchvision state dicts as `torch.save` writes them, loaded through
//! an experiment file and the `lthlang` binary, give torchvision's own logits.
//!
//! The project's Python environment (scripts/env.sh; torchvision comes from
//! scripts/setup-python-refs.sh) builds a ResNet-50 and an Inception-v3 with random weights and
//! random batch-norm statistics, saves their state dicts with `torch.save` (ResNet-50 in the zip
//! layout of PyTorch 1.6 and later, as torchvision's current files are; Inception-v3 in the legacy
//! layout older files use), and later computes each model's logits on the dataset's stored images.
//! The run embeds every split with each model as loaded (`embed pooled { of = model }`), and the
//! logits it stores must match torchvision's to 1e-4. Without the environment the test fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> String {
    let env = std::env::var("VIRTUAL_ENV")
        .or_else(|_| std::env::var("LTHLANG_TORCH_ENV"))
        .expect("this test needs the project's Python environment with torchvision: run it after `source scripts/env.sh`");
    format!("{env}/bin/python")
}

fn python_run(script: &str, args: &[&Path]) -> String {
    let output =
        Command::new(python()).arg("-c").arg(script).args(args).output().unwrap_or_else(|e| panic!("cannot start {}: {e}", python()));
    assert!(output.status.success(), "python failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const CLASSES: usize = 4;

/// Writes `resnet50.pth` (zip layout) and `inception_v3.pth` (legacy layout) into argv[1].
const MAKE_WEIGHTS: &str = r#"
import sys, torch, torchvision
torch.manual_seed(11)
def randomise(model):
    # Fresh initialisation leaves batch norm at identity; random statistics and affine
    # parameters make a wrong eps, order or momentum handling show in the logits.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.normal_(0, 0.1)
                m.num_batches_tracked.fill_(1234)
    return model.eval()
out = sys.argv[1]
resnet = randomise(torchvision.models.resnet50(num_classes=4))
torch.save(resnet.state_dict(), f"{out}/resnet50.pth")
inception = randomise(torchvision.models.inception_v3(num_classes=4, aux_logits=True, init_weights=True))
torch.save(inception.state_dict(), f"{out}/inception_v3.pth", _use_new_zipfile_serialization=False)
"#;

/// Prints torchvision's logits, as JSON `{model: {split: [[...]]}}`, for the images of the
/// dataset entry argv[2] (read from its row files), prepared as torchvision prepares inputs for
/// its pretrained weights: ImageNet's mean and deviation (what `normalize = auto` resolves to for
/// a model that loads `weights`), and Inception-v3 with `transform_input=True` (what
/// `transform_input = auto` resolves to).
const REFERENCE_LOGITS: &str = r#"
import json, struct, sys, torch, torchvision
weights, data = sys.argv[1], sys.argv[2]
def images(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    info = json.loads(raw[8:8 + n])["images"]
    assert info["dtype"] == "U8", info
    start, end = info["data_offsets"]
    x = torch.frombuffer(bytearray(raw[8 + n + start:8 + n + end]), dtype=torch.uint8).reshape(info["shape"])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x.float() / 255 - mean) / std
models = {
    "resnet50": torchvision.models.resnet50(num_classes=4),
    "inception_v3": torchvision.models.inception_v3(num_classes=4, aux_logits=True, init_weights=False, transform_input=True),
}
out = {}
for name, model in models.items():
    model.load_state_dict(torch.load(f"{weights}/{name}.pth", weights_only=True))
    model.eval()
    with torch.no_grad():
        out[name] = {s: model(images(f"{data}/{s}.images.safetensors")).double().tolist() for s in ["train", "val", "test"]}
print(json.dumps(out))
"#;

const EXPERIMENT: &str = r#"// torchvision weights as distributed (torch.save), embedded untrained.
dataset data = shapes { classes = 4  train = 10  val = 10  test = 10  image = 80  seed = 5 }
model r50 = resnet50 { classes = data.classes  weights = file("resnet50.pth") }
model inc = inception_v3 { classes = data.classes  weights = file("inception_v3.pth") }
embed r50_feats = pooled { of = r50  layer = "layer4"  data = data }
embed inc_feats = pooled { of = inc  layer = "Mixed_7c"  data = data }
"#;

fn lthlang(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .args(args)
        .arg(dir.join("weights.lth"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .env_remove("LTHLANG_CACHE")
        .env_remove("LTHLANG_WORKER")
        .output()
        .unwrap()
}

/// Cache entry folder of each node, from `plan --explain --json`.
fn entries(dir: &Path) -> BTreeMap<String, PathBuf> {
    let output = lthlang(dir, &["plan", "--explain", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    nodes.iter().map(|n| (n["id"].as_str().unwrap().to_owned(), dir.join("cache/entries").join(n["key"].as_str().unwrap()))).collect()
}

/// `{split}.logits` of an embeddings file, as rows.
fn stored_logits(path: &Path, split: &str) -> Vec<Vec<f64>> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(&format!("{split}.logits")).unwrap();
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    let values: Vec<f64> = view.data().chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
    values.chunks(view.shape()[1]).map(<[f64]>::to_vec).collect()
}

#[test]
fn torchvision_pth_files_load_and_give_torchvisions_logits() {
    let dir = tempfile::tempdir().unwrap();
    python_run(MAKE_WEIGHTS, &[dir.path()]);
    std::fs::write(dir.path().join("weights.lth"), EXPERIMENT).unwrap();
    let output = lthlang(dir.path(), &["run", "--colour", "never"]);
    assert!(output.status.success(), "run failed:\n{}", String::from_utf8_lossy(&output.stderr));

    let entries = entries(dir.path());
    let reference: serde_json::Value = serde_json::from_str(&python_run(REFERENCE_LOGITS, &[dir.path(), &entries["data"]])).unwrap();
    for (model, embed) in [("resnet50", "r50_feats"), ("inception_v3", "inc_feats")] {
        let file = entries[embed].join("embeddings.safetensors");
        for split in ["train", "val", "test"] {
            let got = stored_logits(&file, split);
            let expected: Vec<Vec<f64>> = serde_json::from_value(reference[model][split].clone()).unwrap();
            assert_eq!(got.len(), 10, "{model} {split}");
            assert_eq!(got.len(), expected.len(), "{model} {split}");
            for (g, e) in got.iter().flatten().zip(expected.iter().flatten()) {
                assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{model} {split}: got {got:?}, torchvision {expected:?}");
            }
            assert_eq!(got[0].len(), CLASSES);
        }
    }
    // The model stages say what the files held beyond the model: batch counters, and
    // Inception's auxiliary classifier (the model is built without it).
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/weights/metrics.json")).unwrap()).unwrap();
    let text = metrics.to_string();
    assert!(text.contains("inception_v3.pth") && text.contains("resnet50.pth"), "{text}");
}

#[test]
fn a_corrupt_pth_fails_its_node_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    python_run(MAKE_WEIGHTS, &[dir.path()]);
    // Cut the zip archive short: its directory, at the end, is gone.
    let path = dir.path().join("resnet50.pth");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let experiment = r#"dataset data = shapes { classes = 4  train = 10  val = 10  test = 10  image = 64 }
model r50 = resnet50 { classes = data.classes  weights = file("resnet50.pth") }
embed r50_feats = pooled { of = r50  layer = "layer4"  data = data }
"#;
    std::fs::write(dir.path().join("weights.lth"), experiment).unwrap();
    let output = lthlang(dir.path(), &["run", "--colour", "never"]);
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("resnet50.pth is not a readable PyTorch state dict (torch.save)"), "{stderr}");
}
