//! The per-cluster reduced-rank regression that scores a cluster's points.

use annvil_abi::{Error, Result};
use annvil_distance::{Isa, Kernels};
use faer::{Mat, MatRef};

/// Points per block of the factor `Vᵀ`: sixteen f32 lanes, one 512-bit
/// register.
const LANES: usize = 16;

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
    /// `Vᵀ` in blocks of [`LANES`] points: block `b`, row `k`, lane `t`
    /// holds `V[16b + t][k]`.
    v_blocks: Vec<f32>,
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
                v_blocks: Vec::new(),
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
        for k in 0..rank {
            a_rows.extend(a_t.row(k).iter().copied());
        }
        let mut v_blocks = vec![0f32; len.div_ceil(LANES) * rank * LANES];
        for i in 0..len {
            let (block, lane) = (i / LANES, i % LANES);
            for k in 0..rank {
                v_blocks[(block * rank + k) * LANES + lane] = v[(i, k)];
            }
        }
        Ok(RrrModel {
            rank,
            dim,
            len,
            a_t: a_rows,
            v_blocks,
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

    /// Bytes owned.
    pub fn memory_bytes(&self) -> usize {
        (self.a_t.capacity() + self.v_blocks.capacity()) * size_of::<f32>()
    }
}

/// `scores[i] = Σ_k projected[k]·V[i][k]` over the blocks of `Vᵀ`.
/// `unsafe` because a SIMD version may only run on a CPU with its features.
type AccumulateFn = unsafe fn(&[f32], &[f32], &mut [f32]);

/// Scores points with their [`RrrModel`]: `q·Aᵀ` with the dot kernel,
/// then the block products with code compiled for the widest [`Isa`] the
/// CPU has (chosen once). The SIMD versions fuse multiply and add, so
/// levels may differ in the last bits.
#[derive(Clone, Copy, Debug)]
pub struct Scorer {
    kernels: Kernels,
    // Invariant: runs on this CPU (checked by `for_isa`).
    accumulate: AccumulateFn,
}

impl Scorer {
    /// The scorer of [`Isa::best`].
    pub fn best() -> Scorer {
        Scorer::for_isa(Isa::best()).expect("the best level is supported")
    }

    /// The scorer of `isa`, or `None` where this CPU does not support it.
    pub fn for_isa(isa: Isa) -> Option<Scorer> {
        let kernels = Kernels::for_isa(isa)?;
        let accumulate: AccumulateFn = match isa {
            Isa::Scalar => accumulate_scalar,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => accumulate_avx2,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => accumulate_avx512,
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("{isa} is never supported off x86_64"),
        };
        Some(Scorer {
            kernels,
            accumulate,
        })
    }

    /// Writes the approximate inner products of `query` (`dim` values)
    /// with the points of `model` into `scores` (at least `len` values),
    /// using `projected` (at least `rank` values) as scratch for `q·A`.
    #[inline]
    pub fn scores(
        &self,
        model: &RrrModel,
        query: &[f32],
        projected: &mut [f32],
        scores: &mut [f32],
    ) {
        if model.rank == 0 {
            return;
        }
        let projected = &mut projected[..model.rank];
        for (p, a) in projected.iter_mut().zip(model.a_t.chunks_exact(model.dim)) {
            *p = self.kernels.dot(query, a);
        }
        // SAFETY: `accumulate` comes from `for_isa`, which checked its
        // level on this CPU.
        unsafe { (self.accumulate)(projected, &model.v_blocks, &mut scores[..model.len]) };
    }
}

/// The block products of [`AccumulateFn`], inlined into each level's
/// function so the compiler vectorises the 16 lanes for that level.
#[inline(always)]
fn accumulate_with<const FMA: bool>(projected: &[f32], blocks: &[f32], scores: &mut [f32]) {
    let block_len = projected.len() * LANES;
    for (block, out) in blocks.chunks_exact(block_len).zip(scores.chunks_mut(LANES)) {
        let mut sums = [0f32; LANES];
        for (&p, row) in projected.iter().zip(block.chunks_exact(LANES)) {
            for (sum, &v) in sums.iter_mut().zip(row) {
                *sum = if FMA {
                    p.mul_add(v, *sum)
                } else {
                    *sum + p * v
                };
            }
        }
        out.copy_from_slice(&sums[..out.len()]);
    }
}

fn accumulate_scalar(projected: &[f32], blocks: &[f32], scores: &mut [f32]) {
    accumulate_with::<false>(projected, blocks, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_avx2(projected: &[f32], blocks: &[f32], scores: &mut [f32]) {
    accumulate_with::<true>(projected, blocks, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn accumulate_avx512(projected: &[f32], blocks: &[f32], scores: &mut [f32]) {
    accumulate_with::<true>(projected, blocks, scores);
}

#[cfg(test)]
mod tests {
    use super::*;
    use annvil_core::SplitMix64;

    fn random(rows: usize, dim: usize, rng: &mut SplitMix64) -> Vec<f32> {
        (0..rows * dim)
            .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
            .collect()
    }

    /// Squared Frobenius error of the model's scores against `Q·Xᵀ`.
    fn error(model: &RrrModel, points: &[f32], queries: &[f32], dim: usize) -> f64 {
        let scorer = Scorer::best();
        let mut projected = vec![0f32; model.rank()];
        let mut scores = vec![0f32; model.len()];
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            scorer.scores(model, q, &mut projected, &mut scores);
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
    fn every_level_scores_alike_across_partial_blocks() {
        let mut rng = SplitMix64::new(3);
        let (dim, len) = (20, 37);
        let points = random(len, dim, &mut rng);
        let queries = random(100, dim, &mut rng);
        let model = RrrModel::fit(&points, &queries, dim, 7).unwrap();
        let query = &queries[..dim];
        let mut projected = vec![0f32; 7];
        let mut reference = vec![0f32; len];
        Scorer::for_isa(Isa::Scalar)
            .unwrap()
            .scores(&model, query, &mut projected, &mut reference);
        for isa in Isa::supported() {
            let mut scores = vec![f32::NAN; len + 3];
            Scorer::for_isa(isa)
                .unwrap()
                .scores(&model, query, &mut projected, &mut scores);
            for (got, want) in scores.iter().zip(&reference) {
                assert!((got - want).abs() < 1e-4, "{isa}: {got} vs {want}");
            }
            assert!(
                scores[len..].iter().all(|s| s.is_nan()),
                "{isa} wrote past len"
            );
        }
    }

    #[test]
    fn empty_cluster_scores_nothing() {
        let model = RrrModel::fit(&[], &[1.0, 2.0], 2, 4).unwrap();
        assert!(model.is_empty());
        assert_eq!(model.rank(), 0);
    }
}
