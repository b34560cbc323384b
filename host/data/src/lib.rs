//! Datasets for the annvil host (work in progress).
