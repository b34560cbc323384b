//! Scalar quantization for quantized graph traversal, the GLASS approach: a
//! graph search walks compact codes with a fast approximate distance and a
//! refinement slot reranks the survivors with exact f32 distances.
//!
//! # Schemes
//!
//! A [`ScalarQuantizer`] is trained on the base vectors: per dimension `i`
//! it keeps the minimum `min_i` and the step `scale_i = (max_i - min_i) / L`
//! (or, trained uniform, one minimum and step for all dimensions),
//! with `L = 255` levels for [`Scheme::Sq8`] (one byte per dimension) and
//! `L = 15` for [`Scheme::Sq4`] (4 bits, two dimensions per byte: the low
//! nibble holds the even dimension). A value `x` becomes the level
//! `c = round((x - min_i) / scale_i)`, clamped to `0..=L`, and decodes to
//! `min_i + c * scale_i`.
//!
//! # Error bounds
//!
//! For a vector `x` inside the trained box (`min_i <= x_i <= max_i`, true
//! for every training vector) and its decoded `x̂`:
//!
//! - each coordinate is off by at most half a step,
//!   `|x_i - x̂_i| <= scale_i / 2` ([`ScalarQuantizer::max_coordinate_error`]
//!   is the largest);
//! - `‖x - x̂‖ <= ½·sqrt(Σ scale_i²)` =: `E`
//!   ([`ScalarQuantizer::l2_error_bound`]);
//! - so, by the triangle inequality, the asymmetric L2 distance is off by at
//!   most `E` in its square root: `|‖q - x‖ - ‖q - x̂‖| <= E`, for any query;
//! - and the inner product by at most `½·Σ |q_i|·scale_i <= ‖q‖·E`.
//!
//! Coordinates outside the box are clamped, adding their distance to the
//! box to the error. Dimensions with `max_i == min_i` are exact. The f32
//! arithmetic of the kernels adds a relative error of order 1e-6.
//!
//! On data whose coordinates are whole numbers in 0..=255 (raw pixels, as in
//! Fashion-MNIST) every step is at most 1, so SQ8 is within 0.5 per
//! coordinate and exact in every dimension that spans the full 0..=255.
//!
//! # Distances
//!
//! Two kinds of prepared query compare a query with codes without decoding
//! them, on the widest [`Isa`](annvil_distance::Isa) the CPU has, chosen once when the query is
//! made; both apply the metric's sign and offset like
//! `annvil_distance::Kernel`:
//!
//! - [`Query`] (asymmetric, any quantizer) keeps the query in f32,
//!   pre-transformed once per query ([`Query::set`]): for L2 it holds
//!   `q_i - min_i` and sums `(q_i - min_i - c_i·scale_i)²`; for inner
//!   product and angular it holds `q_i·scale_i` and computes
//!   `⟨q, min⟩ + Σ (q_i·scale_i)·c_i`. Its only error is the quantization
//!   of the base vector (bounds above).
//! - [`IntegerQuery`] (quantizers trained with
//!   [`ScalarQuantizer::train_uniform`], one range for all dimensions)
//!   turns the query into i16 fixed point and sums in integers, 1.6 to 1.8
//!   times as fast as [`Query`] on SQ8 with AVX2 or AVX-512. For L2 the query becomes `Q_i = round((q_i - min)·2^k /
//!   scale)` clamped to the trained range, with `k` (0..=7) the largest
//!   shift for which `dim·(L·2^k)²` fits an i32, so no sum can overflow,
//!   and the kernel sums `(Q_i - c_i·2^k)²`; the query is off by at most
//!   `scale / 2^(k+1)` per coordinate inside the range (1/8 of a step at
//!   784 SQ8 dimensions), so distance square roots move by at most
//!   `½·scale·sqrt(dim) / 2^k` more. For inner product the query becomes
//!   `Q_i = round(q_i·t)` with the largest `t` that keeps `|Q_i| <= 32767`
//!   and `L·Σ|Q_i|` within an i32, and the kernel sums `Q_i·c_i`; the inner
//!   product moves by at most `½·scale·Σ c_i / t` more.
//!
//! Every SIMD path of an integer kernel returns exactly what the scalar
//! path returns; the f32 kernels agree within rounding.
//!
//! ```
//! use annvil_abi::Metric;
//! use annvil_quant::{ScalarQuantizer, Scheme};
//!
//! let base = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]; // three 2-dimensional vectors
//! let sq = ScalarQuantizer::train(Scheme::Sq8, &base, 2);
//! let codes = sq.encode_all(&base);
//! let mut query = sq.query(Metric::L2); // once per search context
//! query.set(&[4.0, 5.0]); // once per query
//! let nearest = (0..codes.len())
//!     .min_by(|&a, &b| query.distance(codes.row(a)).total_cmp(&query.distance(codes.row(b))));
//! assert_eq!(nearest, Some(2));
//! ```
//!
//! # Layout
//!
//! A code has [`ScalarQuantizer::code_len`] bytes: the dimension rounded up
//! to [`BLOCK_DIMS`], packed, padding zero. [`Codes`] stores the codes of
//! many vectors contiguously, one row per vector, rows
//! [`ScalarQuantizer::row_stride`] bytes apart (a multiple of 64, the cache
//! line) from a 64-byte aligned start, so a row never straddles more cache
//! lines than it must. A graph layout that keeps codes next to adjacency
//! lists calls [`ScalarQuantizer::encode`] into its own buffer instead.

mod codes;
mod kernels;
mod quantizer;
mod query;

pub use codes::Codes;
pub use quantizer::ScalarQuantizer;
pub use query::{IntegerQuery, Query};

/// Dimensions per kernel block: codes and prepared queries are padded to a
/// multiple of this, so the kernels never handle a ragged tail.
pub const BLOCK_DIMS: usize = kernels::BLOCK_DIMS;

/// A scalar quantization scheme: how many bits a dimension takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// 8 bits per dimension: 256 levels.
    Sq8,
    /// 4 bits per dimension, two dimensions per byte: 16 levels.
    Sq4,
}

impl Scheme {
    /// Bits per dimension.
    pub const fn bits(self) -> u32 {
        match self {
            Scheme::Sq8 => 8,
            Scheme::Sq4 => 4,
        }
    }

    /// The highest level, `2^bits - 1`.
    pub const fn max_level(self) -> u8 {
        match self {
            Scheme::Sq8 => u8::MAX,
            Scheme::Sq4 => 15,
        }
    }
}
