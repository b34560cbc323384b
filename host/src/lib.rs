//! The annvil host: builds variant libraries, checks and evaluates them in
//! isolated worker processes, scores and stores the results, and writes
//! leaderboards. See ARCHITECTURE.md for the map of modules and data flow.
//!
//! Coordinator side: [`cli`], [`variant`], [`compile`], [`prepare`],
//! [`isolate`], [`evaluate`]. Worker side (the only code that loads variant libraries):
//! [`worker`], [`loader`], [`pipeline`], [`measure`], and the worker halves of
//! [`check`] and [`describe`].

pub mod check;
pub mod cli;
pub mod compile;
pub mod describe;
pub mod evaluate;
pub mod evolve;
pub mod isolate;
pub mod loader;
pub mod measure;
pub mod pipeline;
pub mod prepare;
pub mod report;
pub mod scaffold;
pub mod variant;
pub mod worker;
