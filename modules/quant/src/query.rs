//! Queries prepared for distances to codes.

use annvil_abi::Metric;
use annvil_distance::Isa;

use crate::ScalarQuantizer;
use crate::kernels::{self, AsymFn, IntFn, MAX_SHIFT};

/// How `metric` turns a kernel sum into a distance, as `(sign, offset)`:
/// L2 sums are distances; an inner product `ip` becomes `-ip` or `1 - ip`.
fn sign_and_offset(metric: Metric) -> (f32, f32) {
    match metric {
        Metric::L2 => (1.0, 0.0),
        Metric::Angular => (-1.0, 1.0),
        Metric::InnerProduct => (-1.0, 0.0),
    }
}

/// `Σ q_i·min_i` in f64: the part of `⟨q, x̂⟩` that does not depend on
/// the code.
fn dot_min(q: &[f32], min: &[f32]) -> f64 {
    q.iter()
        .zip(min)
        .map(|(&q, &m)| f64::from(q) * f64::from(m))
        .sum()
}

/// A query prepared for asymmetric (f32 query, quantized base) distances
/// to codes of one [`ScalarQuantizer`]. Make one per search context,
/// [`set`](Self::set) it per query, call [`distance`](Self::distance) per
/// code.
#[derive(Clone, Debug)]
pub struct Query {
    // Invariant: runs on this CPU (`kernels::set` checked `isa`).
    kernel: AsymFn,
    isa: Isa,
    metric: Metric,
    dim: usize,
    /// The quantizer's padded minimum and step.
    min: Vec<f32>,
    scale: Vec<f32>,
    /// `q - min` (L2) or `q * scale` (inner product), zero-padded.
    prepared: Vec<f32>,
    /// The distance is `offset + factor * kernel sum`.
    factor: f32,
    offset: f32,
}

impl Query {
    /// The query for codes of `sq` on `isa`, `None` if unsupported.
    pub(crate) fn new(sq: &ScalarQuantizer, metric: Metric, isa: Isa) -> Option<Query> {
        let set = kernels::set(isa, sq.scheme())?;
        let (min, scale) = sq.padded();
        let (factor, offset) = sign_and_offset(metric);
        Some(Query {
            kernel: if metric == Metric::L2 {
                set.l2
            } else {
                set.dot
            },
            isa,
            metric,
            dim: sq.dim(),
            min: min.to_vec(),
            scale: scale.to_vec(),
            prepared: vec![0.0; min.len()],
            factor,
            offset,
        })
    }

    /// Makes `q` the query. Panics if it has the wrong dimension.
    pub fn set(&mut self, q: &[f32]) {
        assert_eq!(q.len(), self.dim, "query of the wrong dimension");
        let terms = q.iter().zip(&self.min).zip(&self.scale);
        if self.metric == Metric::L2 {
            for (p, ((&q, &min), _)) in self.prepared.iter_mut().zip(terms) {
                *p = q - min;
            }
        } else {
            for (p, ((&q, _), &scale)) in self.prepared.iter_mut().zip(terms) {
                *p = q * scale;
            }
            let (_, offset) = sign_and_offset(self.metric);
            self.offset = (f64::from(offset) - dot_min(q, &self.min)) as f32;
        }
    }

    /// The approximate distance of the query to `code` (smaller is closer).
    /// Panics if `code` is shorter than the quantizer's `code_len`.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        // SAFETY: `kernel` comes from `kernels::set`, which returns kernels
        // only for a level this CPU supports.
        self.offset + self.factor * unsafe { (self.kernel)(&self.prepared, &self.scale, code) }
    }

    /// The metric this query computes.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The level the kernel is compiled for.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// A query in i16 fixed point for integer distances to codes of a uniform
/// [`ScalarQuantizer`] (see the crate documentation for its extra error).
/// Used like [`Query`].
#[derive(Clone, Debug)]
pub struct IntegerQuery {
    // Invariant: runs on this CPU (`kernels::set` checked `isa`).
    kernel: IntFn,
    isa: Isa,
    metric: Metric,
    dim: usize,
    /// The highest level.
    levels: i32,
    /// The quantizer's minimum and step, the same in every dimension.
    min: f32,
    scale: f32,
    /// Fractional bits of an L2 query: levels count `2^shift` units.
    shift: u32,
    /// The fixed-point query, zero-padded.
    prepared: Vec<i16>,
    /// Whether the fixed-point query equals the query (no coordinate was
    /// rounded or clamped).
    exact: bool,
    /// The distance is `offset + factor * kernel sum`.
    factor: f32,
    offset: f32,
}

impl IntegerQuery {
    /// The query for codes of the uniform `sq` on `isa`, `None` if
    /// unsupported. Panics if the dimension is too large for i32 sums.
    pub(crate) fn new(sq: &ScalarQuantizer, metric: Metric, isa: Isa) -> Option<IntegerQuery> {
        let set = kernels::set(isa, sq.scheme())?;
        let levels = i32::from(sq.scheme().max_level());
        // The largest shift that keeps dim·(levels·2^shift)², the largest
        // possible L2 sum, within an i32.
        let fits = |shift: u32| {
            let unit = u64::from(levels.unsigned_abs()) << shift;
            sq.dim() as u64 * unit * unit <= i32::MAX as u64
        };
        let shift = (0..=MAX_SHIFT)
            .rev()
            .find(|&shift| fits(shift))
            .unwrap_or_else(|| panic!("{} dimensions overflow integer L2 sums", sq.dim()));
        let (min, scale) = sq.padded();
        let (factor, offset) = sign_and_offset(metric);
        Some(IntegerQuery {
            kernel: if metric == Metric::L2 {
                set.int_l2
            } else {
                set.int_dot
            },
            isa,
            metric,
            dim: sq.dim(),
            levels,
            min: min[0],
            scale: scale[0],
            shift,
            prepared: vec![0; min.len()],
            exact: false,
            factor,
            offset,
        })
    }

    /// Makes `q` the query. Panics if it has the wrong dimension.
    pub fn set(&mut self, q: &[f32]) {
        assert_eq!(q.len(), self.dim, "query of the wrong dimension");
        let prepared = &mut self.prepared[..self.dim];
        if self.metric == Metric::L2 {
            if self.scale > 0.0 {
                // Units of 2^-shift levels, clamped to the trained range.
                let unit = (1u32 << self.shift) as f32 / self.scale;
                let top = (self.levels << self.shift) as f32;
                let mut exact = true;
                for (p, &q) in prepared.iter_mut().zip(q) {
                    let fixed = (q - self.min) * unit;
                    let level = fixed.round().clamp(0.0, top);
                    exact &= level == fixed;
                    *p = level as i16;
                }
                self.exact = exact;
                self.factor = self.scale * self.scale / (1u32 << (2 * self.shift)) as f32;
            } else {
                // Every code decodes to `min`: the distance is a constant.
                prepared.fill(0);
                self.exact = true;
                self.factor = 0.0;
                self.offset = q.iter().map(|&q| (q - self.min) * (q - self.min)).sum();
            }
        } else {
            let max_abs = q.iter().fold(0.0f32, |m, &q| m.max(q.abs()));
            let sum_abs: f64 = q.iter().map(|&q| f64::from(q.abs())).sum();
            // Largest t with |Q_i| <= 32767 and levels·Σ|Q_i| <= i32::MAX,
            // leaving room for rounding each Q_i up by ½.
            let levels = f64::from(self.levels);
            let room = f64::from(i32::MAX) - levels * self.dim as f64;
            let t = if max_abs > 0.0 {
                (f64::from(i16::MAX) / f64::from(max_abs)).min(room / (levels * sum_abs))
            } else {
                1.0
            };
            let mut exact = true;
            for (p, &q) in prepared.iter_mut().zip(q) {
                let fixed = f64::from(q) * t;
                exact &= fixed.round() == fixed;
                *p = fixed.round() as i16;
            }
            self.exact = exact;
            let (sign, offset) = sign_and_offset(self.metric);
            let q_sum: f64 = q.iter().map(|&q| f64::from(q)).sum();
            self.factor = sign * (f64::from(self.scale) / t) as f32;
            self.offset =
                (f64::from(offset) + f64::from(sign) * f64::from(self.min) * q_sum) as f32;
        }
    }

    /// The approximate distance of the query to `code` (smaller is closer).
    /// Panics if `code` is shorter than the quantizer's `code_len`.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        // SAFETY: `kernel` comes from `kernels::set`, which returns kernels
        // only for a level this CPU supports.
        let sum = unsafe { (self.kernel)(&self.prepared, code, self.shift) };
        self.offset + self.factor * sum as f32
    }

    /// The metric this query computes.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The level the kernel is compiled for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether the query last [set](Self::set) is represented exactly: no
    /// coordinate was rounded or clamped (always true for a quantizer with a
    /// zero step). The distances then carry only the quantization error of
    /// the codes (none for codes of vectors on the quantizer's grid, such as
    /// 8-bit pixels under SQ8) and f32 rounding.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Fractional bits of the L2 query: it is exact to `scale / 2^(shift+1)`
    /// per coordinate inside the trained range.
    pub fn shift(&self) -> u32 {
        self.shift
    }
}
