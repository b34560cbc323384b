//! The per-cluster reduced-rank regression that scores a cluster's points.

use annvil_abi::{Error, Result};
use annvil_distance::Kernels;
use faer::{Mat, MatRef};

/// A rank-`r` linear model of the inner products between a query and the
/// `len` points of one cluster: `scores(q) = (q·A)·Vᵀ ≈ q·Xᵀ`, stored as
/// the two factors `Aᵀ` (`r × dim`) and `Vᵀ` (`r × len`).
///
/// # The fit (reduced-rank regression)
///
/// With training queries `Q` (`m × dim`) and the cluster's points `X`
/// (`len × dim`), the targets are `Y = Q·Xᵀ`; ordinary least squares
/// recovers `B = Xᵀ` exactly, and the reduced-rank solution projects it
/// onto the top-`r` right singular vectors `V` of the fitted `Y`:
/// `B_r = Xᵀ·V·Vᵀ`, so `A = Xᵀ·V`. Among all rank-`r` linear models it
/// minimises the squared error of the scores on the training queries.
///
/// `V` is computed without forming `Y` (`m` may be large): with the thin QR
/// decomposition `Q = Ψ·R`, `YᵀY = X·RᵀR·Xᵀ`, so the right singular vectors
/// of `Y` are the left singular vectors of the small `Z = X·Rᵀ`
/// (`len × min(m, dim)`), from one thin SVD.
#[derive(Clone, Debug)]
pub struct RrrModel {
    rank: usize,
    dim: usize,
    len: usize,
    /// `Aᵀ = VᵀX`: `rank × dim`, row-major.
    a_t: Vec<f32>,
    /// `Vᵀ`: `rank × len`, row-major (one score contribution per row).
    v_t: Vec<f32>,
}

impl RrrModel {
    /// Fits the model of the row-major `points` (`len × dim`) on the
    /// row-major training `queries` (`m × dim`), of rank
    /// `min(rank, len, m, dim)`.
    pub fn fit(points: &[f32], queries: &[f32], dim: usize, rank: usize) -> Result<RrrModel> {
        let len = points.len() / dim;
        let m = queries.len() / dim;
        let x = MatRef::from_row_major_slice(points, len, dim);
        let q = MatRef::from_row_major_slice(queries, m, dim);
        let rank = rank.min(len).min(m).min(dim);
        if rank == 0 {
            return Ok(RrrModel {
                rank,
                dim,
                len,
                a_t: Vec::new(),
                v_t: Vec::new(),
            });
        }
        let qr = q.qr();
        let z: Mat<f32> = x * qr.thin_R().transpose();
        let svd = z
            .thin_svd()
            .map_err(|e| Error::internal(format!("RRR: SVD did not converge: {e:?}")))?;
        // Singular values come in nonincreasing order: V is the first
        // `rank` columns of U.
        let v = svd.U().subcols(0, rank);
        let a_t: Mat<f32> = v.transpose() * x;
        let mut a_rows = Vec::with_capacity(rank * dim);
        let mut v_rows = Vec::with_capacity(rank * len);
        for k in 0..rank {
            a_rows.extend(a_t.row(k).iter().copied());
            v_rows.extend(v.col(k).iter().copied());
        }
        Ok(RrrModel {
            rank,
            dim,
            len,
            a_t: a_rows,
            v_t: v_rows,
        })
    }

    /// The rank of the model.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of points scored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the model scores no point.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the approximate inner products of `query` (`dim` values) with
    /// the points into `scores` (`len` values), using `projected` (`rank`
    /// values) as scratch for `q·A`.
    #[inline]
    pub fn scores(
        &self,
        kernels: &Kernels,
        query: &[f32],
        projected: &mut [f32],
        scores: &mut [f32],
    ) {
        let projected = &mut projected[..self.rank];
        for (p, a) in projected.iter_mut().zip(self.a_t.chunks_exact(self.dim)) {
            *p = kernels.dot(query, a);
        }
        let scores = &mut scores[..self.len];
        scores.fill(0.0);
        for (&p, v) in projected.iter().zip(self.v_t.chunks_exact(self.len)) {
            for (s, &x) in scores.iter_mut().zip(v) {
                *s += p * x;
            }
        }
    }

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        (self.a_t.capacity() + self.v_t.capacity()) * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annvil_ivf::SplitMix64;

    fn random(rows: usize, dim: usize, rng: &mut SplitMix64) -> Vec<f32> {
        (0..rows * dim).map(|_| (rng.unit() * 2.0 - 1.0) as f32).collect()
    }

    /// Squared Frobenius error of the model's scores against `Q·Xᵀ`.
    fn error(model: &RrrModel, points: &[f32], queries: &[f32], dim: usize) -> f64 {
        let kernels = Kernels::best();
        let mut projected = vec![0f32; model.rank()];
        let mut scores = vec![0f32; model.len()];
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            model.scores(&kernels, q, &mut projected, &mut scores);
            for (x, &s) in points.chunks_exact(dim).zip(&scores) {
                let exact: f32 = q.iter().zip(x).map(|(a, b)| a * b).sum();
                total += f64::from(exact - s).powi(2);
            }
        }
        total
    }

    #[test]
    fn full_rank_is_exact() {
        let mut rng = SplitMix64::new(1);
        let (dim, len) = (12, 9);
        let points = random(len, dim, &mut rng);
        let queries = random(40, dim, &mut rng);
        let model = RrrModel::fit(&points, &queries, dim, 64).unwrap();
        assert_eq!(model.rank(), len);
        let fresh = random(10, dim, &mut rng);
        assert!(error(&model, &points, &fresh, dim) < 1e-8);
    }

    #[test]
    fn rank_r_error_is_the_eckart_young_optimum_and_shrinks_with_r() {
        let mut rng = SplitMix64::new(2);
        let (dim, len, m) = (16, 30, 200);
        let points = random(len, dim, &mut rng);
        let queries = random(m, dim, &mut rng);
        // The best rank-r error on the training queries is the sum of the
        // trailing squared singular values of Y = Q·Xᵀ.
        let y: Mat<f32> = MatRef::from_row_major_slice(&queries, m, dim)
            * MatRef::from_row_major_slice(&points, len, dim).transpose();
        let sigma: Vec<f64> = y
            .thin_svd()
            .unwrap()
            .S()
            .column_vector()
            .iter()
            .map(|&s| f64::from(s))
            .collect();
        let mut last = f64::INFINITY;
        for rank in [1, 2, 4, 8, 12, 16] {
            let model = RrrModel::fit(&points, &queries, dim, rank).unwrap();
            let got = error(&model, &points, &queries, dim);
            let optimum: f64 = sigma[rank..].iter().map(|s| s * s).sum();
            let total: f64 = sigma.iter().map(|s| s * s).sum();
            assert!(
                (got - optimum).abs() <= 1e-4 * total,
                "rank {rank}: error {got}, optimum {optimum}"
            );
            assert!(got < last, "rank {rank}: error {got} not below {last}");
            last = got;
        }
        // Y has rank 16 (= dim): rank 16 is exact.
        assert!(last <= 1e-6 * sigma.iter().map(|s| s * s).sum::<f64>());
    }

    #[test]
    fn empty_cluster_scores_nothing() {
        let model = RrrModel::fit(&[], &[1.0, 2.0], 2, 4).unwrap();
        assert!(model.is_empty());
        assert_eq!(model.rank(), 0);
    }
}
