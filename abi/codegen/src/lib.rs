//! No library code: see `tests/bindings.rs`, which compares (or, with `ANNVIL_REGEN_BINDINGS=1`, rewrites) `abi/src/bindings.rs`.
