//! The work loop of the multi-threaded builds.

use std::sync::atomic::{AtomicUsize, Ordering};
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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
}
