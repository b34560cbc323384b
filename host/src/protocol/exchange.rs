//! The shared memory of a timed run: a file in the worker's scratch
//! directory that the measurer and the worker both map.
//!
//! Layout: a header (magic, dim, k, capacity), two counters on their own
//! cache lines (`released`: queries the measurer has handed over in this
//! run; `answered`: queries the worker has answered), then `capacity`
//! query rows of `dim` f32 and `capacity` answer rows of `k` u32.
//!
//! A run: while the worker is idle, the measurer zeroes both counters and
//! fills the answers with [`NO_ID`]; it sends `Run`, reads the clock, and
//! streams the run's queries in, publishing each chunk by raising
//! `released`. The worker answers position `i` once `released > i`, writes
//! its ids into row `i` and raises `answered`. The measurer reads the clock
//! when `answered` reaches the run's size, then copies the ids out. The
//! measurer never reads a number from this memory except the counter and
//! the ids, and it validates both.

use std::fs::OpenOptions;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapMut;

use super::NO_ID;

const MAGIC: u64 = u64::from_le_bytes(*b"ANNVILX1");
const RELEASED: usize = 64;
const ANSWERED: usize = 128;
const QUERIES: usize = 4096;

/// One mapping of the exchange file.
#[derive(Debug)]
pub struct Exchange {
    map: MmapMut,
    dim: usize,
    k: usize,
    capacity: usize,
    answers: usize,
}

fn answers_offset(dim: usize, capacity: usize) -> usize {
    (QUERIES + capacity * dim * 4).next_multiple_of(64)
}

impl Exchange {
    /// Creates the file for runs of up to `capacity` queries (trusted side).
    pub fn create(path: &Path, dim: usize, k: usize, capacity: usize) -> std::io::Result<Exchange> {
        let answers = answers_offset(dim, capacity);
        let len = answers + capacity * k * 4;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(len as u64)?;
        // SAFETY: the file was just created by this process; the worker that
        // maps it too only ever changes it through the same layout, and this
        // side reads it only through atomics (see `counter`, `read_ids`).
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        for (i, v) in [MAGIC, dim as u64, k as u64, capacity as u64]
            .iter()
            .enumerate()
        {
            map[i * 8..(i + 1) * 8].copy_from_slice(&v.to_le_bytes());
        }
        Ok(Exchange {
            map,
            dim,
            k,
            capacity,
            answers,
        })
    }

    /// Maps a file made by [`Exchange::create`] (worker side).
    pub fn open(path: &Path) -> Result<Exchange, String> {
        let fail = |e: &dyn std::fmt::Display| format!("exchange {}: {e}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| fail(&e))?;
        // SAFETY: the measurer created the file with this layout and keeps it
        // mapped for the worker's whole life; see the module docs for who
        // writes which part when.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| fail(&e))?;
        let word = |i: usize| -> Option<usize> {
            let bytes = map.get(i * 8..(i + 1) * 8)?;
            usize::try_from(u64::from_le_bytes(bytes.try_into().ok()?)).ok()
        };
        if word(0).map(|m| m as u64) != Some(MAGIC) {
            return Err(fail(&"not an exchange file"));
        }
        let (dim, k, capacity) = match (word(1), word(2), word(3)) {
            (Some(d), Some(k), Some(c)) => (d, k, c),
            _ => return Err(fail(&"truncated header")),
        };
        let answers = answers_offset(dim, capacity);
        if map.len() < answers + capacity * k * 4 {
            return Err(fail(&"shorter than its header says"));
        }
        Ok(Exchange {
            map,
            dim,
            k,
            capacity,
            answers,
        })
    }

    /// Largest run.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Results per query.
    pub fn k(&self) -> usize {
        self.k
    }

    fn counter(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: offsets 64 and 128 are inside the header page, 8-byte
        // aligned (the map is page aligned), and live as long as `self`.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    fn answer_word(&self, index: usize) -> &AtomicU32 {
        assert!(index < self.capacity * self.k);
        // SAFETY: in bounds (asserted; the map holds capacity × k answer
        // words from `answers`, which is 64-byte aligned).
        unsafe { &*(self.map.as_ptr().add(self.answers + index * 4) as *const AtomicU32) }
    }

    /// Queries released so far in this run.
    pub fn released(&self) -> u64 {
        self.counter(RELEASED).load(Ordering::Acquire)
    }

    /// Queries answered so far in this run.
    pub fn answered(&self) -> u64 {
        self.counter(ANSWERED).load(Ordering::Acquire)
    }

    // ---- trusted side ----

    /// Prepares a run of `n` queries: counters to zero, answers to [`NO_ID`].
    pub fn reset(&self, n: usize) {
        self.counter(RELEASED).store(0, Ordering::Release);
        self.counter(ANSWERED).store(0, Ordering::Release);
        for i in 0..n * self.k {
            self.answer_word(i).store(NO_ID, Ordering::Relaxed);
        }
    }

    /// Writes query `position` of the run (not yet released).
    pub fn write_query(&self, position: usize, query: &[f32]) {
        assert!(position < self.capacity && query.len() == self.dim);
        let start = QUERIES + position * self.dim * 4;
        for (i, x) in query.iter().enumerate() {
            // SAFETY: in bounds (asserted above), 4-byte aligned; stored as
            // an atomic because the worker's process may read concurrently.
            let word = unsafe { &*(self.map.as_ptr().add(start + i * 4) as *const AtomicU32) };
            word.store(x.to_bits(), Ordering::Relaxed);
        }
    }

    /// Hands over every query before position `count`.
    pub fn release(&self, count: usize) {
        self.counter(RELEASED)
            .store(count as u64, Ordering::Release);
    }

    /// The ids of the first `n` positions, k per position.
    pub fn read_ids(&self, n: usize) -> Vec<u32> {
        (0..n * self.k)
            .map(|i| self.answer_word(i).load(Ordering::Relaxed))
            .collect()
    }

    // ---- worker side ----

    /// The queries at `positions`, row-major.
    pub fn queries(&self, positions: Range<usize>) -> &[f32] {
        assert!(positions.start <= positions.end && positions.end <= self.capacity);
        // SAFETY: in bounds (asserted), 4-byte aligned; the measurer writes
        // a position only before releasing it and not again in this run.
        unsafe {
            std::slice::from_raw_parts(
                self.map
                    .as_ptr()
                    .add(QUERIES + positions.start * self.dim * 4) as *const f32,
                positions.len() * self.dim,
            )
        }
    }

    /// The query at `position`.
    pub fn query(&self, position: usize) -> &[f32] {
        self.queries(position..position + 1)
    }

    /// The answer rows of `positions` (k ids each), for the worker to fill.
    #[allow(clippy::mut_from_ref, reason = "rows are disjoint per position")]
    pub fn answer_rows(&self, positions: Range<usize>) -> &mut [u32] {
        assert!(positions.start <= positions.end && positions.end <= self.capacity);
        // SAFETY: in bounds (asserted), 4-byte aligned; each position is
        // answered by exactly one worker thread, and the measurer reads the
        // rows only through atomics.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map
                    .as_ptr()
                    .add(self.answers + positions.start * self.k * 4) as *mut u32,
                positions.len() * self.k,
            )
        }
    }

    /// The answer row of `position`, for the worker to fill.
    pub fn answer_row(&self, position: usize) -> &mut [u32] {
        self.answer_rows(position..position + 1)
    }

    /// Records `count` more answered queries.
    pub fn mark_answered(&self, count: usize) {
        self.counter(ANSWERED)
            .fetch_add(count as u64, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_see_one_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let trusted = Exchange::create(&path, 3, 2, 4).unwrap();
        let worker = Exchange::open(&path).unwrap();
        assert_eq!((worker.capacity(), worker.k()), (4, 2));
        trusted.reset(4);
        trusted.write_query(1, &[1.0, 2.0, 3.0]);
        trusted.release(2);
        assert_eq!(worker.released(), 2);
        assert_eq!(worker.query(1), &[1.0, 2.0, 3.0]);
        worker.answer_row(1).copy_from_slice(&[7, 8]);
        worker.mark_answered(1);
        assert_eq!(trusted.answered(), 1);
        assert_eq!(trusted.read_ids(2), vec![NO_ID, NO_ID, 7, 8]);
    }

    #[test]
    fn a_foreign_or_short_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, [0u8; 64]).unwrap();
        assert!(
            Exchange::open(&path)
                .unwrap_err()
                .contains("not an exchange file")
        );
        Exchange::create(&path, 3, 2, 4).unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(4096).unwrap();
        assert!(Exchange::open(&path).unwrap_err().contains("shorter"));
    }
}
