//! annvil host library (work in progress).
