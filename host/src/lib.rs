//! The annvil host: builds variant libraries, checks and evaluates them in
//! isolated worker processes, scores and stores the results, and writes
//! leaderboards. See ARCHITECTURE.md for the map of modules and data flow.
//!
//! Trusted side: [`cli`], [`variant`], [`compile`], [`prepare`],
//! [`python_env`], [`coordinator`] (the sandbox, the measurer, `host evaluate`) and
//! [`publish`] (the leaderboards' files). What the
//! two sides say to each other: [`protocol`]. Worker side (the only code
//! that loads variant libraries, untrusted): [`worker`], and the worker
//! halves of [`check`] and [`describe`]. Thread placement, which both
//! sides use in timed runs: [`cpu_affinity`].

pub mod check;
pub mod cli;
pub mod compile;
pub mod coordinator;
pub mod cpu_affinity;
pub mod describe;
pub mod evolve;
pub mod judge;
pub mod prepare;
pub mod protocol;
pub mod publish;
pub mod python_env;
pub mod scaffold;
pub mod variant;
pub mod watch;
pub mod worker;
