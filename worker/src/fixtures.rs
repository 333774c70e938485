//! Artifact folders for stage tests, written in the formats the real stages write, and a way to
//! run a stage on them through a [`Context`] as the worker does.

use super::models::{Network, Spec, INIT_FILE, WEIGHTS_FILE};
use super::{arrays, checkpoint, data, Context, Result};
use lthlang::check::Value;
use lthlang::exec::job::{NodeRequest, Upstream};
use lthlang::kinds::Category;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Classes and image side of [`Workspace::with_trained_network`]'s dataset.
const CLASSES: usize = 3;
const SIZE: usize = 16;

/// One split of a synthetic embed node.
pub struct EmbedSplit<'a> {
    pub name: &'a str,
    pub embeddings: &'a Array2<f64>,
    pub labels: &'a [i64],
    pub logits: Option<&'a Array2<f64>>,
}

/// A temporary cache of node folders and the upstream list a request would carry.
pub struct Workspace {
    root: tempfile::TempDir,
    pub upstream: Vec<Upstream>,
}

pub fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { root: tempfile::tempdir().expect("a temporary folder"), upstream: Vec::new() }
    }

    /// Dataset `data` (random images of three classes at 16 px: train 12, val 6, test 10), model
    /// `net` (resnet_tiny, width 8) and its checkpoint `trained`, whose weights are the network's
    /// drawn from `seed`.
    pub fn with_trained_network(seed: u64) -> Workspace {
        let mut ws = Workspace::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut splits = BTreeMap::new();
        for (name, n) in [("train", 12usize), ("val", 6), ("test", 10)] {
            let images = (0..n * 3 * SIZE * SIZE).map(|_| rng.gen::<u8>()).collect();
            let labels = (0..n).map(|i| i64::try_from(i % CLASSES).unwrap_or(0)).collect();
            splits.insert(name, data::RawSplit { images: data::Rows::Memory(images), labels, concepts: None, masks: None });
        }
        let meta = data::Meta {
            classes: CLASSES,
            class_names: vec!["circle".into(), "square".into(), "triangle".into()],
            class_concepts: vec![Vec::new(); CLASSES],
            image: SIZE,
            splits: splits.iter().map(|(k, v)| ((*k).to_owned(), v.labels.len())).collect(),
            ..data::Meta::default()
        };
        let data_dir = ws.folder("data");
        data::save(&data_dir, &meta, &splits).expect("a dataset artifact");
        ws.add("data", Category::Dataset, "shapes", BTreeMap::new(), data_dir);

        let spec = Spec { architecture: "resnet_tiny".into(), classes: 3, width: 8, ..Spec::default() };
        let net = Network::build(&spec.architecture, spec.classes, spec.width, seed, tch::Device::Cpu).expect("a network");
        let net_dir = ws.folder("net");
        std::fs::write(net_dir.join("spec.json"), serde_json::to_string(&spec).unwrap_or_default()).expect("spec.json");
        checkpoint::save(&net_dir.join(INIT_FILE), &net.variables(), &BTreeMap::new()).expect("initial weights");
        ws.add("net", Category::Model, "resnet_tiny", BTreeMap::new(), net_dir);

        let trained_dir = ws.folder("trained");
        checkpoint::save(&trained_dir.join(WEIGHTS_FILE), &net.variables(), &BTreeMap::new()).expect("trained weights");
        ws.add("trained", Category::Train, "sgd", fields(&[("model", Value::Stage("net".into()))]), trained_dir);
        ws
    }

    /// The network the `trained` checkpoint of [`Workspace::with_trained_network`] holds.
    pub fn network(&self) -> Network {
        let spec = Spec::read(&self.dir("net")).expect("the model's spec");
        spec.load(&self.dir("trained").join(WEIGHTS_FILE), tch::Device::Cpu).expect("the trained network")
    }

    /// A request (seed 11) for `stage`, writing into a fresh folder named after it; run it with
    /// [`run_request`] and hand it to [`Workspace::add_finished`] for later requests to read.
    pub fn request(&self, stage: &str, category: Category, method: &str, fields: &[(&str, Value)]) -> NodeRequest {
        NodeRequest {
            id: stage.to_owned(),
            stage: stage.to_owned(),
            category,
            method: method.to_owned(),
            round: None,
            seed: 11,
            fields: self::fields(fields),
            upstream: self.upstream.clone(),
            output: self.folder(stage),
            partial: self.folder(&format!("{stage}.partial")),
            device: "cpu".into(),
            smoke: None,
        }
    }

    /// Adds a finished node whose artifacts later requests may read.
    pub fn add_finished(&mut self, request: &NodeRequest) {
        self.add(&request.stage, request.category, &request.method, request.fields.clone(), request.output.clone());
    }

    fn folder(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("a node folder");
        dir
    }

    fn add(&mut self, stage: &str, category: Category, method: &str, fields: BTreeMap<String, Value>, dir: PathBuf) {
        self.upstream.push(Upstream {
            id: stage.to_owned(),
            stage: stage.to_owned(),
            category,
            method: method.to_owned(),
            round: None,
            fields,
            dir,
        });
    }

    /// A dataset node with concept labels; each split is (name, class labels, concepts [n, C]).
    /// Images are single black pixels: the concept stages never look at them.
    pub fn dataset(&mut self, name: &str, class_names: &[&str], concept_names: &[&str], splits: &[(&str, Vec<i64>, Array2<f64>)]) {
        let dir = self.folder(name);
        let meta = data::Meta {
            classes: class_names.len(),
            class_names: class_names.iter().map(|s| (*s).to_owned()).collect(),
            concept_names: concept_names.iter().map(|s| (*s).to_owned()).collect(),
            class_concepts: vec![Vec::new(); class_names.len()],
            image: 1,
            splits: splits.iter().map(|(s, l, _)| ((*s).to_owned(), l.len())).collect(),
            masks: false,
            skipped: 0,
            ..data::Meta::default()
        };
        let raw = splits
            .iter()
            .map(|(s, labels, concepts)| {
                let split = data::RawSplit {
                    images: data::Rows::Memory(vec![0; labels.len() * 3]),
                    labels: labels.clone(),
                    concepts: Some(concepts.iter().map(|v| *v as f32).collect()),
                    masks: None,
                };
                (*s, split)
            })
            .collect();
        data::save(&dir, &meta, &raw).expect("a dataset artifact");
        self.add(name, Category::Dataset, "synthetic", BTreeMap::new(), dir);
    }

    /// An embed node of `dataset` in the agreed format.
    pub fn embed(&mut self, name: &str, dataset: &str, splits: &[EmbedSplit]) {
        let dir = self.folder(name);
        let mut tensors = BTreeMap::new();
        for s in splits {
            tensors.insert(format!("{}.embeddings", s.name), arrays::matrix_tensor(s.embeddings).expect("embeddings"));
            tensors.insert(format!("{}.labels", s.name), arrays::labels_tensor(s.labels).expect("labels"));
            if let Some(l) = s.logits {
                tensors.insert(format!("{}.logits", s.name), arrays::matrix_tensor(l).expect("logits"));
            }
        }
        checkpoint::save(&dir.join(super::concepts::EMBEDDINGS_FILE), &tensors, &BTreeMap::new()).expect("an embeddings artifact");
        self.add(name, Category::Embed, "pooled", fields(&[("data", Value::Stage(dataset.to_owned()))]), dir);
    }

    /// Runs `category method` as node `stage` with these fields and seed; on success the node
    /// joins the upstream list, so later stages can read it.
    pub fn run(
        &mut self,
        stage: &str,
        category: Category,
        method: &str,
        fields: BTreeMap<String, Value>,
        seed: u64,
    ) -> Result<serde_json::Value> {
        let mut request = self.request(stage, category, method, &[]);
        request.fields = fields;
        request.seed = seed;
        let metrics = run_request(&request)?;
        self.add_finished(&request);
        Ok(metrics)
    }

    pub fn dir(&self, stage: &str) -> PathBuf {
        self.root.path().join(stage)
    }
}

/// Runs a stage through the registry, as the worker does.
pub fn run_request(request: &NodeRequest) -> Result<serde_json::Value> {
    run_collecting(request).0
}

/// [`run_request`], also returning the events the stage emitted.
pub fn run_collecting(request: &NodeRequest) -> (Result<serde_json::Value>, Vec<lthlang::exec::job::Event>) {
    let events = std::cell::RefCell::new(Vec::new());
    let emit = |e| events.borrow_mut().push(e);
    let result = super::run(&Context { request, device: tch::Device::Cpu, emit: &emit });
    (result, events.into_inner())
}

/// A synthetic world for the concept stages: embeddings uniform in [-1, 1]^8; four concepts,
/// concept c present when e·u_c > 0 for hidden directions u_c; three classes, the class being
/// the largest of e·u_0, e·u_1, e·u_2 (concept 3 does not matter); and a model whose logits are
/// those three projections plus a shortcut through the irrelevant concept: ½e·u_3 is added to
/// class 0's logit. The model is linear in the concept directions, so a concept bank that
/// recovers them can reproduce its every prediction, mistakes included.
pub struct World {
    pub hidden: Array2<f64>,
    pub splits: Vec<WorldSplit>,
}

pub struct WorldSplit {
    pub name: &'static str,
    pub embeddings: Array2<f64>,
    pub labels: Vec<i64>,
    pub concepts: Array2<f64>,
    pub logits: Array2<f64>,
}

impl World {
    pub fn new(seed: u64) -> World {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let hidden = Array2::from_shape_fn((4, 8), |_| rng.gen_range(-1.0..1.0));
        let splits = [("train", 400), ("val", 150), ("test", 150)]
            .into_iter()
            .map(|(name, n)| {
                let embeddings = Array2::from_shape_fn((n, 8), |_| rng.gen_range(-1.0..1.0));
                let projections = embeddings.dot(&hidden.t());
                let concepts = projections.mapv(|p| if p > 0.0 { 1.0 } else { 0.0 });
                let class_scores = projections.slice(ndarray::s![.., 0..3]).to_owned();
                let labels: Vec<i64> = lthlang::solvers::elastic_net::argmax_rows(&class_scores).into_iter().map(|k| k as i64).collect();
                let mut logits = class_scores;
                let shortcut = projections.column(3).to_owned();
                logits.column_mut(0).scaled_add(0.5, &shortcut);
                WorldSplit { name, embeddings, labels, concepts, logits }
            })
            .collect();
        World { hidden, splits }
    }

    /// Writes the dataset node `data` and the embed node `embed` of this world.
    pub fn write(&self, workspace: &mut Workspace) {
        let dataset: Vec<(&str, Vec<i64>, Array2<f64>)> =
            self.splits.iter().map(|s| (s.name, s.labels.clone(), s.concepts.clone())).collect();
        workspace.dataset("data", &["alpha", "beta", "gamma"], &["c0", "c1", "c2", "c3"], &dataset);
        let embed: Vec<EmbedSplit> = self
            .splits
            .iter()
            .map(|s| EmbedSplit { name: s.name, embeddings: &s.embeddings, labels: &s.labels, logits: Some(&s.logits) })
            .collect();
        workspace.embed("embed", "data", &embed);
    }
}
