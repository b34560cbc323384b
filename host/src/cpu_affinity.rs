//! Which CPUs a thread may run on. In single-thread measurements the
//! worker's search thread is pinned to one CPU, and the measurer's thread
//! that feeds and watches it keeps off that CPU for the timed run, so the
//! two never take turns on one core (which would halve a run's QPS at
//! random).

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The calling thread (`sched_*affinity` with pid 0).
fn this_thread() -> Pid {
    Pid::from_raw(0)
}

/// The CPUs the calling thread may run on (none when they cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    sched_getaffinity(this_thread()).map_or_else(
        |_| Vec::new(),
        |set| {
            (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect()
        },
    )
}

/// Pins the calling thread to `cpu`; a CPU the thread may not use is
/// ignored (the thread keeps its CPUs).
pub fn pin_current_thread(cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(this_thread(), &set);
    }
}

/// Keeps the calling thread off one CPU until dropped, then gives it back
/// the CPUs it had. Does nothing when that CPU is the only one it may use.
pub struct AvoidCpu {
    previous: Option<CpuSet>,
}

impl AvoidCpu {
    /// Moves the calling thread off `cpu`.
    pub fn new(cpu: usize) -> AvoidCpu {
        let Ok(previous) = sched_getaffinity(this_thread()) else {
            return AvoidCpu { previous: None };
        };
        let mut others = previous;
        let others_left = others.unset(cpu).is_ok()
            && (0..CpuSet::count()).any(|c| others.is_set(c).unwrap_or(false));
        let moved = others_left && sched_setaffinity(this_thread(), &others).is_ok();
        AvoidCpu {
            previous: moved.then_some(previous),
        }
    }
}

impl Drop for AvoidCpu {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            let _ = sched_setaffinity(this_thread(), previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_off_a_cpu_until_the_guard_drops() {
        std::thread::spawn(|| {
            let before = allowed_cpus();
            let cpu = before[0];
            {
                let _off = AvoidCpu::new(cpu);
                let during = allowed_cpus();
                if before.len() > 1 {
                    assert!(!during.contains(&cpu), "{during:?}");
                    assert_eq!(during.len(), before.len() - 1);
                } else {
                    assert_eq!(during, before, "the only CPU is kept");
                }
            }
            assert_eq!(allowed_cpus(), before);
            pin_current_thread(cpu);
            assert_eq!(allowed_cpus(), [cpu]);
        })
        .join()
        .unwrap();
    }
}
