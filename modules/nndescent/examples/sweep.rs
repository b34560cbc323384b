//! Builds a Vamana or NN-descent graph on a dataset and sweeps the beam
//! search's `ef`: build time, recall@10, single-thread QPS and distances
//! per query.
//!
//! ```text
//! cargo run --release -p annvil-nndescent --example sweep -- \
//!     DATASET vamana|nndescent THREADS QUERIES [KEY=VALUE...]
//! ```
//! DATASET is a spec such as `fashion-mnist` or `synthetic:metric=angular`.

use std::time::Instant;

use annvil_abi::{Construction, GraphView, Neighbors, Params, Search, Vectors};
use annvil_beam::{BeamSearch, NativeGraph};
use annvil_data::{
    ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, Matrix, exact_ground_truth, recall,
};
use annvil_hnsw::Hnsw;
use annvil_nndescent::NnDescent;
use annvil_vamana::{FrozenGraph, Vamana};

const K: usize = 10;
const SWEEP: [usize; 9] = [10, 20, 40, 60, 80, 120, 200, 400, 800];

/// A built graph of either construction.
trait Built: Construction + NativeGraph {
    fn frozen(&self) -> Option<&FrozenGraph>;
}

impl Built for Vamana {
    fn frozen(&self) -> Option<&FrozenGraph> {
        Some(self.graph())
    }
}

impl Built for Hnsw {
    fn frozen(&self) -> Option<&FrozenGraph> {
        None
    }
}

impl Built for NnDescent {
    fn frozen(&self) -> Option<&FrozenGraph> {
        Some(self.graph())
    }
}

/// CPU seconds this process has used (user + system, all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn run<C: Built>(
    data: &Dataset,
    params: Vec<(String, String)>,
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let dim = data.train.dim();
    let values: &'static [f32] = Box::leak(data.train.as_slice().to_vec().into_boxed_slice());
    let base = Vectors::new(values, dim)?;
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut params = Params::new(params);
    let graph: &'static C = Box::leak(Box::new(C::build(base, data.metric, &mut params, threads)?));
    params.finish()?;
    let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));
    let edges = view.levels[0].neighbors.len();
    println!(
        "build: {} x {dim}, {threads} threads, {:.2} s ({:.2} s CPU), mean degree {:.1}, {} entry points, {} unreachable",
        data.train.len(),
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        edges as f64 / data.train.len() as f64,
        view.entry_points.len(),
        graph
            .frozen()
            .map_or(0, |f| f.reachable().iter().filter(|r| !**r).count()),
    );
    if let Some(f) = graph.frozen() {
        let reach = f.reachable();
        let space = annvil_beam::Space::new(base, data.metric);
        let mut zero = 0;
        let mut shown = 0;
        for v in 0..reach.len() as u32 {
            if reach[v as usize] {
                continue;
            }
            let nearest = (0..reach.len() as u32)
                .filter(|&u| u != v)
                .map(|u| space.between(v, u))
                .fold(f32::INFINITY, f32::min);
            let indeg = (0..reach.len() as u32)
                .filter(|&u| f.neighbors_of(u).contains(&v))
                .count();
            if nearest == 0.0 {
                zero += 1;
            }
            if shown < 10 {
                println!(
                    "unreachable {v}: nearest {nearest}, out-degree {}, in-degree {indeg}",
                    f.neighbors_of(v).len()
                );
                shown += 1;
            }
        }
        println!("{zero} unreachable nodes have a duplicate");
    }
    let truth = exact_ground_truth(&data.train, &data.test, data.metric, K)?;
    let mut searcher = BeamSearch::<C>::from_view(base, view, data.metric, Some(graph.level0()))?;
    let mut context = searcher.new_context()?;
    println!(
        "{:>5} {:>8} {:>9} {:>10}",
        "ef", "recall", "QPS", "dist/query"
    );
    for ef in SWEEP {
        searcher.configure(&mut Params::new([("ef", ef.to_string())]))?;
        let mut results = vec![vec![0u32; K]; data.test.len()];
        let mut best = f64::INFINITY;
        let mut distances = 0;
        for _ in 0..3 {
            let before = BeamSearch::<C>::distance_count(&context);
            let started = Instant::now();
            for (query, ids) in data.test.rows().zip(&mut results) {
                let mut dists = [0f32; K];
                searcher.search(&mut context, query, &mut Neighbors::new(ids, &mut dists))?;
            }
            best = best.min(started.elapsed().as_secs_f64());
            distances = BeamSearch::<C>::distance_count(&context) - before;
        }
        let measured = recall(
            &data.train,
            &data.test,
            data.metric,
            &results,
            &truth,
            K,
            ANN_BENCHMARKS_EPSILON,
        )?;
        println!(
            "{ef:>5} {:>8.4} {:>9.0} {:>10.0}",
            measured.mean,
            data.test.len() as f64 / best,
            distances as f64 / data.test.len() as f64
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, algo, threads, queries, rest @ ..] = args.as_slice() else {
        return Err("usage: DATASET vamana|nndescent THREADS QUERIES [KEY=VALUE...]".into());
    };
    let full = spec.parse::<DatasetSpec>()?.load()?;
    let dim = full.train.dim();
    let queries: usize = queries.parse()?;
    let test = Matrix::new(
        full.test.as_slice()[..queries.min(full.test.len()) * dim].to_vec(),
        dim,
    )?;
    let data = Dataset::new(full.name, full.metric, full.train, test, full.source)?;
    let params = rest
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or("KEY=VALUE")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threads = threads.parse()?;
    match algo.as_str() {
        "vamana" => run::<Vamana>(&data, params, threads),
        "nndescent" => run::<NnDescent>(&data, params, threads),
        "hnsw" => run::<Hnsw>(&data, params, threads),
        other => Err(format!("unknown construction {other}").into()),
    }
}
