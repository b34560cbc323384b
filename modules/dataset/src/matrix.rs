//! Row-major f32 vectors.

use annvil_abi::Vectors;

use crate::error::{DataError, Result};

/// Row-major f32 vectors of one positive dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    dim: usize,
}

impl Matrix {
    /// Views `data` as rows of `dim` floats. Fails when `dim` is zero or
    /// `data.len()` is not a multiple of `dim`.
    pub fn new(data: Vec<f32>, dim: usize) -> Result<Matrix> {
        // One validation for the whole project: the ABI's vector view.
        Vectors::new(&data, dim).map_err(|e| DataError::Invalid(e.message))?;
        Ok(Matrix { data, dim })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of every row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`; panics when `i >= len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the rows in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.dim)
    }

    /// Iterates mutably over the rows in order.
    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.data.chunks_exact_mut(self.dim)
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, without copying.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The ABI's view of these vectors, to hand to a variant's slots.
    pub fn vectors(&self) -> Vectors<'_> {
        Vectors::new(&self.data, self.dim).expect("a Matrix always has a valid shape")
    }
}
