//! What annvil's modules share, in one small crate at the bottom of the
//! module graph (it depends only on annvil-abi and annvil-distance):
//!
//! * [`Candidate`], a node and its distance, ordered by distance then id,
//!   and [`TopK`], the bounded selection of the `k` nearest of a stream;
//! * [`SplitMix64`], the one seeded generator every build draws from
//!   (with [`SplitMix64::keyed`] streams per node and iteration, and
//!   [`sample_indices`] for training samples);
//! * [`parallel_for`], the one work loop of the multi-threaded builds (a
//!   shared counter over scoped threads), with [`parallel_map`] and
//!   [`parallel_for_each_mut`] built on it;
//! * the graph layout: [`FixedDegree`], the flat count-prefixed neighbour
//!   array (plain or [`AtomicU32`](std::sync::atomic::AtomicU32) cells while
//!   a graph is built), [`Csr`], the compressed rows of the standard view,
//!   and [`Links`], one level as searches and builders read it.

mod candidate;
mod graph;
mod parallel;
mod rng;

pub use candidate::{Candidate, Reservoir, TopK};
pub use graph::{Csr, FixedDegree, Links, Slot, counted};
pub use parallel::{parallel_for, parallel_for_each_mut, parallel_map};
pub use rng::{SplitMix64, sample_indices};
