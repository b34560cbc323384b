//! One step of the level-0 search, f32 against packed: expanding one
//! node of a degree-32 random graph over Fashion-MNIST-shaped data
//! (20,000 vectors of 784 whole numbers in 0..=255, 60 MB of f32, so the
//! vectors come from memory as in a real search). A step visits the node's
//! neighbours, measures the unvisited ones and updates the heaps (f32,
//! [`LayerSearch`]) or the pool (SQ8/SQ4/f16, [`PackedSearch`]). Each iteration
//! starts a fresh search from the next of a cycle of random nodes and
//! expands it; the query is prepared once, outside the timing.

#![expect(
    missing_docs,
    reason = "criterion_group! generates a `pub fn benches` with no doc; a bench has no public API"
)]

use std::hint::black_box;

use annvil_abi::{Level, Metric, Vectors};
use annvil_beam::{Encoding, LayerSearch, PackedLevel, PackedSearch, Space};
use annvil_core::{Candidate, FixedDegree};
use annvil_quant::Scheme;
use criterion::{Criterion, criterion_group, criterion_main};

const NODES: usize = 20_000;
const DIM: usize = 784;
const DEGREE: usize = 32;
const EF: usize = 64;

fn step(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(7);
    let data: Vec<f32> = (0..NODES * DIM).map(|_| rng.u8(..) as f32).collect();
    let base = Vectors::new(&data, DIM).unwrap();
    let offsets: Vec<u64> = (0..=NODES as u64).map(|v| v * DEGREE as u64).collect();
    let neighbors: Vec<u32> = (0..NODES * DEGREE)
        .map(|_| rng.u32(..NODES as u32))
        .collect();
    let level = Level {
        offsets: &offsets,
        neighbors: &neighbors,
    };
    let flat = FixedDegree::from_level(&level, NODES);
    let space = Space::new(base, Metric::L2);
    let query: Vec<f32> = (0..DIM).map(|_| rng.u8(..) as f32).collect();
    let seeds: Vec<u32> = (0..4096).map(|_| rng.u32(..NODES as u32)).collect();
    let mut seeds = seeds.iter().copied().cycle();

    let mut group = c.benchmark_group("expand-one-node");
    let mut layer = LayerSearch::new(NODES);
    group.bench_function("f32", |bench| {
        bench.iter(|| {
            let id = seeds.next().expect("a cycle");
            let seed = Candidate {
                distance: space.to(&query, id),
                id,
            };
            layer.start(&[seed], EF);
            black_box(layer.expand(&flat, &space, &query, id, EF))
        })
    });
    for (name, encoding) in [
        ("sq8", Encoding::Sq(Scheme::Sq8)),
        ("sq4", Encoding::Sq(Scheme::Sq4)),
        ("f16", Encoding::F16),
    ] {
        let packed = PackedLevel::new(&flat, base, Metric::L2, encoding).unwrap();
        let mut search = PackedSearch::new(&packed);
        search.set_query(&query);
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let id = seeds.next().expect("a cycle");
                search.start(&packed, [id], EF);
                black_box(search.expand(&packed, id))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
