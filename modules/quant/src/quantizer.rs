//! Training, encoding and decoding.

use annvil_abi::Metric;
use annvil_distance::{CACHE_LINE, Isa};

use crate::{BLOCK_DIMS, Codes, IntegerQuery, Query, Scheme};

/// A trained scalar quantizer: per-dimension minimum and step.
#[derive(Clone, Debug)]
pub struct ScalarQuantizer {
    scheme: Scheme,
    dim: usize,
    /// Whether every dimension has the same minimum and step.
    uniform: bool,
    /// Per-dimension minimum, zero-padded to a multiple of [`BLOCK_DIMS`].
    min: Vec<f32>,
    /// Per-dimension step, zero-padded like `min`.
    scale: Vec<f32>,
}

impl ScalarQuantizer {
    /// Trains on `base`, row-major vectors of `dim` finite values: the range
    /// of each dimension over all of them. Panics if `dim` is 0, `base` is
    /// empty or its length is not a multiple of `dim`.
    pub fn train(scheme: Scheme, base: &[f32], dim: usize) -> ScalarQuantizer {
        let (min, max) = ranges(base, dim);
        ScalarQuantizer::with_ranges(scheme, dim, false, min, &max)
    }

    /// Trains like [`train`](Self::train), but with one range, that of all
    /// values, for every dimension: coarser steps where dimensions differ
    /// in range, but the quantizer then supports [`IntegerQuery`].
    pub fn train_uniform(scheme: Scheme, base: &[f32], dim: usize) -> ScalarQuantizer {
        let (min, max) = ranges(base, dim);
        let lowest = min.iter().fold(f32::INFINITY, |m, &x| m.min(x));
        let highest = max.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        ScalarQuantizer::with_ranges(scheme, dim, true, vec![lowest; dim], &vec![highest; dim])
    }

    /// The quantizer with per-dimension range `min..=max`.
    fn with_ranges(
        scheme: Scheme,
        dim: usize,
        uniform: bool,
        mut min: Vec<f32>,
        max: &[f32],
    ) -> ScalarQuantizer {
        let padded = dim.next_multiple_of(BLOCK_DIMS);
        let levels = f32::from(scheme.max_level());
        let mut scale: Vec<f32> = min
            .iter()
            .zip(max)
            .map(|(&lo, &hi)| (hi - lo) / levels)
            .collect();
        min.resize(padded, 0.0);
        scale.resize(padded, 0.0);
        ScalarQuantizer {
            scheme,
            dim,
            uniform,
            min,
            scale,
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Dimensions of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether it was trained with [`train_uniform`](Self::train_uniform).
    pub fn is_uniform(&self) -> bool {
        self.uniform
    }

    /// Per-dimension minimum of the training vectors.
    pub fn min(&self) -> &[f32] {
        &self.min[..self.dim]
    }

    /// Per-dimension step between two levels.
    pub fn scale(&self) -> &[f32] {
        &self.scale[..self.dim]
    }

    /// Bytes of one code, padding included: what [`encode`](Self::encode)
    /// writes and the queries read (a multiple of 16).
    pub fn code_len(&self) -> usize {
        self.min.len() * self.scheme.bits() as usize / 8
    }

    /// Distance in bytes between two rows of [`Codes`]:
    /// [`code_len`](Self::code_len) rounded up to a whole number of cache
    /// lines.
    pub fn row_stride(&self) -> usize {
        self.code_len().next_multiple_of(CACHE_LINE)
    }

    /// The largest per-coordinate error for values inside the trained
    /// range: half the largest step.
    pub fn max_coordinate_error(&self) -> f32 {
        self.scale.iter().fold(0.0f32, |m, &s| m.max(s)) / 2.0
    }

    /// Bound `E` on `‖x - decode(encode(x))‖` for `x` inside the trained
    /// box: `½·sqrt(Σ scale_i²)`. Asymmetric L2 distances (square roots)
    /// are then off by at most `E`, inner products by at most `‖q‖·E`.
    pub fn l2_error_bound(&self) -> f32 {
        self.scale.iter().map(|&s| s * s).sum::<f32>().sqrt() / 2.0
    }

    /// The level of value `x` in dimension `i`.
    fn level(&self, i: usize, x: f32) -> u8 {
        let scale = self.scale[i];
        if scale > 0.0 {
            let level = ((x - self.min[i]) / scale).round();
            // `as` maps NaN to 0; the clamp keeps SQ4 in 0..=15.
            level.clamp(0.0, f32::from(self.scheme.max_level())) as u8
        } else {
            0
        }
    }

    /// Writes the code of `v` into the first [`code_len`](Self::code_len)
    /// bytes of `code`, padding zero. Panics if `v` has the wrong dimension
    /// or `code` is too short.
    pub fn encode(&self, v: &[f32], code: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector of the wrong dimension");
        let code = &mut code[..self.code_len()];
        code.fill(0);
        match self.scheme {
            Scheme::Sq8 => {
                for (i, (&x, c)) in v.iter().zip(code.iter_mut()).enumerate() {
                    *c = self.level(i, x);
                }
            }
            Scheme::Sq4 => {
                for (i, &x) in v.iter().enumerate() {
                    code[i / 2] |= self.level(i, x) << (4 * (i % 2));
                }
            }
        }
    }

    /// Writes the vector `code` stands for into `out`. Panics if `out` has
    /// the wrong dimension or `code` is shorter than
    /// [`code_len`](Self::code_len).
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "vector of the wrong dimension");
        let code = &code[..self.code_len()];
        for (i, x) in out.iter_mut().enumerate() {
            let c = match self.scheme {
                Scheme::Sq8 => code[i],
                Scheme::Sq4 => (code[i / 2] >> (4 * (i % 2))) & 0xf,
            };
            *x = self.min[i] + f32::from(c) * self.scale[i];
        }
    }

    /// The codes of all row-major vectors in `base`. Panics if its length is
    /// not a multiple of the dimension.
    pub fn encode_all(&self, base: &[f32]) -> Codes {
        assert!(
            base.len().is_multiple_of(self.dim),
            "no whole number of vectors"
        );
        let mut codes = Codes::zeroed(base.len() / self.dim, self.row_stride());
        for (i, v) in base.chunks_exact(self.dim).enumerate() {
            self.encode(v, codes.row_mut(i));
        }
        codes
    }

    /// A reusable asymmetric query for `metric` on [`Isa::best`].
    pub fn query(&self, metric: Metric) -> Query {
        self.query_on(metric, Isa::best())
            .expect("the best level is supported")
    }

    /// A reusable asymmetric query for `metric` on `isa`, or `None` where
    /// this CPU does not support `isa` (for tests and benchmarks).
    pub fn query_on(&self, metric: Metric, isa: Isa) -> Option<Query> {
        Query::new(self, metric, isa)
    }

    /// A reusable integer query for `metric` on [`Isa::best`]. Panics
    /// unless the quantizer is [uniform](Self::train_uniform), or if the
    /// dimension is so large that even whole levels could overflow an i32
    /// L2 sum (over 33,025 dimensions for SQ8).
    pub fn integer_query(&self, metric: Metric) -> IntegerQuery {
        self.integer_query_on(metric, Isa::best())
            .expect("the best level is supported")
    }

    /// A reusable integer query for `metric` on `isa`, or `None` where this
    /// CPU does not support `isa`. Panics like
    /// [`integer_query`](Self::integer_query).
    pub fn integer_query_on(&self, metric: Metric, isa: Isa) -> Option<IntegerQuery> {
        assert!(
            self.uniform,
            "integer queries need a quantizer trained uniform"
        );
        IntegerQuery::new(self, metric, isa)
    }

    /// The padded per-dimension minimum and step, for the queries.
    pub(crate) fn padded(&self) -> (&[f32], &[f32]) {
        (&self.min, &self.scale)
    }
}

/// Per-dimension minimum and maximum of `base`, row-major vectors of `dim`.
fn ranges(base: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    assert!(dim > 0, "dimension 0");
    assert!(
        !base.is_empty() && base.len().is_multiple_of(dim),
        "{} values are no whole number of {dim}-dimensional vectors",
        base.len()
    );
    let mut min = vec![f32::INFINITY; dim];
    let mut max = vec![f32::NEG_INFINITY; dim];
    for row in base.chunks_exact(dim) {
        for ((&x, lo), hi) in row.iter().zip(&mut min).zip(&mut max) {
            *lo = lo.min(x);
            *hi = hi.max(x);
        }
    }
    (min, max)
}
