//! The plan's dependency structure as a petgraph graph: one graph node per plan node (graph index
//! `i` is `plan.nodes[i]`), one edge from every input to the node that reads it, weighted by the
//! input's position so a node's inputs come back in the order the planner listed them. Everything
//! that walks dependencies (the renderers, the local ready queue, Slurm's `afterok` lists) reads
//! the edges from here rather than matching id strings.

use super::Node;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef as _;
use petgraph::Direction;
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct Dependencies {
    graph: DiGraph<(), usize>,
}

impl Dependencies {
    /// The graph of `nodes`, which must be in a topological order with unique ids (the planner's
    /// guarantee). An input id that names no node is left out: `check` reports those.
    pub fn of(nodes: &[Node]) -> Dependencies {
        let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len() * 2);
        let index: HashMap<&str, NodeIndex> = nodes.iter().map(|n| (n.id.as_str(), graph.add_node(()))).collect();
        for (reader, node) in nodes.iter().enumerate() {
            for (position, input) in node.inputs.iter().enumerate() {
                if let Some(&from) = index.get(input.as_str()) {
                    graph.add_edge(from, NodeIndex::new(reader), position);
                }
            }
        }
        Dependencies { graph }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The plan indices node `i` reads, in the planner's order.
    pub fn inputs(&self, i: usize) -> Vec<usize> {
        let mut edges: Vec<(usize, usize)> =
            self.graph.edges_directed(NodeIndex::new(i), Direction::Incoming).map(|e| (*e.weight(), e.source().index())).collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, from)| from).collect()
    }

    /// The plan indices that read node `i`, ascending.
    pub fn readers(&self, i: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self.graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing).map(NodeIndex::index).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every edge as (input, reader) plan indices, readers ascending and each reader's inputs in
    /// the planner's order.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        (0..self.len()).flat_map(|reader| self.inputs(reader).into_iter().map(move |from| (from, reader))).collect()
    }

    /// Node `i` and everything downstream of it, ascending.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut dfs = petgraph::visit::Dfs::new(&self.graph, NodeIndex::new(i));
        while let Some(n) = dfs.next(&self.graph) {
            seen[n.index()] = true;
        }
        seen.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect()
    }

    /// Whether the graph has no cycle; the planner builds it acyclic, so false is a planner bug.
    pub fn is_acyclic(&self) -> bool {
        !petgraph::algo::is_cyclic_directed(&self.graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Category;

    fn node(id: &str, inputs: &[&str]) -> Node {
        Node {
            id: id.to_owned(),
            stage: id.to_owned(),
            kind: Category::Train,
            method: "sgd",
            round: None,
            seed: None,
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn inputs_keep_the_planners_order_and_readers_are_found() {
        let nodes = vec![node("a", &[]), node("b", &[]), node("c", &["b", "a"]), node("d", &["c"])];
        let deps = Dependencies::of(&nodes);
        assert_eq!(deps.inputs(2), vec![1, 0]);
        assert_eq!(deps.readers(0), vec![2]);
        assert_eq!(deps.readers(3), Vec::<usize>::new());
        assert_eq!(deps.downstream(1), vec![1, 2, 3]);
        assert_eq!(deps.edges(), vec![(1, 2), (0, 2), (2, 3)]);
        assert!(deps.is_acyclic());
    }
}
