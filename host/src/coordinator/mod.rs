//! The trusted side: the coordinator (`host evaluate`: schedule, score,
//! store) and the measurer it drives workers through, inside the sandbox.
//! Nothing here loads variant code.

pub mod evaluate;
pub mod executor;
pub mod measure_lock;
pub mod measurer;
pub mod sandbox;
