//! Builds IVF-Flat on Fashion-MNIST and sweeps `nprobe`: build time,
//! recall@10, single-thread QPS and distances per query.
//!
//! ```text
//! cargo run --release -p annvil-ivf --example ivf_fashion -- [THREADS] [QUERIES] [NLIST]
//! ```
//! THREADS defaults to 2, QUERIES (the first test images used) to 1000,
//! NLIST to 0 (automatic: sqrt(n)).
//! Needs Debian's `dataset-fashion-mnist` (`scripts/setup`).

use std::time::Instant;

use annvil_abi::{Construction, Metric, Neighbors, Params, Search, Vectors};
use annvil_data::{
    ANN_BENCHMARKS_EPSILON, Dataset, DatasetSpec, Matrix, exact_ground_truth, recall,
};
use annvil_ivf::{Ivf, IvfFlatSearch};

const K: usize = 10;
const SWEEP: [usize; 9] = [1, 2, 4, 8, 12, 16, 24, 32, 64];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let queries: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let nlist = args.next().unwrap_or_else(|| "0".to_owned());

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
    let mut params = Params::new([("nlist", nlist.as_str())]);
    let ivf: &'static Ivf = Box::leak(Box::new(Ivf::build(
        base,
        Metric::L2,
        &mut params,
        threads,
    )?));
    println!(
        "build: {} x {dim}, {} lists, {threads} threads, {:.2} s, {:.1} MiB",
        data.train.len(),
        ivf.lists().len(),
        started.elapsed().as_secs_f64(),
        ivf.memory_bytes() as f64 / (1 << 20) as f64
    );

    let truth = exact_ground_truth(&data.train, &data.test, Metric::L2, K)?;
    let mut searcher = IvfFlatSearch::new(ivf, base, Metric::L2)?;
    let mut context = searcher.new_context()?;
    println!(
        "{:>6} {:>8} {:>9} {:>10}",
        "nprobe", "recall", "QPS", "dist/query"
    );
    for nprobe in SWEEP {
        searcher.configure(&mut Params::new([("nprobe", nprobe.to_string())]))?;
        let mut results = vec![vec![0u32; K]; data.test.len()];
        let mut best_seconds = f64::INFINITY;
        let mut distances = 0;
        for _run in 0..3 {
            let before = IvfFlatSearch::distance_count(&context);
            let started = Instant::now();
            for (query, ids) in data.test.rows().zip(&mut results) {
                let mut dists = [0f32; K];
                searcher.search(&mut context, query, &mut Neighbors::new(ids, &mut dists))?;
            }
            best_seconds = best_seconds.min(started.elapsed().as_secs_f64());
            distances = IvfFlatSearch::distance_count(&context) - before;
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
            "{nprobe:>6} {:>8.4} {:>9.0} {:>10.0}",
            measured.mean,
            data.test.len() as f64 / best_seconds,
            distances as f64 / data.test.len() as f64
        );
    }
    Ok(())
}
