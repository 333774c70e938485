//! Inputs as pretrained weights expect them (issue 12): a torchvision ResNet-18 saved with random
//! weights and loaded by `weights = file(...)` reads images normalised with ImageNet's mean and
//! deviation, applied by the project (the checker resolves `normalize = auto` to `imagenet`), and
//! gives torchvision's logits for the same PNG files to 1e-4. The checker's resolution of the
//! `auto` defaults is checked on its own below.
//!
//! The Python side runs in the project's environment (`source scripts/env.sh`), which holds torch
//! and torchvision (scripts/setup-python-refs.sh). It has no `safetensors` package, so the script
//! writes and reads the format itself: an 8-byte little-endian header length, a JSON header,
//! then the raw little-endian tensors.

use safetensors::SafeTensors;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = r#"
import json, struct, sys
from pathlib import Path

import numpy as np
import torch, torchvision
from PIL import Image, ImageDraw
from torchvision.transforms import functional as F

DTYPES = {torch.float32: "F32", torch.int64: "I64"}

def save(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, t in sorted(tensors.items()):
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))

def load(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header, body = json.loads(raw[8:8 + n]), raw[8 + n:]
    kinds = {v: k for k, v in DTYPES.items()}
    return {
        name: torch.frombuffer(bytearray(body[info["data_offsets"][0]:info["data_offsets"][1]]), dtype=kinds[info["dtype"]]).reshape(info["shape"])
        for name, info in header.items() if name != "__metadata__"
    }

def picture(path, seed):
    # A 64 x 64 scene: a colour gradient with an ellipse and a bar, different for every seed.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 63.0
    a, b, c = rng.uniform(0.2, 1.0, 3)
    pixels = np.stack([a * x, b * y, c * (1 - x) * y + 0.1], axis=-1)
    image = Image.fromarray((pixels * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    x0, y0 = rng.integers(4, 30, 2)
    draw.ellipse([int(x0), int(y0), int(x0) + 24, int(y0) + 18], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw.rectangle([5, int(y0) + 20, 58, int(y0) + 26], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)

def resnet18(state=None):
    model = torchvision.models.resnet18(num_classes=2)
    if state is not None:
        # tch keeps no `num_batches_tracked` counters; eval mode does not read them.
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(m.endswith("num_batches_tracked") for m in missing), (missing, unexpected)
    return model.eval()

command, folder = sys.argv[1], Path(sys.argv[2])
if command == "make":
    torch.manual_seed(0)
    model = resnet18()
    with torch.no_grad():
        # Batch-norm statistics away from 0 and 1, so evaluation mode has work to do.
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    save(model.state_dict(), folder / "resnet18.safetensors")
    for i, name in enumerate(["train/a/0.png", "train/a/1.png", "train/b/2.png", "train/b/3.png", "val/a/4.png", "val/b/5.png", "test/a/6.png", "test/b/7.png"]):
        picture(folder / "pictures" / name, i)
else:
    model = resnet18(load(sys.argv[3]))
    images = [F.to_tensor(Image.open(p).convert("RGB")) for p in sys.argv[4:]]
    def logits(mean, std):
        with torch.no_grad():
            return model(torch.stack([F.normalize(t, mean, std) for t in images])).tolist()
    print(json.dumps({"imagenet": logits([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "fixed": logits([0.5] * 3, [0.25] * 3)}))
"#;

const PROGRAM: &str = r#"dataset pictures = image_folder { root = "pictures"  image = 64  augment = false }
model net = resnet18 { classes = pictures.classes  weights = file("resnet18.safetensors") }
train dense = sgd { model = net  data = pictures.train  epochs = 1  batch = 4  lr = 0.000000001  momentum = 0 }
embed logits = pooled { of = dense  layer = "fc"  data = pictures }
"#;

fn python() -> String {
    let env = std::env::var("VIRTUAL_ENV")
        .or_else(|_| std::env::var("LTHLANG_TORCH_ENV"))
        .expect("no Python environment: run the tests through scripts/test.sh, or `source scripts/env.sh` first (it installs torchvision)");
    format!("{env}/bin/python")
}

fn script(dir: &Path, args: &[&Path]) -> String {
    let file = dir.join("reference.py");
    std::fs::write(&file, SCRIPT).unwrap();
    let output = Command::new(python()).arg(&file).args(args).output().unwrap_or_else(|e| panic!("cannot start {}: {e}", python()));
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn lthlang(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .args(args)
        .arg(dir.join("pretrained.lth"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .env_remove("LTHLANG_CACHE")
        .env_remove("LTHLANG_WORKER")
        .env_remove("LTHLANG_WORKER_TIMEOUT")
        .output()
        .unwrap()
}

/// The cache folder of node `id`.
fn entry(dir: &Path, id: &str) -> PathBuf {
    let output = lthlang(dir, &["plan", "--explain", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let nodes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let key = nodes.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node `{id}`"))["key"].as_str().unwrap().to_owned();
    dir.join("cache/entries").join(key)
}

/// A float32 tensor of a safetensors file, as rows of f64.
fn rows(path: &Path, name: &str) -> Vec<Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(name).unwrap();
    let width = view.shape()[1];
    let values: Vec<f64> = view.data().chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
    values.chunks(width).map(<[f64]>::to_vec).collect()
}

fn numbers(value: &Value) -> Vec<Vec<f64>> {
    value.as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect()
}

fn largest_gap(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!((a.len(), a[0].len()), (b.len(), b[0].len()));
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f64::max)
}

#[test]
fn a_torchvision_resnet18_loaded_from_a_file_reads_imagenet_normalised_images_and_gives_torchvisions_logits() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    script(dir, &[Path::new("make"), dir]);
    std::fs::write(dir.join("pretrained.lth"), PROGRAM).unwrap();
    let run = lthlang(dir, &["run"]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));

    // The test split's rows are its class folders in order: a/6.png, then b/7.png.
    let ours = rows(&entry(dir, "logits").join("embeddings.safetensors"), "test.logits");
    // torchvision on the weights the train node stored (one epoch at lr 1e-9 leaves the weights
    // as saved, but batch norm's running statistics move), fed the same PNG files.
    let trained = entry(dir, "dense").join("model.safetensors");
    let pictures = dir.join("pictures/test");
    let (a, b) = (pictures.join("a/6.png"), pictures.join("b/7.png"));
    let reference: Value =
        serde_json::from_str(script(dir, &[Path::new("logits"), dir, &trained, &a, &b]).lines().last().unwrap_or_default()).unwrap();
    let (imagenet, fixed) = (numbers(&reference["imagenet"]), numbers(&reference["fixed"]));
    let gap = largest_gap(&ours, &imagenet);
    assert!(gap <= 1e-4, "ours {ours:?}, torchvision with ImageNet normalisation {imagenet:?} (gap {gap:e})");
    // The comparison can tell the scales apart: the former fixed scale gives other logits.
    let apart = largest_gap(&fixed, &imagenet);
    assert!(apart > 1e-2, "the two normalisations give logits within {apart:e}: the test could not fail");
}

/// `auto` resolves in the checker: ImageNet statistics for a torchvision architecture with
/// `weights`, the fixed scale otherwise; `transform_input` follows `weights`; written values win.
#[test]
fn the_checker_resolves_auto_normalisation_from_the_architecture_and_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.safetensors"), b"").unwrap();
    let program = r#"dataset data = shapes { classes = 4  image = 80 }
model tiny_loaded = resnet_tiny { classes = data.classes  weights = file("w.safetensors") }
model r18_loaded = resnet18 { classes = data.classes  weights = file("w.safetensors") }
model r18_fresh = resnet18 { classes = data.classes }
model r50_dataset = resnet50 { classes = data.classes  weights = file("w.safetensors")  normalize = dataset }
model inc_loaded = inception_v3 { classes = data.classes  weights = file("w.safetensors") }
model inc_fresh = inception_v3 { classes = data.classes }
model inc_off = inception_v3 { classes = data.classes  weights = file("w.safetensors")  transform_input = false  normalize = fixed }
model inc_on = inception_v3 { classes = data.classes  transform_input = true }
"#;
    let file = dir.path().join("auto.lth");
    std::fs::write(&file, program).unwrap();
    let mut sources = lthlang::source::Sources::default();
    let (_, checked) = lthlang::check::check_path(&mut sources, &file).unwrap();
    let program = checked.program.unwrap_or_else(|| panic!("{:?}", checked.diagnostics));
    let value = |stage: &str, field: &str| program.stage(stage).and_then(|s| s.value(field)).cloned();
    let word = |w: &str| Some(lthlang::check::Value::Word(w.to_owned()));
    let boolean = |b: bool| Some(lthlang::check::Value::Bool(b));
    assert_eq!(value("tiny_loaded", "normalize"), word("fixed"));
    assert_eq!(value("r18_loaded", "normalize"), word("imagenet"));
    assert_eq!(value("r18_fresh", "normalize"), word("fixed"));
    assert_eq!(value("r50_dataset", "normalize"), word("dataset"));
    assert_eq!((value("inc_loaded", "normalize"), value("inc_loaded", "transform_input")), (word("imagenet"), boolean(true)));
    assert_eq!((value("inc_fresh", "normalize"), value("inc_fresh", "transform_input")), (word("fixed"), boolean(false)));
    assert_eq!((value("inc_off", "normalize"), value("inc_off", "transform_input")), (word("fixed"), boolean(false)));
    assert_eq!(value("inc_on", "transform_input"), boolean(true));
}
