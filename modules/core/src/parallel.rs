//! The one work loop of the multi-threaded builds: scoped threads taking
//! the next index off a shared counter, so uneven items balance out, and
//! the two shapes built on it (an ordered map, and a pass over mutable
//! items).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

/// Runs `body(i, scratch)` for every `i` in `0..count` on up to `threads`
/// scoped threads (the calling thread included). Each thread makes its own
/// scratch with `scratch` and takes the next index from a shared counter,
/// so uneven items balance out. With one thread the indices run in order.
/// A panic in any thread is re-raised here.
pub fn parallel_for<S>(
    threads: usize,
    count: usize,
    scratch: impl Fn() -> S + Sync,
    body: impl Fn(usize, &mut S) + Sync,
) {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut own = scratch();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return;
            }
            body(i, &mut own);
        }
    };
    let workers = threads.clamp(1, count.max(1));
    thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(work);
        }
        work();
    });
}

/// Most indices a worker takes at once in [`parallel_map`]: enough to make
/// the shared counter cheap.
const MAX_BLOCK: usize = 64;

/// `f(i)` for every `i` in `0..count`, in index order, computed on up to
/// `threads` threads (the caller's among them). Workers take blocks of
/// indices through [`parallel_for`] (blocks of at most 64 indices, small
/// enough to give each thread about 16), so uneven items balance; the
/// result never depends on the thread count or the timing.
pub fn parallel_map<T: Send>(
    count: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.max(1);
    let block = (count / (threads * 16)).clamp(1, MAX_BLOCK);
    let blocks: Vec<Mutex<Vec<T>>> = (0..count.div_ceil(block))
        .map(|_| Mutex::new(Vec::new()))
        .collect();
    parallel_for(
        threads,
        blocks.len(),
        || (),
        |b, ()| {
            let start = b * block;
            let values = (start..(start + block).min(count)).map(&f).collect();
            // Each block is taken once, so its lock is never contended.
            *blocks[b].lock().unwrap_or_else(PoisonError::into_inner) = values;
        },
    );
    blocks
        .into_iter()
        .flat_map(|values| values.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// Runs `body(i, &mut items[i])` for every item on up to `threads` threads,
/// the items split into one contiguous run per thread: for cheap, even
/// per-item steps that need their item mutably.
pub fn parallel_for_each_mut<T: Send>(
    threads: usize,
    items: &mut [T],
    body: impl Fn(usize, &mut T) + Sync,
) {
    let run = items.len().div_ceil(threads.max(1)).max(1);
    let runs: Vec<Mutex<&mut [T]>> = items.chunks_mut(run).map(Mutex::new).collect();
    parallel_for(
        threads,
        runs.len(),
        || (),
        |part, ()| {
            // Each run is taken once, so its lock is never contended.
            let mut items = runs[part].lock().unwrap_or_else(PoisonError::into_inner);
            for (offset, item) in items.iter_mut().enumerate() {
                body(part * run + offset, item);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once() {
        for threads in [0, 1, 3] {
            let seen = Mutex::new(Vec::new());
            parallel_for(threads, 100, || (), |i, ()| seen.lock().unwrap().push(i));
            let mut seen = seen.into_inner().unwrap();
            if threads <= 1 {
                assert_eq!(seen, (0..100).collect::<Vec<_>>());
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
        }
        parallel_for(2, 0, || (), |_, ()| unreachable!("no items"));
    }

    #[test]
    fn parallel_map_keeps_index_order_for_any_thread_count() {
        let expected: Vec<usize> = (0..1000).map(|i| i * i).collect();
        for threads in [0, 1, 2, 3, 8] {
            assert_eq!(parallel_map(1000, threads, |i| i * i), expected);
        }
        assert!(parallel_map(0, 4, |i| i).is_empty());
    }

    #[test]
    fn each_item_is_visited_once_with_its_index() {
        for threads in [0, 1, 3, 8] {
            let mut items = vec![0usize; 50];
            parallel_for_each_mut(threads, &mut items, |i, item| *item += i + 1);
            assert_eq!(items, (1..=50).collect::<Vec<_>>());
        }
        parallel_for_each_mut(2, &mut [] as &mut [u8], |_, _| unreachable!("no items"));
    }
}
