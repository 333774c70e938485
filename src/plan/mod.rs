//! Planning: checked program → graph of nodes. A stage fed by a ticket series becomes one node per
//! round; with several seeds every seeded stage is replicated per seed, while datasets (seeded by
//! their own field) are shared and comparisons and reports gather all seeds.

mod graph;
mod render;

pub use graph::Dependencies;

pub use render::{to_dot, to_mermaid, to_table};

use crate::check::{Program, Stage, Value};
use crate::kinds::Category;
use serde::Serialize;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: String,
    pub stage: String,
    pub kind: Category,
    pub method: &'static str,
    /// The pruning round for nodes of a ticket series (0 is the dense network), else null.
    pub round: Option<u32>,
    /// The replicate seed, or null for nodes shared by all seeds.
    pub seed: Option<i64>,
    /// Ids of the nodes this one reads, in a stable order.
    pub inputs: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub experiment: String,
    pub seeds: Vec<i64>,
    /// Nodes in a topological order: every node after all of its inputs.
    pub nodes: Vec<Node>,
    /// The dependency edges between `nodes`, by index: what executors and renderers walk.
    #[serde(skip)]
    pub deps: Dependencies,
}

/// How a stage's output is addressed per round: one node, or one per round of a series.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Single,
    /// Nodes for rounds `first..=last`.
    Rounds {
        first: u32,
        last: u32,
    },
}

pub fn plan(program: &Program) -> Plan {
    let order = stage_order(program);
    let multi_seed = program.experiment.seeds.len() > 1;
    let mut shapes: HashMap<&str, Shape> = HashMap::new();
    for stage in &order {
        shapes.insert(&stage.name, shape(program, stage));
    }
    let mut builder = Builder { program, shapes: &shapes, multi_seed, nodes: Vec::new() };
    for stage in &order {
        let seeds: Vec<Option<i64>> =
            if replicated(stage.category) { program.experiment.seeds.iter().copied().map(Some).collect() } else { vec![None] };
        for seed in seeds {
            builder.expand(stage, seed);
        }
    }
    let deps = Dependencies::of(&builder.nodes);
    debug_assert!(deps.is_acyclic(), "the planner built a cycle");
    Plan { experiment: program.experiment.name.clone(), seeds: program.experiment.seeds.clone(), nodes: builder.nodes, deps }
}

/// Datasets draw from their own `seed` field; comparisons and reports gather every seed.
fn replicated(category: Category) -> bool {
    !matches!(category, Category::Dataset | Category::Compare | Category::Report)
}

fn rounds_of(prune: &Stage) -> u32 {
    prune.value("rounds").and_then(Value::as_int).and_then(|r| u32::try_from(r).ok()).unwrap_or(0)
}

fn shape(program: &Program, stage: &Stage) -> Shape {
    if stage.category == Category::Prune {
        return Shape::Rounds { first: 1, last: rounds_of(stage) };
    }
    match program.series(&stage.name).iter().next().and_then(|p| program.stage(p)) {
        Some(prune) => Shape::Rounds { first: 0, last: rounds_of(prune) },
        None => Shape::Single,
    }
}

/// Stages in dependency order; among ready stages, the one declared first goes first, so the
/// plan reads like the file.
fn stage_order(program: &Program) -> Vec<&Stage> {
    let index: HashMap<&str, usize> = program.stages.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut waiting: Vec<usize> = vec![0; program.stages.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); program.stages.len()];
    for (i, stage) in program.stages.iter().enumerate() {
        for input in stage.inputs() {
            if let Some(&j) = index.get(input.as_str()) {
                waiting[i] += 1;
                readers[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> =
        waiting.iter().enumerate().filter(|(_, w)| **w == 0).map(|(i, _)| std::cmp::Reverse(i)).collect();
    let mut order = Vec::new();
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(&program.stages[i]);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(std::cmp::Reverse(r));
            }
        }
    }
    order
}

struct Builder<'a> {
    program: &'a Program,
    shapes: &'a HashMap<&'a str, Shape>,
    multi_seed: bool,
    nodes: Vec<Node>,
}

impl Builder<'_> {
    fn id(&self, stage: &str, round: Option<u32>, seed: Option<i64>) -> String {
        let mut id = stage.to_owned();
        if let Some(r) = round {
            id.push_str(&format!("[{r}]"));
        }
        if let (true, Some(s)) = (self.multi_seed, seed) {
            id.push_str(&format!("@seed{s}"));
        }
        id
    }

    /// The node of `stage` holding round `round` for `seed`. Round 0 of a prune stage is the
    /// dense checkpoint it starts from.
    fn node_for(&self, stage: &str, round: Option<u32>, seed: Option<i64>) -> String {
        let Some(s) = self.program.stage(stage) else { return stage.to_owned() };
        let seed = if replicated(s.category) { seed } else { None };
        match (self.shapes.get(stage), round) {
            (Some(Shape::Rounds { .. }), Some(0)) if s.category == Category::Prune => {
                let from = s.value("from").and_then(Value::as_stage).unwrap_or_default();
                self.node_for(from, None, seed)
            }
            (Some(Shape::Rounds { .. }), Some(r)) => self.id(stage, Some(r), seed),
            _ => self.id(stage, None, seed),
        }
    }

    /// Every node of `stage` for `seed` (all seeds when `seed` is None and the stage is seeded).
    fn all_nodes(&self, stage: &str, seed: Option<i64>) -> Vec<String> {
        let Some(s) = self.program.stage(stage) else { return Vec::new() };
        let seeds: Vec<Option<i64>> = match (replicated(s.category), seed) {
            (true, None) => self.program.experiment.seeds.iter().copied().map(Some).collect(),
            (true, Some(seed)) => vec![Some(seed)],
            (false, _) => vec![None],
        };
        let mut out = Vec::new();
        for seed in seeds {
            match self.shapes.get(stage) {
                Some(Shape::Rounds { first, last }) => {
                    let first = if s.category == Category::Prune { 0 } else { *first };
                    out.extend((first..=*last).map(|r| self.node_for(stage, Some(r), seed)));
                }
                _ => out.push(self.node_for(stage, None, seed)),
            }
        }
        out
    }

    fn push(&mut self, stage: &Stage, round: Option<u32>, seed: Option<i64>, inputs: Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        let inputs = inputs.into_iter().filter(|i| seen.insert(i.clone())).collect();
        let id = self.id(&stage.name, round, seed);
        self.nodes.push(Node { id, stage: stage.name.clone(), kind: stage.category, method: stage.method.name, round, seed, inputs });
    }

    fn expand(&mut self, stage: &Stage, seed: Option<i64>) {
        let inputs = stage.inputs();
        match (stage.category, self.shapes.get(stage.name.as_str()).copied().unwrap_or(Shape::Single)) {
            (Category::Compare | Category::Report, _) => {
                let all = inputs.iter().flat_map(|i| self.all_nodes(i, None)).collect();
                self.push(stage, None, None, all);
            }
            (Category::Prune, Shape::Rounds { first, last }) => {
                let from = stage.value("from").and_then(Value::as_stage).unwrap_or_default().to_owned();
                for r in first..=last {
                    let mut reads = vec![self.node_for(&stage.name, Some(r - 1), seed)];
                    reads.push(self.node_for(&from, None, seed));
                    reads.extend(inputs.iter().filter(|i| **i != from).map(|i| self.node_for(i, None, seed)));
                    self.push(stage, Some(r), seed, reads);
                }
            }
            (_, Shape::Rounds { first, last }) => {
                for r in first..=last {
                    let reads = inputs
                        .iter()
                        .map(|i| {
                            let mapped = matches!(self.shapes.get(i.as_str()), Some(Shape::Rounds { .. }));
                            self.node_for(i, mapped.then_some(r), seed)
                        })
                        .collect();
                    self.push(stage, Some(r), seed, reads);
                }
            }
            (_, Shape::Single) => {
                let reads = inputs.iter().map(|i| self.node_for(i, None, seed)).collect();
                self.push(stage, None, seed, reads);
            }
        }
    }
}

/// Nodes per stage, for summaries.
pub fn counts(plan: &Plan) -> BTreeMap<Category, usize> {
    let mut out = BTreeMap::new();
    for node in &plan.nodes {
        *out.entry(node.kind).or_insert(0) += 1;
    }
    out
}
