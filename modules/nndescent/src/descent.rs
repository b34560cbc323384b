//! NN-descent itself (Dong, Charikar & Li, WWW 2011): the approximate
//! K-NN lists, improved by local joins until few updates remain.
//!
//! Every list sits behind its own [`Mutex`]; a join locks one list at a
//! time, so threads cannot deadlock. Each list also publishes its K-th
//! distance in an atomic, so most hopeless candidates are rejected without
//! taking the lock (a stale value is only larger, never wrongly rejecting).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use annvil_beam::Space;
use annvil_core::{Candidate, SplitMix64, parallel_for, parallel_for_each_mut};

use crate::NnDescentParams;

/// Stream keys of the keyed random generators.
pub(crate) const ENTRY_POINTS: u64 = 0;
const INIT: u64 = 1;
const FORWARD: u64 = 2;
const REVERSE: u64 = 3;

/// An entry of a K-NN list: a neighbour and whether it is new (not yet
/// taken part in a local join).
#[derive(Clone, Copy, Debug)]
struct Entry {
    candidate: Candidate,
    new: bool,
}

/// The K-NN lists under construction.
struct Lists {
    k: usize,
    lists: Vec<Mutex<Vec<Entry>>>,
    /// `f32` bits of each list's K-th distance (infinity until full).
    worst: Vec<AtomicU32>,
}

impl Lists {
    fn new(n: usize, k: usize) -> Lists {
        Lists {
            k,
            lists: (0..n).map(|_| Mutex::new(Vec::with_capacity(k))).collect(),
            worst: (0..n)
                .map(|_| AtomicU32::new(f32::INFINITY.to_bits()))
                .collect(),
        }
    }

    fn lock(&self, node: u32) -> MutexGuard<'_, Vec<Entry>> {
        // A poisoned lock means another thread panicked; the thread scope
        // re-raises that panic, so the lists are never used.
        self.lists[node as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers `id` at `distance` to the list of `node`; true when the list
    /// changed (the id was absent and closer than the K-th).
    fn insert(&self, node: u32, id: u32, distance: f32) -> bool {
        if distance >= f32::from_bits(self.worst[node as usize].load(Ordering::Relaxed)) {
            return false;
        }
        let candidate = Candidate { distance, id };
        let mut list = self.lock(node);
        if (list.len() == self.k && candidate >= list[self.k - 1].candidate)
            || list.iter().any(|e| e.candidate.id == id)
        {
            return false;
        }
        let at = list.partition_point(|e| e.candidate < candidate);
        list.truncate(self.k - 1);
        let at = at.min(list.len());
        list.insert(
            at,
            Entry {
                candidate,
                new: true,
            },
        );
        if list.len() == self.k {
            self.worst[node as usize].store(
                list[self.k - 1].candidate.distance.to_bits(),
                Ordering::Relaxed,
            );
        }
        true
    }
}

/// The join candidates of one node in one iteration.
#[derive(Clone, Debug, Default)]
struct Join {
    /// New neighbours sampled from the node's list, then from its reverse.
    new: Vec<u32>,
    /// Old neighbours, then a sample of its old reverse neighbours.
    old: Vec<u32>,
    /// Nodes that sampled this node as new.
    new_reverse: Vec<u32>,
    /// Nodes that hold this node as old.
    old_reverse: Vec<u32>,
}

/// An approximate K-NN graph: up to K neighbours per node, closest first.
#[derive(Clone, Debug)]
pub struct KnnGraph {
    lists: Vec<Vec<Candidate>>,
    iterations: usize,
}

impl KnnGraph {
    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.lists.len()
    }

    /// The neighbours of `node` with their distances, closest first.
    pub fn neighbors(&self, node: u32) -> &[Candidate] {
        &self.lists[node as usize]
    }

    /// The iterations NN-descent ran before converging or stopping.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
}

/// NN-descent over `space` with `threads` threads: a random K-NN graph
/// (from `seed`), then per iteration the local joins of each node's
/// sampled new neighbours with each other and with its old ones, forward
/// and reverse (at most `rho·K` of each kind sampled), until fewer than
/// `delta·n·K` list updates happen or `iterations` have run. Sampling is
/// seeded per node and iteration; with one thread the result is a pure
/// function of the data and the parameters.
pub fn nn_descent(space: &Space<'_>, params: &NnDescentParams, threads: usize) -> KnnGraph {
    let n = space.len();
    let k = params.k.min(n.saturating_sub(1));
    if k == 0 {
        return KnnGraph {
            lists: vec![Vec::new(); n],
            iterations: 0,
        };
    }
    let lists = Lists::new(n, k);
    parallel_for(threads, n, Vec::new, |v, ids| {
        let mut rng = SplitMix64::keyed(params.seed, &[INIT, v as u64]);
        rng.distinct_others(v as u32, n, k, ids);
        for &id in ids.iter() {
            lists.insert(v as u32, id, space.between(v as u32, id));
        }
    });

    let sample = ((params.rho * k as f32).ceil() as usize).clamp(1, k);
    let stop = params.delta as f64 * n as f64 * k as f64;
    let mut joins = vec![Join::default(); n];
    let mut iterations = 0;
    while iterations < params.iterations {
        let step = iterations as u64;
        iterations += 1;
        // Forward: the old neighbours, and a sample of the new ones, which
        // become old.
        parallel_for_each_mut(threads, &mut joins, |v, join| {
            let mut rng = SplitMix64::keyed(params.seed, &[FORWARD, step, v as u64]);
            let mut list = lists.lock(v as u32);
            join.old.clear();
            join.new.clear();
            join.new_reverse.clear();
            join.old_reverse.clear();
            for entry in list.iter() {
                if entry.new {
                    join.new.push(entry.candidate.id);
                } else {
                    join.old.push(entry.candidate.id);
                }
            }
            let picked = rng.sample(&mut join.new, sample).len();
            join.new.truncate(picked);
            for entry in list.iter_mut() {
                if join.new.contains(&entry.candidate.id) {
                    entry.new = false;
                }
            }
        });
        // Reverse lists, in node order.
        for v in 0..n {
            for i in 0..joins[v].new.len() {
                let u = joins[v].new[i] as usize;
                joins[u].new_reverse.push(v as u32);
            }
            for i in 0..joins[v].old.len() {
                let u = joins[v].old[i] as usize;
                joins[u].old_reverse.push(v as u32);
            }
        }
        parallel_for_each_mut(threads, &mut joins, |v, join| {
            let mut rng = SplitMix64::keyed(params.seed, &[REVERSE, step, v as u64]);
            let new = rng.sample(&mut join.new_reverse, sample);
            join.new.extend_from_slice(new);
            let old = rng.sample(&mut join.old_reverse, sample);
            join.old.extend_from_slice(old);
            for ids in [&mut join.new, &mut join.old] {
                ids.sort_unstable();
                ids.dedup();
            }
        });
        let updates = AtomicUsize::new(0);
        parallel_for(
            threads,
            n,
            || (),
            |v, ()| {
                let Join { new, old, .. } = &joins[v];
                let mut changed = 0;
                let mut offer = |a: u32, b: u32| {
                    let distance = space.between(a, b);
                    changed += usize::from(lists.insert(a, b, distance));
                    changed += usize::from(lists.insert(b, a, distance));
                };
                for (i, &a) in new.iter().enumerate() {
                    for &b in &new[i + 1..] {
                        offer(a, b);
                    }
                    for &b in old.iter().filter(|&&b| b != a) {
                        offer(a, b);
                    }
                }
                updates.fetch_add(changed, Ordering::Relaxed);
            },
        );
        if (updates.into_inner() as f64) < stop {
            break;
        }
    }
    KnnGraph {
        lists: lists
            .lists
            .into_iter()
            .map(|list| {
                list.into_inner()
                    .unwrap_or_else(PoisonError::into_inner)
                    .into_iter()
                    .map(|e| e.candidate)
                    .collect()
            })
            .collect(),
        iterations,
    }
}
