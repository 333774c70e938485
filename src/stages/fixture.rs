//! Upstream artifacts on disk for stage tests: a small random dataset, a model stage holding
//! `spec.json`, and a train stage holding weights only, as the real stages lay them out.

use super::data::{self, Meta, RawSplit};
use super::models::{Network, Spec, INIT_FILE, WEIGHTS_FILE};
use super::{checkpoint, Context};
use lthlang::check::Value;
use lthlang::exec::job::{Event, NodeRequest, Upstream};
use lthlang::kinds::Category;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const CLASSES: usize = 3;
pub const SIZE: usize = 16;

pub struct Fixture {
    pub root: tempfile::TempDir,
    pub upstream: Vec<Upstream>,
}

fn upstream(stage: &str, category: Category, method: &str, fields: BTreeMap<String, Value>, dir: PathBuf) -> Upstream {
    Upstream { id: stage.to_owned(), stage: stage.to_owned(), category, method: method.to_owned(), round: None, fields, dir }
}

impl Fixture {
    /// Dataset `data` (train 12, val 6, test 10 images), model `net` (resnet_tiny, width 8) and
    /// its trained checkpoint `trained`, whose weights are the network's drawn from `seed`.
    pub fn new(seed: u64) -> Fixture {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = |name: &str| {
            let d = root.path().join(name);
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
            d
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut splits = BTreeMap::new();
        for (name, n) in [("train", 12usize), ("val", 6), ("test", 10)] {
            let images = (0..n * 3 * SIZE * SIZE).map(|_| rng.gen::<u8>()).collect();
            let labels = (0..n).map(|i| i64::try_from(i % CLASSES).unwrap_or(0)).collect();
            splits.insert(name, RawSplit { images, labels, concepts: None, masks: None });
        }
        let meta = Meta {
            classes: CLASSES,
            class_names: vec!["circle".into(), "square".into(), "triangle".into()],
            concept_names: Vec::new(),
            class_concepts: vec![Vec::new(); CLASSES],
            image: SIZE,
            splits: splits.iter().map(|(k, v)| ((*k).to_owned(), v.labels.len())).collect(),
            masks: false,
            skipped: 0,
            ..Meta::default()
        };
        let data_dir = dir("data");
        data::save(&data_dir, &meta, &splits).unwrap_or_else(|e| panic!("{e}"));

        let spec = Spec { architecture: "resnet_tiny".into(), classes: 3, width: 8, ..Spec::default() };
        let net_dir = dir("net");
        let net = Network::build(&spec.architecture, spec.classes, spec.width, seed, tch::Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(net_dir.join("spec.json"), serde_json::to_string(&spec).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        checkpoint::save(&net_dir.join(INIT_FILE), &net.variables(), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let trained_dir = dir("trained");
        checkpoint::save(&trained_dir.join(WEIGHTS_FILE), &net.variables(), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));

        let upstream = vec![
            upstream("data", Category::Dataset, "shapes", BTreeMap::new(), data_dir),
            upstream("net", Category::Model, "resnet_tiny", BTreeMap::new(), net_dir),
            upstream("trained", Category::Train, "sgd", BTreeMap::from([("model".to_owned(), Value::Stage("net".into()))]), trained_dir),
        ];
        Fixture { root, upstream }
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The network the `trained` checkpoint holds.
    pub fn network(&self) -> Network {
        let spec = Spec::read(&self.dir("net")).unwrap_or_else(|e| panic!("{e}"));
        spec.load(&self.dir("trained").join(WEIGHTS_FILE), tch::Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A request for `stage` writing into a fresh folder named after it.
    pub fn request(&self, stage: &str, category: Category, method: &str, fields: &[(&str, Value)]) -> NodeRequest {
        let output = self.root.path().join(stage);
        std::fs::create_dir_all(&output).unwrap_or_else(|e| panic!("{e}"));
        NodeRequest {
            id: stage.to_owned(),
            stage: stage.to_owned(),
            category,
            method: method.to_owned(),
            round: None,
            seed: 11,
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            upstream: self.upstream.clone(),
            output,
            partial: self.root.path().join(format!("{stage}.partial")),
            device: "cpu".into(),
        }
    }

    /// Adds a finished node whose artifacts later requests may read.
    pub fn add(&mut self, request: &NodeRequest) {
        self.upstream.push(upstream(&request.stage, request.category, &request.method, request.fields.clone(), request.output.clone()));
    }
}

/// Runs a stage through the registry, as the worker does.
pub fn run(request: &NodeRequest) -> super::Result<serde_json::Value> {
    let emit = |_: Event| {};
    super::run(&Context { request, device: tch::Device::Cpu, emit: &emit })
}
