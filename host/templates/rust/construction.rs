//! Construction slot: a flat navigable graph, built like level 0 of HNSW.
//!
//! Points are inserted one at a time, in id order. Each new point runs a
//! beam search of width `ef_construction` from the entry point (node 0)
//! over the graph built so far, keeps at most `M` of the nodes it found
//! (chosen by the occlusion heuristic, which favours neighbours in
//! different directions), and links to them in both directions. A node
//! whose list then exceeds the level-0 degree `2·M` is re-pruned with the
//! same heuristic.
//!
//! The build is single-threaded (the `threads` argument is ignored), so it
//! is deterministic.
//!
//! Build parameters: `M` (2..=128, default 16) and `ef_construction`
//! (1..=10000, default 100). The result is the standard graph view: one
//! level in CSR form (u64 offsets, u32 neighbour ids) and entry point 0.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::RangeInclusive;

use annvil_abi::{Base, Construction, Error, GraphView, Level, Metric, ParamSpec, Params, Result};
use annvil_distance::Kernel;

/// Allowed values of `M`, the links a new node keeps.
const M_RANGE: RangeInclusive<usize> = 2..=128;
/// Allowed values of `ef_construction`, the beam width while inserting.
const EF_CONSTRUCTION_RANGE: RangeInclusive<usize> = 1..=10_000;

/// The built graph, in the CSR form of the standard view.
pub struct Index {
    /// `num_nodes + 1` offsets into `neighbors`.
    offsets: Vec<u64>,
    /// The neighbour lists of all nodes, concatenated.
    neighbors: Vec<u32>,
    /// Node 0, or nothing for an empty base.
    entry_points: Vec<u32>,
}

impl Construction for Index {
    const PARAMS: &'static [ParamSpec] = &[
        ParamSpec::int("M", 2, 128, "16", "links a new node keeps (level-0 degree 2*M)"),
        ParamSpec::int("ef_construction", 1, 10_000, "100", "beam width while inserting"),
    ];

    fn build(base: Base, metric: Metric, params: &mut Params, _threads: usize) -> Result<Self> {
        let m = read_param(params, "M", 16, M_RANGE)?;
        let ef_construction = read_param(params, "ef_construction", 100, EF_CONSTRUCTION_RANGE)?;
        if u32::try_from(base.len()).is_err() {
            return Err(Error::unsupported(format!(
                "{} base vectors exceed the u32 ids of the ABI",
                base.len()
            )));
        }
        let mut builder = Builder::new(base, annvil_distance::kernel(metric), m, ef_construction);
        for id in 1..base.len() as u32 {
            builder.insert(id);
        }
        Ok(builder.into_index())
    }

    fn view(&self) -> GraphView<'_> {
        GraphView {
            num_nodes: self.offsets.len() - 1,
            levels: vec![Level {
                offsets: &self.offsets,
                neighbors: &self.neighbors,
            }],
            entry_points: &self.entry_points,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<u64>()
            + (self.neighbors.capacity() + self.entry_points.capacity()) * size_of::<u32>()
    }
}

/// Reads an integer parameter and checks it against `range`; the error
/// names the parameter and the allowed range.
fn read_param(
    params: &mut Params,
    name: &str,
    default: usize,
    range: RangeInclusive<usize>,
) -> Result<usize> {
    let value = params.get_or(name, default)?;
    if !range.contains(&value) {
        return Err(Error::invalid(format!(
            "parameter `{name}` must be in [{}, {}], got {value}",
            range.start(),
            range.end()
        )));
    }
    Ok(value)
}

/// A node and its distance to the point being inserted or compared with,
/// ordered by distance, then id, so that every build is deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    distance: f32,
    id: u32,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// The base vectors and the metric's distance kernel.
struct Space {
    base: Base,
    kernel: Kernel,
}

impl Space {
    fn distance(&self, a: u32, b: u32) -> f32 {
        self.kernel
            .distance(self.base.row(a as usize), self.base.row(b as usize))
    }
}

/// Fixed-room neighbour lists: node `v` owns
/// `links[v * max_degree..(v + 1) * max_degree]`, of which the first
/// `degree[v]` are used.
struct Lists {
    max_degree: usize,
    links: Vec<u32>,
    degree: Vec<u32>,
}

impl Lists {
    fn get(&self, node: u32) -> &[u32] {
        let start = node as usize * self.max_degree;
        &self.links[start..start + self.degree[node as usize] as usize]
    }

    fn set(&mut self, node: u32, neighbors: &[u32]) {
        let start = node as usize * self.max_degree;
        self.links[start..start + neighbors.len()].copy_from_slice(neighbors);
        self.degree[node as usize] = neighbors.len() as u32;
    }

    /// Appends `id` to the list of `node`; false when the list is full.
    fn push(&mut self, node: u32, id: u32) -> bool {
        let degree = self.degree[node as usize] as usize;
        if degree == self.max_degree {
            return false;
        }
        self.links[node as usize * self.max_degree + degree] = id;
        self.degree[node as usize] += 1;
        true
    }
}

/// The occlusion heuristic: walks `candidates` (nearest first, by distance
/// to one node) and keeps a candidate only when it is closer to that node
/// than to every candidate kept so far. At most `keep` ids land in
/// `selected`.
fn select(space: &Space, candidates: &[Candidate], keep: usize, selected: &mut Vec<u32>) {
    selected.clear();
    for candidate in candidates {
        if selected.len() == keep {
            break;
        }
        let occluded = selected
            .iter()
            .any(|&kept| space.distance(candidate.id, kept) < candidate.distance);
        if !occluded {
            selected.push(candidate.id);
        }
    }
}

/// The graph under construction and the scratch space of the insertions.
struct Builder {
    space: Space,
    lists: Lists,
    /// Links a new node keeps.
    m: usize,
    ef_construction: usize,
    /// `visited[v] == epoch` marks `v` as seen by the current search.
    visited: Vec<u32>,
    epoch: u32,
    /// Nodes still to expand, nearest first.
    frontier: BinaryHeap<Reverse<Candidate>>,
    /// The best `ef_construction` nodes found, farthest on top.
    nearest: BinaryHeap<Candidate>,
    /// The nodes found by the last search, nearest first.
    found: Vec<Candidate>,
    /// The neighbours chosen for the node being inserted.
    selected: Vec<u32>,
    /// A full list being re-pruned (nearest first) and what it keeps.
    pool: Vec<Candidate>,
    pruned: Vec<u32>,
}

impl Builder {
    /// A graph over `base` with no links yet: node 0 is its first node.
    fn new(base: Base, kernel: Kernel, m: usize, ef_construction: usize) -> Builder {
        let n = base.len();
        let max_degree = 2 * m;
        Builder {
            space: Space { base, kernel },
            lists: Lists {
                max_degree,
                links: vec![0; n * max_degree],
                degree: vec![0; n],
            },
            m,
            // The search must find at least the M neighbours to choose from.
            ef_construction: ef_construction.max(m),
            visited: vec![0; n],
            epoch: 0,
            frontier: BinaryHeap::new(),
            nearest: BinaryHeap::new(),
            found: Vec::new(),
            selected: Vec::with_capacity(m),
            pool: Vec::with_capacity(max_degree + 1),
            pruned: Vec::with_capacity(max_degree),
        }
    }

    /// Links node `id` into the graph of nodes `0..id`.
    fn insert(&mut self, id: u32) {
        self.search(id);
        select(&self.space, &self.found, self.m, &mut self.selected);
        self.lists.set(id, &self.selected);
        let selected = std::mem::take(&mut self.selected);
        for &neighbor in &selected {
            self.link_back(neighbor, id);
        }
        self.selected = selected;
    }

    /// Beam search for the nodes nearest to node `target`, from node 0.
    /// Leaves the best `ef_construction` in `found`, nearest first.
    fn search(&mut self, target: u32) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Wrapped around: forget the marks of 2^32 searches ago.
            self.visited.fill(0);
            self.epoch = 1;
        }
        self.frontier.clear();
        self.nearest.clear();
        let start = Candidate {
            distance: self.space.distance(target, 0),
            id: 0,
        };
        self.visited[0] = self.epoch;
        self.frontier.push(Reverse(start));
        self.nearest.push(start);
        while let Some(Reverse(current)) = self.frontier.pop() {
            let worst = *self.nearest.peek().expect("nearest holds the start");
            if current > worst && self.nearest.len() >= self.ef_construction {
                break; // every node left to expand is farther than the worst kept
            }
            for &neighbor in self.lists.get(current.id) {
                if self.visited[neighbor as usize] == self.epoch {
                    continue;
                }
                self.visited[neighbor as usize] = self.epoch;
                let candidate = Candidate {
                    distance: self.space.distance(target, neighbor),
                    id: neighbor,
                };
                let worst = *self.nearest.peek().expect("nearest holds the start");
                if self.nearest.len() < self.ef_construction || candidate < worst {
                    self.frontier.push(Reverse(candidate));
                    self.nearest.push(candidate);
                    if self.nearest.len() > self.ef_construction {
                        self.nearest.pop();
                    }
                }
            }
        }
        self.found.clear();
        self.found.extend(self.nearest.drain());
        self.found.sort_unstable();
    }

    /// Adds the link `node -> new`. A full list is re-pruned to the level-0
    /// degree by the heuristic, with `new` among the candidates.
    fn link_back(&mut self, node: u32, new: u32) {
        if self.lists.push(node, new) {
            return;
        }
        self.pool.clear();
        for &id in self.lists.get(node).iter().chain([&new]) {
            self.pool.push(Candidate {
                distance: self.space.distance(node, id),
                id,
            });
        }
        self.pool.sort_unstable();
        select(
            &self.space,
            &self.pool,
            self.lists.max_degree,
            &mut self.pruned,
        );
        self.lists.set(node, &self.pruned);
    }

    /// The finished graph in CSR form.
    fn into_index(self) -> Index {
        let n = self.lists.degree.len();
        let edges = self.lists.degree.iter().map(|&d| d as usize).sum();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut neighbors = Vec::with_capacity(edges);
        offsets.push(0);
        for node in 0..n as u32 {
            neighbors.extend_from_slice(self.lists.get(node));
            offsets.push(neighbors.len() as u64);
        }
        Index {
            offsets,
            neighbors,
            entry_points: if n > 0 { vec![0] } else { Vec::new() },
        }
    }
}
