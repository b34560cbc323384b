//! The global dimensionality reduction: a projection onto the leading
//! eigenvectors of the data's (uncentred) second-moment matrix.

use annvil_abi::{Error, Result, Vectors};
use annvil_core::{SplitMix64, parallel_map, sample_indices};
use annvil_distance::Kernels;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// Rows per block of the multi-threaded matrix products.
const BLOCK_ROWS: usize = 2048;

/// A linear map from `dim` to `out_dim` dimensions whose rows are the
/// `out_dim` leading eigenvectors of `XᵀX` over a sample `X` of the data.
///
/// The second moment is not centred, as in LoRANN: the projection keeps the
/// subspace that best preserves the vectors themselves (and so their inner
/// products with queries from the same distribution), mean included.
#[derive(Clone, Debug)]
pub struct Projection {
    /// `out_dim × dim`, row-major, leading direction first.
    rows: Vec<f32>,
    dim: usize,
    out_dim: usize,
    kernels: Kernels,
}

impl Projection {
    /// Fits the projection to `out_dim` dimensions on a uniform sample of at
    /// most `sample` vectors drawn with `seed`, on up to `threads` threads.
    /// Panics unless `1 <= out_dim <= vectors.dim()`.
    pub fn fit(
        vectors: Vectors<'_>,
        out_dim: usize,
        sample: usize,
        seed: u64,
        threads: usize,
    ) -> Result<Projection> {
        let dim = vectors.dim();
        assert!(
            (1..=dim).contains(&out_dim),
            "cannot project {dim} to {out_dim} dimensions"
        );
        let ids = sample_indices(vectors.len(), sample, &mut SplitMix64::new(seed));
        let blocks = ids.len().div_ceil(BLOCK_ROWS);
        let partial = parallel_map(blocks, threads, |b| {
            let rows = &ids[b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(ids.len())];
            let mut block = Vec::with_capacity(rows.len() * dim);
            for &id in rows {
                block.extend_from_slice(vectors.row(id as usize));
            }
            let x = MatRef::from_row_major_slice(&block, rows.len(), dim);
            let mut gram = Mat::<f32>::zeros(dim, dim);
            matmul(&mut gram, Accum::Replace, x.transpose(), x, 1.0, Par::Seq);
            gram
        });
        let mut gram = Mat::<f32>::zeros(dim, dim);
        for block in &partial {
            gram += block;
        }
        let eigen = gram
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::internal(format!("PCA eigendecomposition failed: {e:?}")))?;
        // Eigenvalues come in nondecreasing order: the leading directions
        // are the last columns.
        let u = eigen.U();
        let mut rows = Vec::with_capacity(out_dim * dim);
        for k in 0..out_dim {
            rows.extend(u.col(dim - 1 - k).iter().copied());
        }
        Ok(Projection {
            rows,
            dim,
            out_dim,
            kernels: Kernels::best(),
        })
    }

    /// Dimension of the input vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Dimension of the projected vectors.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Direction `k` (unit length; `k = 0` the leading one).
    pub fn direction(&self, k: usize) -> &[f32] {
        &self.rows[k * self.dim..(k + 1) * self.dim]
    }

    /// Projects one vector into `out` (`out_dim` values).
    pub fn apply(&self, vector: &[f32], out: &mut [f32]) {
        for (o, direction) in out.iter_mut().zip(self.rows.chunks_exact(self.dim)) {
            *o = self.kernels.dot(vector, direction);
        }
    }

    /// Projects every vector, row-major (`vectors.len() × out_dim`), on up
    /// to `threads` threads.
    pub fn apply_all(&self, vectors: Vectors<'_>, threads: usize) -> Vec<f32> {
        let p = MatRef::from_row_major_slice(&self.rows, self.out_dim, self.dim);
        let n = vectors.len();
        let blocks = parallel_map(n.div_ceil(BLOCK_ROWS), threads, |b| {
            let start = b * BLOCK_ROWS;
            let count = BLOCK_ROWS.min(n - start);
            let x = MatRef::from_row_major_slice(
                &vectors.as_slice()[start * self.dim..(start + count) * self.dim],
                count,
                self.dim,
            );
            let mut out = vec![0f32; count * self.out_dim];
            let dst = MatMut::from_row_major_slice_mut(&mut out, count, self.out_dim);
            matmul(dst, Accum::Replace, x, p.transpose(), 1.0, Par::Seq);
            out
        });
        blocks.concat()
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        self.rows.capacity() * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_dominant_subspace_and_projects_consistently() {
        // Points in the span of e0 and e2 (large) plus a little e1 noise.
        let mut rng = SplitMix64::new(5);
        let mut data = Vec::new();
        for _ in 0..500 {
            let (a, b, c) = (rng.unit() - 0.5, rng.unit() - 0.5, rng.unit() - 0.5);
            data.extend_from_slice(&[10.0 * a as f32, 0.01 * b as f32, 5.0 * c as f32, 0.0]);
        }
        let vectors = Vectors::new(&data, 4).unwrap();
        let p = Projection::fit(vectors, 2, 10_000, 1, 2).unwrap();
        assert_eq!((p.dim(), p.out_dim()), (4, 2));
        assert!(p.direction(0)[0].abs() > 0.999, "{:?}", p.direction(0));
        assert!(p.direction(1)[2].abs() > 0.999, "{:?}", p.direction(1));
        let all = p.apply_all(vectors, 2);
        let mut one = [0f32; 2];
        for (i, row) in vectors.rows().enumerate() {
            p.apply(row, &mut one);
            for k in 0..2 {
                assert!((one[k] - all[i * 2 + k]).abs() < 1e-4);
            }
        }
    }
}
