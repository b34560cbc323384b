//! Builds HNSW (M=16) on Fashion-MNIST and sweeps the
//! beam search's `ef`: build time, recall@10, single-thread QPS and
//! distances per query.
//!
//! ```text
//! cargo run --release -p annvil-hnsw --example fashion -- [THREADS] [QUERIES] [EF_CONSTRUCTION]
//! ```
//! THREADS defaults to 2, QUERIES (the first test images used) to 1000,
//! EF_CONSTRUCTION to 200.
//! Needs Debian's `dataset-fashion-mnist` (`scripts/setup`).

use std::time::Instant;

use annvil_abi::{Construction, GraphView, Metric, Neighbors, Params, Search, Vectors};
use annvil_beam::{BeamSearch, NativeGraph};
use annvil_data::{
    ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, Matrix, exact_ground_truth, recall,
};
use annvil_hnsw::Hnsw;

const K: usize = 10;
const SWEEP: [usize; 8] = [10, 20, 40, 80, 120, 200, 400, 800];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let queries: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let ef_construction = args.next().unwrap_or_else(|| "200".to_owned());

    let full = "fashion-mnist".parse::<DatasetSpec>()?.load()?;
    let dim = full.train.dim();
    let test = Matrix::new(
        full.test.as_slice()[..queries.min(full.test.len()) * dim].to_vec(),
        dim,
    )?;
    let data = Dataset::new(full.name, Metric::L2, full.train, test, full.source)?;
    let values: &'static [f32] = Box::leak(data.train.as_slice().to_vec().into_boxed_slice());
    let base = Vectors::new(values, dim)?;

    let started = Instant::now();
    let mut params = Params::new([("M", "16"), ("ef_construction", ef_construction.as_str())]);
    let graph: &'static Hnsw = Box::leak(Box::new(Hnsw::build(
        base,
        Metric::L2,
        &mut params,
        threads,
    )?));
    let build_seconds = started.elapsed().as_secs_f64();
    println!(
        "build: {} x {dim}, ef_construction {ef_construction}, {threads} threads, \
         {build_seconds:.2} s, {} levels, {:.1} MiB",
        data.train.len(),
        graph.max_level() + 1,
        graph.memory_bytes() as f64 / (1 << 20) as f64
    );

    let truth = exact_ground_truth(&data.train, &data.test, Metric::L2, K)?;
    let view: &'static GraphView<'static> = Box::leak(Box::new(graph.view()));
    let mut searcher = BeamSearch::<Hnsw>::from_view(base, view, Metric::L2, Some(graph.level0()))?;
    let mut context = searcher.new_context()?;
    println!(
        "{:>5} {:>8} {:>9} {:>10}",
        "ef", "recall", "QPS", "dist/query"
    );
    for ef in SWEEP {
        searcher.configure(&mut Params::new([("ef", ef.to_string())]))?;
        let mut results = vec![vec![0u32; K]; data.test.len()];
        let mut best_seconds = f64::INFINITY;
        let mut distances = 0;
        for _run in 0..3 {
            let before = BeamSearch::<Hnsw>::distance_count(&context);
            let started = Instant::now();
            for (query, ids) in data.test.rows().zip(&mut results) {
                let mut dists = [0f32; K];
                searcher.search(&mut context, query, &mut Neighbors::new(ids, &mut dists))?;
            }
            best_seconds = best_seconds.min(started.elapsed().as_secs_f64());
            distances = BeamSearch::<Hnsw>::distance_count(&context) - before;
        }
        let measured = recall(
            &data.train,
            &data.test,
            Metric::L2,
            &results,
            &truth,
            K,
            ANN_BENCHMARKS_EPSILON,
        )?;
        println!(
            "{ef:>5} {:>8.4} {:>9.0} {:>10.0}",
            measured.mean,
            data.test.len() as f64 / best_seconds,
            distances as f64 / data.test.len() as f64
        );
    }
    Ok(())
}
