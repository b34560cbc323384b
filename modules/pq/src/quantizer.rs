//! 4-bit product quantization: the vector is cut into subspaces of a few
//! dimensions each, and each piece is replaced by the nearest of 16
//! centroids learnt for its subspace, so a code is one 4-bit value per
//! subspace. A query is compared with every code through one table of 16
//! partial distances per subspace.

use annvil_abi::{Error, Metric, Result, Vectors};
use annvil_core::{SplitMix64, sample_indices};
use annvil_ivf::KMeans;

/// Centroids per subspace: what one 4-bit code can name.
pub const CENTROIDS: usize = 16;

/// The subspace count the kernels need a multiple of (the AVX-512 kernel
/// reads four subspaces' codes and tables per step); the padding
/// subspaces have all-zero tables.
pub const SUBSPACE_GROUP: usize = 4;

/// Most base vectors the centroids are trained on.
const TRAINING_SAMPLE: usize = 4096;

/// Lloyd iterations of each subspace's k-means.
const TRAINING_ITERATIONS: usize = 10;

/// Coordinate-descent passes of the anisotropic encoding.
pub const ANISOTROPIC_PASSES: usize = 3;

/// Largest dimensions per subspace accepted.
pub const MAX_SUB_DIM: usize = 16;

/// A trained 4-bit product quantizer.
#[derive(Clone, Debug)]
pub struct ProductQuantizer {
    dim: usize,
    sub_dim: usize,
    subspaces: usize,
    /// The centroids by column, `subspaces × sub_dim × CENTROIDS` values,
    /// so that a query's table is built 16 entries at a time; the
    /// dimensions past `dim` in the last subspace are zero.
    columns: Vec<f32>,
}

impl ProductQuantizer {
    /// Learns 16 centroids per subspace of `sub_dim` dimensions (the last
    /// one zero-padded) by k-means on a sample of `base` (the same sample
    /// for every subspace, seeded by `seed`), on one thread. Fails when
    /// `base` is empty or `sub_dim` is outside `1..=16`.
    pub fn train(base: Vectors<'_>, sub_dim: usize, seed: u64) -> Result<ProductQuantizer> {
        if !(1..=MAX_SUB_DIM).contains(&sub_dim) {
            return Err(Error::invalid(format!(
                "parameter `sub_dim` must be in 1..={MAX_SUB_DIM}, not {sub_dim}"
            )));
        }
        if base.is_empty() {
            return Err(Error::invalid("product quantization needs base vectors"));
        }
        let dim = base.dim();
        let subspaces = dim.div_ceil(sub_dim);
        let sample = sample_indices(base.len(), TRAINING_SAMPLE, &mut SplitMix64::new(seed));
        let mut centroids = Vec::with_capacity(subspaces * CENTROIDS * sub_dim);
        let mut pieces = Vec::with_capacity(sample.len() * sub_dim);
        for m in 0..subspaces {
            pieces.clear();
            for &row in &sample {
                push_piece(base.row(row as usize), m, sub_dim, &mut pieces);
            }
            let clustering = KMeans {
                clusters: CENTROIDS,
                iterations: TRAINING_ITERATIONS,
                sample: sample.len(),
                seed: seed ^ m as u64,
            }
            .train(
                Vectors::new(&pieces, sub_dim).expect("whole pieces"),
                Metric::L2,
                1,
            );
            let trained = clustering.centroids.as_slice();
            centroids.extend_from_slice(trained);
            // Fewer samples than centroids: repeat the first, which no
            // code then names.
            let missing = CENTROIDS * sub_dim - trained.len();
            centroids.extend(trained[..sub_dim].iter().cycle().take(missing));
        }
        let mut columns = Vec::with_capacity(centroids.len());
        for group in centroids.chunks_exact(CENTROIDS * sub_dim) {
            for d in 0..sub_dim {
                columns.extend((0..CENTROIDS).map(|c| group[c * sub_dim + d]));
            }
        }
        Ok(ProductQuantizer {
            dim,
            sub_dim,
            subspaces,
            columns,
        })
    }

    /// Dimensions of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Dimensions per subspace.
    pub fn sub_dim(&self) -> usize {
        self.sub_dim
    }

    /// Number of subspaces, i.e. 4-bit values per code.
    pub fn subspaces(&self) -> usize {
        self.subspaces
    }

    /// The subspace count rounded up to [`SUBSPACE_GROUP`]: the length of
    /// a query table in groups of 16 entries.
    pub fn padded_subspaces(&self) -> usize {
        self.subspaces.next_multiple_of(SUBSPACE_GROUP)
    }

    /// The centroids of subspace `m`, one row each.
    fn codebook(&self, m: usize) -> Vec<f32> {
        let columns = &self.columns[m * self.sub_dim * CENTROIDS..][..self.sub_dim * CENTROIDS];
        (0..CENTROIDS)
            .flat_map(|c| columns.chunks_exact(CENTROIDS).map(move |column| column[c]))
            .collect()
    }

    /// The codes of every vector of `vectors`: row `i` of the result holds
    /// one value in `0..16` per subspace (`subspaces()` bytes per row).
    pub fn encode_all(&self, vectors: Vectors<'_>) -> Vec<u8> {
        let mut codes = vec![0u8; vectors.len() * self.subspaces];
        let mut pieces = Vec::with_capacity(vectors.len() * self.sub_dim);
        for m in 0..self.subspaces {
            pieces.clear();
            for row in vectors.rows() {
                push_piece(row, m, self.sub_dim, &mut pieces);
            }
            let centroids = annvil_ivf::Centroids::new(self.codebook(m), self.sub_dim, Metric::L2);
            let nearest = centroids.assign(
                Vectors::new(&pieces, self.sub_dim).expect("whole pieces"),
                1,
            );
            for (row, c) in nearest.into_iter().enumerate() {
                codes[row * self.subspaces + m] = c as u8;
            }
        }
        codes
    }

    /// The codes of `vectors` like [`ProductQuantizer::encode_all`], but
    /// each chosen to minimise the anisotropic loss `‖e‖² + (parallel_weight
    /// − 1)·<e, u>²` of its error `e`, where `u` is the unit direction of
    /// the same row of `directions` (ScaNN's score-aware loss: an error
    /// along the data point moves its inner products with the queries near
    /// it most). Coordinate descent over the subspaces from the nearest
    /// centroids, [`ANISOTROPIC_PASSES`] passes. `parallel_weight` 1 gives
    /// the nearest centroids.
    pub fn encode_all_anisotropic(
        &self,
        vectors: Vectors<'_>,
        directions: Vectors<'_>,
        parallel_weight: f32,
    ) -> Vec<u8> {
        assert_eq!(vectors.len(), directions.len(), "one direction per vector");
        assert_eq!(
            directions.dim(),
            self.dim,
            "directions of the wrong dimension"
        );
        let mut codes = self.encode_all(vectors);
        if parallel_weight == 1.0 {
            return codes;
        }
        let extra = parallel_weight - 1.0;
        let stride = self.sub_dim * CENTROIDS;
        // Per subspace and centroid: the squared error and the error
        // along the direction, for the row being encoded.
        let mut errors = vec![0f32; self.subspaces * CENTROIDS];
        let mut along = vec![0f32; self.subspaces * CENTROIDS];
        let (mut piece, mut unit) = (Vec::new(), Vec::new());
        for ((row, direction), code) in vectors
            .rows()
            .zip(directions.rows())
            .zip(codes.chunks_exact_mut(self.subspaces))
        {
            let norm = annvil_distance::dot(direction, direction).sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                continue;
            }
            for m in 0..self.subspaces {
                piece.clear();
                unit.clear();
                push_piece(row, m, self.sub_dim, &mut piece);
                push_piece(direction, m, self.sub_dim, &mut unit);
                let columns = &self.columns[m * stride..][..stride];
                let errors = &mut errors[m * CENTROIDS..][..CENTROIDS];
                let along = &mut along[m * CENTROIDS..][..CENTROIDS];
                errors.fill(0.0);
                along.fill(0.0);
                for ((&x, &u), column) in
                    piece.iter().zip(&unit).zip(columns.chunks_exact(CENTROIDS))
                {
                    for ((error, parallel), &c) in
                        errors.iter_mut().zip(along.iter_mut()).zip(column)
                    {
                        *error += (x - c) * (x - c);
                        *parallel += (x - c) * u / norm;
                    }
                }
            }
            let mut total: f32 = code
                .iter()
                .enumerate()
                .map(|(m, &c)| along[m * CENTROIDS + c as usize])
                .sum();
            for _ in 0..ANISOTROPIC_PASSES {
                for (m, c) in code.iter_mut().enumerate() {
                    let others = total - along[m * CENTROIDS + *c as usize];
                    let loss = |j: usize| {
                        let parallel = others + along[m * CENTROIDS + j];
                        errors[m * CENTROIDS + j] + extra * parallel * parallel
                    };
                    let best = (0..CENTROIDS)
                        .min_by(|&a, &b| loss(a).total_cmp(&loss(b)))
                        .expect("16 centroids");
                    *c = best as u8;
                    total = others + along[m * CENTROIDS + best];
                }
            }
        }
        codes
    }

    /// Fills `table` (`padded_subspaces() × 16` values) with the partial
    /// distances of `query` to every centroid, subspace by subspace, in
    /// `metric`: squared L2 for [`Metric::L2`], the negated inner product
    /// otherwise (so that the sum over subspaces orders codes as the
    /// metric orders their vectors, up to a constant). Padding subspaces
    /// get zeros.
    pub fn distance_table(&self, query: &[f32], metric: Metric, table: &mut [f32]) {
        assert_eq!(query.len(), self.dim, "query of the wrong dimension");
        assert_eq!(table.len(), self.padded_subspaces() * CENTROIDS);
        table.fill(0.0);
        let columns = self.columns.chunks_exact(self.sub_dim * CENTROIDS);
        for (m, (entries, columns)) in table.chunks_exact_mut(CENTROIDS).zip(columns).enumerate() {
            let piece =
                &query[(m * self.sub_dim).min(self.dim)..((m + 1) * self.sub_dim).min(self.dim)];
            // Dimensions past the end are zero in the query and in every
            // centroid, and add nothing.
            for (&q, column) in piece.iter().zip(columns.chunks_exact(CENTROIDS)) {
                match metric {
                    Metric::L2 => {
                        for (entry, &x) in entries.iter_mut().zip(column) {
                            *entry += (q - x) * (q - x);
                        }
                    }
                    Metric::Angular | Metric::InnerProduct => {
                        for (entry, &x) in entries.iter_mut().zip(column) {
                            *entry -= q * x;
                        }
                    }
                }
            }
        }
    }

    /// Bytes of memory the quantizer owns.
    pub fn memory_bytes(&self) -> usize {
        self.columns.capacity() * size_of::<f32>()
    }
}

/// Appends subspace `m` of `vector` (`sub_dim` values, zero past its end).
fn push_piece(vector: &[f32], m: usize, sub_dim: usize, out: &mut Vec<f32>) {
    let start = (m * sub_dim).min(vector.len());
    let end = ((m + 1) * sub_dim).min(vector.len());
    out.extend_from_slice(&vector[start..end]);
    out.extend(std::iter::repeat_n(0.0, sub_dim - (end - start)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_nearest_centroid_and_tables_sum_to_the_distance_to_it() {
        let mut rng = fastrand::Rng::with_seed(3);
        let dim = 10;
        let data: Vec<f32> = (0..500 * dim).map(|_| rng.f32()).collect();
        let base = Vectors::new(&data, dim).unwrap();
        let pq = ProductQuantizer::train(base, 4, 7).unwrap();
        assert_eq!((pq.subspaces(), pq.padded_subspaces()), (3, 4));
        let codes = pq.encode_all(base);
        let query: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
        let mut table = vec![0.0; pq.padded_subspaces() * CENTROIDS];
        pq.distance_table(&query, Metric::L2, &mut table);
        assert!(table[3 * CENTROIDS..].iter().all(|&t| t == 0.0));
        for (row, code) in data.chunks_exact(dim).zip(codes.chunks_exact(3)) {
            let mut decoded = Vec::new();
            for (m, &c) in code.iter().enumerate() {
                let mut piece = Vec::new();
                push_piece(row, m, 4, &mut piece);
                let own =
                    annvil_distance::l2_squared(&piece, &pq.codebook(m)[c as usize * 4..][..4]);
                for other in 0..CENTROIDS {
                    let theirs =
                        annvil_distance::l2_squared(&piece, &pq.codebook(m)[other * 4..][..4]);
                    assert!(
                        own <= theirs,
                        "subspace {m}: centroid {c} is not the nearest"
                    );
                }
                decoded.extend_from_slice(&pq.codebook(m)[c as usize * 4..][..4]);
            }
            decoded.truncate(dim);
            assert!(
                decoded[8..].len() == 2,
                "the last piece is cut to the dimension"
            );
            let estimate: f32 = code
                .iter()
                .enumerate()
                .map(|(m, &c)| table[m * CENTROIDS + c as usize])
                .sum();
            let exact = annvil_distance::l2_squared(&query, &decoded);
            assert!((estimate - exact).abs() < 1e-4, "{estimate} vs {exact}");
        }
        pq.distance_table(&query, Metric::Angular, &mut table);
        let c = codes[0] as usize;
        let dot: f32 = query[..4]
            .iter()
            .zip(&pq.codebook(0)[c * 4..][..4])
            .map(|(a, b)| a * b)
            .sum();
        assert!((table[c] + dot).abs() < 1e-6);
    }

    #[test]
    fn anisotropic_codes_lower_their_loss_and_the_error_along_the_point() {
        let mut rng = fastrand::Rng::with_seed(9);
        let dim = 12;
        let data: Vec<f32> = (0..800 * dim).map(|_| rng.f32() - 0.5).collect();
        let directions: Vec<f32> = (0..800 * dim).map(|_| rng.f32() - 0.5).collect();
        let (base, towards) = (
            Vectors::new(&data, dim).unwrap(),
            Vectors::new(&directions, dim).unwrap(),
        );
        let pq = ProductQuantizer::train(base, 2, 3).unwrap();
        let plain = pq.encode_all(base);
        assert_eq!(pq.encode_all_anisotropic(base, towards, 1.0), plain);
        let weight = 8.0;
        let weighted = pq.encode_all_anisotropic(base, towards, weight);
        assert_ne!(weighted, plain);
        // (squared error, squared error along the direction) of a code.
        let errors = |row: &[f32], direction: &[f32], code: &[u8]| {
            let norm = annvil_distance::dot(direction, direction).sqrt();
            let (mut total, mut along) = (0.0f32, 0.0f32);
            for (m, &c) in code.iter().enumerate() {
                let centroid = &pq.codebook(m)[c as usize * 2..][..2];
                for d in 0..2 {
                    let e = row[m * 2 + d] - centroid[d];
                    total += e * e;
                    along += e * direction[m * 2 + d] / norm;
                }
            }
            (total, along * along)
        };
        let (mut plain_along, mut weighted_along) = (0.0, 0.0);
        for ((row, direction), (p, w)) in base.rows().zip(towards.rows()).zip(
            plain
                .chunks_exact(pq.subspaces())
                .zip(weighted.chunks_exact(pq.subspaces())),
        ) {
            let (p_total, p_along) = errors(row, direction, p);
            let (w_total, w_along) = errors(row, direction, w);
            let loss = |total: f32, along: f32| total + (weight - 1.0) * along;
            assert!(loss(w_total, w_along) <= loss(p_total, p_along) + 1e-5);
            plain_along += p_along;
            weighted_along += w_along;
        }
        assert!(
            weighted_along < 0.5 * plain_along,
            "{weighted_along} vs {plain_along}"
        );
    }

    #[test]
    fn refuses_bad_subspaces_and_an_empty_base() {
        let data = vec![0.0; 8];
        let base = Vectors::new(&data, 4).unwrap();
        for sub_dim in [0, 17] {
            let error = ProductQuantizer::train(base, sub_dim, 1).unwrap_err();
            assert!(error.message.contains("`sub_dim`"), "{}", error.message);
        }
        let empty = Vectors::new(&[], 4).unwrap();
        assert!(ProductQuantizer::train(empty, 4, 1).is_err());
        // Two vectors, fewer than 16 centroids: the table still has 16.
        let pq = ProductQuantizer::train(base, 4, 1).unwrap();
        assert_eq!(pq.codebook(0).len(), CENTROIDS * 4);
    }
}
