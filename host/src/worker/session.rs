//! The worker's half of an evaluation: load, build when asked, then
//! configure sweep points and answer runs whose queries arrive through the
//! exchange. The worker reads no clock for a figure; the measurer times
//! everything from its side.

use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};

use annvil_abi::Metric;

use super::EventWriter;
use super::pipeline::{BaseVectors, Graph, QueryRunner, Refiner, SlotError};
use crate::protocol::exchange::Exchange;
use crate::protocol::{
    BuiltReport, EvaluateItem, EvaluateJob, Event, NO_ID, RanReport, Request, base_file,
};

fn next_request(input: &mut dyn BufRead) -> Result<Request, String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Ok(Request::Finish),
        Ok(_) => serde_json::from_str(line.trim())
            .map_err(|e| format!("bad request from the measurer: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Answers positions `0..n` of the exchange as they are released, with one
/// runner per thread; positions are taken from a shared counter.
fn answer(exchange: &Exchange, runners: &mut [QueryRunner<'_>], n: usize) -> Result<(), SlotError> {
    let next = AtomicUsize::new(0);
    let k = exchange.k();
    let work = |runner: &mut QueryRunner<'_>| -> Result<(), SlotError> {
        let mut distances = vec![0f32; k];
        loop {
            let position = next.fetch_add(1, Ordering::Relaxed);
            if position >= n {
                return Ok(());
            }
            while exchange.released() <= position as u64 {
                std::hint::spin_loop();
            }
            let row = exchange.answer_row(position);
            let returned = runner.run(exchange.query(position), row, &mut distances)?;
            row[returned..].fill(NO_ID);
            exchange.mark_answered(1);
        }
    };
    on_each_runner(runners, |_, runner| work(runner))
}

/// Answers positions `0..n` in batch mode: each runner takes an equal,
/// contiguous share, waits until all of it is released, and answers it
/// with one batched search (the library's `search_batch` when it has one).
fn answer_batched(
    exchange: &Exchange,
    runners: &mut [QueryRunner<'_>],
    n: usize,
) -> Result<(), SlotError> {
    let share = n.div_ceil(runners.len().max(1)).max(1);
    let k = exchange.k();
    let work = |runner: &mut QueryRunner<'_>, positions: std::ops::Range<usize>| {
        let count = positions.len();
        if count == 0 {
            return Ok(());
        }
        while exchange.released() < positions.end as u64 {
            std::hint::spin_loop();
        }
        let mut distances = vec![0f32; count * k];
        let mut found = vec![0usize; count];
        let rows = exchange.answer_rows(positions.clone());
        runner.run_batch(
            exchange.queries(positions),
            rows,
            &mut distances,
            &mut found,
        )?;
        for (row, &found) in rows.chunks_exact_mut(k).zip(&found) {
            row[found..].fill(NO_ID);
        }
        exchange.mark_answered(count);
        Ok(())
    };
    on_each_runner(runners, |i, runner| {
        work(runner, (i * share).min(n)..((i + 1) * share).min(n))
    })
}

/// Runs `work(i, runner)` for every runner, each on a thread of its own
/// (on this thread when there is one runner); the first error wins, and a
/// panicking thread is the search's error.
fn on_each_runner<'r>(
    runners: &mut [QueryRunner<'r>],
    work: impl Fn(usize, &mut QueryRunner<'r>) -> Result<(), SlotError> + Sync,
) -> Result<(), SlotError> {
    if let [runner] = runners {
        return work(0, runner);
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = runners
            .iter_mut()
            .enumerate()
            .map(|(i, runner)| scope.spawn(move || work(i, runner)))
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle.join().unwrap_or_else(|_| {
                Err(SlotError {
                    call: "search.search",
                    status: annvil_abi::StatusCode::Panic.code(),
                    message: "a search thread panicked".into(),
                })
            })
        })
    })
}

/// Serves an evaluation session (see [`crate::protocol::Request`]).
pub fn serve(
    job: &EvaluateJob,
    events: &mut EventWriter,
    input: &mut dyn BufRead,
) -> Result<(), String> {
    let metric: Metric = job.metric.parse()?;
    let train = base_file::read(&job.base)?;
    let exchange = Exchange::open(&job.exchange)?;
    let slots = job.pipeline.load()?;
    events.emit(&Event::Item(EvaluateItem::Loaded));
    match next_request(input)? {
        Request::Build => {}
        Request::Finish => return Ok(()),
        other => return Err(format!("expected Build, got {other:?}")),
    }
    let base = BaseVectors::new(train.as_slice(), train.dim());
    let graph = Graph::build(
        slots.construction,
        &base,
        metric,
        &job.build_params,
        job.build_threads,
    )
    .map_err(|e| e.to_string())?;
    let (mut searcher, refiner) = slots
        .prepare_search(&job.pipeline, &base, &graph, metric)
        .map_err(|e| e.to_string())?;
    events.emit(&Event::Item(EvaluateItem::Built(BuiltReport {
        reported_bytes: (graph.memory_bytes() as u64)
            .saturating_add(searcher.memory_bytes() as u64)
            .saturating_add(refiner.as_ref().map_or(0, Refiner::memory_bytes) as u64),
        levels: graph.view().num_levels,
    })));
    // Only the search is pinned: the build ran on its own threads.
    if let Some(cpu) = job.pin_cpu {
        crate::cpu_affinity::pin_current_thread(cpu);
    }
    let candidates = job.pipeline.candidates_for(job.k, refiner.is_some());
    let threads = job.batch_threads.unwrap_or(1).max(1);
    let mut request = next_request(input)?;
    loop {
        let knobs = match request {
            Request::Configure(knobs) => knobs,
            Request::Finish => return Ok(()),
            other => return Err(format!("expected Configure, got {other:?}")),
        };
        searcher
            .configure(&knobs)
            .map_err(|e| format!("sweep point {knobs:?}: {e}"))?;
        events.emit(&Event::Item(EvaluateItem::Configured));
        // Contexts are made before any run, so no run pays for them.
        let mut runners = (0..threads)
            .map(|_| QueryRunner::new(&searcher, refiner.as_ref(), candidates))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("sweep point {knobs:?}: {e}"))?;
        request = loop {
            match next_request(input)? {
                Request::Run { queries } => {
                    if queries > exchange.capacity() {
                        return Err(format!("run of {queries} queries exceeds the exchange"));
                    }
                    let before: Option<u64> = runners.iter().map(QueryRunner::distance_count).sum();
                    let answered = if job.batch_threads.is_some() {
                        answer_batched(&exchange, &mut runners, queries)
                    } else {
                        answer(&exchange, &mut runners, queries)
                    };
                    answered.map_err(|e| format!("sweep point {knobs:?}: {e}"))?;
                    let after: Option<u64> = runners.iter().map(QueryRunner::distance_count).sum();
                    events.emit(&Event::Item(EvaluateItem::Ran(RanReport {
                        distance_computations: after.zip(before).map(|(a, b)| a.saturating_sub(b)),
                    })));
                }
                other => break other,
            }
        };
    }
}
