//! Builds LoRANN on Fashion-MNIST and sweeps `nprobe` with an exact rerank
//! of the candidates: build time, recall@10 and single-thread QPS.
//!
//! ```text
//! cargo run --release -p annvil-lorann --example lorann_fashion -- [THREADS] [QUERIES] [CANDIDATES] [KEY=VALUE...]
//! ```
//! THREADS defaults to 2, QUERIES (the first test images used) to 1000,
//! CANDIDATES (reranked exactly) to 100; further arguments are build
//! parameters (e.g. `nlist=500 rank=16`).
//! Needs Debian's `dataset-fashion-mnist` (`scripts/setup`).

use std::time::Instant;

use annvil_abi::{Construction, Metric, Neighbors, Params, Search, Vectors};
use annvil_data::{
    ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, Matrix, exact_ground_truth, recall,
};
use annvil_lorann::{Lorann, LorannSearch};
use annvil_rerank::rank_exact;

const K: usize = 10;
const SWEEP: [usize; 9] = [1, 2, 3, 4, 6, 8, 12, 16, 32];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let queries: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let candidates: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let build_params: Vec<(String, String)> = args
        .map(|a| match a.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(format!("`{a}` is not KEY=VALUE")),
        })
        .collect::<Result<_, _>>()?;

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
    let mut params = Params::new(build_params);
    let index: &'static Lorann = Box::leak(Box::new(Lorann::build(
        base,
        Metric::L2,
        &mut params,
        threads,
    )?));
    params.finish()?;
    println!(
        "build: {} x {dim}, {:?}, {threads} threads, {:.2} s, {:.1} MiB",
        data.train.len(),
        index.params(),
        started.elapsed().as_secs_f64(),
        index.memory_bytes() as f64 / (1 << 20) as f64
    );

    let truth = exact_ground_truth(&data.train, &data.test, Metric::L2, K)?;
    let mut searcher = LorannSearch::new(index, base, Metric::L2)?;
    let mut context = searcher.new_context()?;
    println!(
        "{:>6} {:>8} {:>9} {:>13}",
        "nprobe", "recall", "QPS", "search-only QPS"
    );
    for nprobe in SWEEP {
        searcher.configure(&mut Params::new([("nprobe", nprobe.to_string())]))?;
        let mut results = vec![vec![0u32; K]; data.test.len()];
        let (mut ids, mut dists) = (vec![0u32; candidates], vec![0f32; candidates]);
        let mut best = [f64::INFINITY; 2];
        for _run in 0..3 {
            for (rerank, best) in [false, true].into_iter().zip(&mut best) {
                let started = Instant::now();
                for (query, result) in data.test.rows().zip(&mut results) {
                    let mut out = Neighbors::new(&mut ids, &mut dists);
                    searcher.search(&mut context, query, &mut out)?;
                    if rerank {
                        let found = out.ids().to_vec();
                        let mut top_dists = [0f32; K];
                        let mut top = Neighbors::new(result, &mut top_dists);
                        rank_exact(&base, Metric::L2, query, found, &mut top);
                    }
                }
                *best = best.min(started.elapsed().as_secs_f64());
            }
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
        let n = data.test.len() as f64;
        println!(
            "{nprobe:>6} {:>8.4} {:>9.0} {:>13.0}",
            measured.mean,
            n / best[1],
            n / best[0],
        );
    }
    Ok(())
}
