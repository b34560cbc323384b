//! Distance kernels on f32 vectors, and from an f32 query to vectors stored
//! as IEEE binary16 ("f16", half the memory), following the metric
//! conventions of the annvil ABI (smaller is closer; see [`Metric`]).
//!
//! # Paths and dispatch
//!
//! Every kernel exists for each instruction-set level of [`Isa`]: AVX-512
//! (512-bit registers), AVX2 + FMA (256-bit) and a portable scalar fallback.
//! [`Isa::best`] detects the CPU once (the answer is cached) and everything
//! that is not told otherwise uses that level. A [`Kernels`] value is the set
//! of kernels of one level; a [`Kernel`] is one metric's distance bound to one
//! level. Neither looks at the CPU again: a search loop that obtained a
//! `Kernel` once calls through one plain function pointer, with no feature
//! test and no `match` on the metric.
//!
//! ```
//! use annvil_abi::Metric;
//!
//! let kernel = annvil_distance::kernel(Metric::L2);
//! let (a, b) = ([1.0, 2.0, 3.0], [1.0, 0.0, 0.0]);
//! assert_eq!(kernel.distance(&a, &b), 13.0);
//! ```
//!
//! Tests and benchmarks force a level with [`Kernels::for_isa`], which
//! returns `None` where the CPU lacks it.
//!
//! # f16 storage
//!
//! A vector may be stored as f16 bit patterns (`u16`), encoded with
//! [`encode_f16`] (round to nearest, ties to even) and decoded exactly with
//! [`decode_f16`]. [`Kernels::kernel_f16`] (or [`kernel_f16`]) measures an
//! f32 query against such a vector: a [`KernelF16`], the same function
//! pointer shape as [`Kernel`]. The AVX2 path widens 8 halves per load with
//! F16C; the AVX-512 level uses that same AVX2 + F16C kernel. The result
//! is the f32 kernel's on the decoded vector, with the same precision.
//!
//! ```
//! use annvil_abi::Metric;
//!
//! let mut stored = [0u16; 3];
//! annvil_distance::encode_f16(&[1.0, 0.5, 0.0], &mut stored);
//! assert_eq!(stored, [0x3c00, 0x3800, 0]);
//! let kernel = annvil_distance::kernel_f16(Metric::InnerProduct);
//! assert_eq!(kernel.distance(&[2.0, 2.0, 2.0], &stored), -3.0);
//! ```
//!
//! # Precision
//!
//! Every path keeps several independent partial sums (16 for scalar, 32 for
//! AVX2, 64 for AVX-512) and adds them pairwise at the end, so long vectors
//! of large values (raw pixels) lose little precision: for up to 1024
//! dimensions the relative error against an exact sum is below 1e-5 of
//! `Σ|terms|` (the tests check this on every path; on random and pixel
//! data the worst seen is 2e-7). Paths may differ from
//! each other in the last bits, since the SIMD paths fuse multiply and add.
//!
//! # Safety
//!
//! The SIMD kernels are `#[target_feature]` functions, which are only sound
//! to call on a CPU that has those features. The only way to reach them is
//! through a [`Kernels`] value, and [`Kernels::for_isa`] builds one only
//! after [`Isa::is_supported`] confirmed the features at run time.

use std::fmt;
use std::sync::OnceLock;

use annvil_abi::Metric;

pub use f16::{f16_to_f32, f32_to_f16};

mod f16;
mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// An instruction-set level a kernel is compiled for, from the most portable
/// to the widest. Other annvil crates (quantizers) dispatch on it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no CPU requirement beyond the compilation target.
    Scalar,
    /// x86_64 with AVX2, FMA and F16C: 256-bit registers.
    Avx2,
    /// x86_64 with AVX-512 F and BW (and everything [`Isa::Avx2`] needs):
    /// 512-bit registers.
    Avx512,
}

impl Isa {
    /// Every level, from the most portable to the widest.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU runs code of this level (asks the CPU; cheap, but
    /// meant for setting up, not for a hot loop).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            // Every CPU with AVX2 and FMA (Intel from Haswell, AMD from
            // Piledriver) also has F16C, which came earlier (Ivy Bridge,
            // Piledriver), so asking for it excludes no real CPU.
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            // The AVX-512 level runs the AVX2 f16 kernels too.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && Isa::Avx2.is_supported()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The widest level this CPU supports, detected on the first call and
    /// cached for the life of the process.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .rev()
                .find(|isa| isa.is_supported())
                .unwrap_or(Isa::Scalar)
        })
    }

    /// The levels this CPU supports, from the most portable to the widest.
    pub fn supported() -> impl Iterator<Item = Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_supported())
    }

    /// A short lower-case name: `scalar`, `avx2` or `avx512`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A raw kernel from an f32 vector to one of `S` (f32, or f16 bits as
/// `u16`). `unsafe` because a SIMD kernel may only run on a CPU with its
/// features; [`Kernels`] holds one only once that is established.
type RawFn<S = f32> = unsafe fn(&[f32], &[S]) -> f32;

/// A raw f16 encoder (f32 to f16 bits).
type EncodeFn = unsafe fn(&[f32], &mut [u16]);

/// A raw f16 decoder (f16 bits to f32).
type DecodeFn = unsafe fn(&[u16], &mut [f32]);

/// The kernels of one [`Isa`] level: f32, f32 to f16, and the f16
/// conversions.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    isa: Isa,
    // Invariant: all run on this CPU (checked by `for_isa`).
    l2_squared: RawFn,
    dot: RawFn,
    l2_squared_f16: RawFn<u16>,
    dot_f16: RawFn<u16>,
    encode_f16: EncodeFn,
    decode_f16: DecodeFn,
}

impl Kernels {
    /// The kernels of `isa`, or `None` where this CPU does not support it.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        if !isa.is_supported() {
            return None;
        }
        let (l2_squared, dot): (RawFn, RawFn) = match isa {
            Isa::Scalar => (scalar::l2_squared, scalar::dot),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (x86::avx2::l2_squared::<f32>, x86::avx2::dot::<f32>),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (x86::avx512::l2_squared, x86::avx512::dot),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unreachable!("{isa} is never supported off x86_64"),
        };
        // f16: AVX2 + F16C serves the AVX-512 level as well (it is part of
        // that level, see `is_supported`).
        let (l2_squared_f16, dot_f16, encode_f16, decode_f16): (_, _, EncodeFn, DecodeFn) =
            match isa {
                Isa::Scalar => (
                    scalar::l2_squared_f16 as RawFn<u16>,
                    scalar::dot_f16 as RawFn<u16>,
                    f16::encode,
                    f16::decode,
                ),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 | Isa::Avx512 => (
                    x86::avx2::l2_squared::<u16> as RawFn<u16>,
                    x86::avx2::dot::<u16> as RawFn<u16>,
                    x86::avx2::encode_f16,
                    x86::avx2::decode_f16,
                ),
                #[cfg(not(target_arch = "x86_64"))]
                Isa::Avx2 | Isa::Avx512 => unreachable!("{isa} is never supported off x86_64"),
            };
        Some(Kernels {
            isa,
            l2_squared,
            dot,
            l2_squared_f16,
            dot_f16,
            encode_f16,
            decode_f16,
        })
    }

    /// The kernels of [`Isa::best`], selected once per process.
    pub fn best() -> Kernels {
        static BEST: OnceLock<Kernels> = OnceLock::new();
        *BEST.get_or_init(|| Kernels::for_isa(Isa::best()).expect("the best level is supported"))
    }

    /// The portable kernels, which every CPU runs.
    pub fn scalar() -> Kernels {
        Kernels::for_isa(Isa::Scalar).expect("scalar is always supported")
    }

    /// The level these kernels are compiled for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Squared Euclidean distance. Panics if the lengths differ.
    #[inline]
    pub fn l2_squared(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `Kernels` is only built by `for_isa`, after it checked
        // that this CPU supports the level of `l2_squared`.
        unsafe { (self.l2_squared)(a, b) }
    }

    /// Inner product. Panics if the lengths differ.
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `l2_squared`: the level was checked by `for_isa`.
        unsafe { (self.dot)(a, b) }
    }

    /// Squared Euclidean distance from `a` to the f16 vector `b`. Panics if
    /// the lengths differ.
    #[inline]
    pub fn l2_squared_f16(&self, a: &[f32], b: &[u16]) -> f32 {
        // SAFETY: as in `l2_squared`: the level was checked by `for_isa`.
        unsafe { (self.l2_squared_f16)(a, b) }
    }

    /// Inner product of `a` and the f16 vector `b`. Panics if the lengths
    /// differ.
    #[inline]
    pub fn dot_f16(&self, a: &[f32], b: &[u16]) -> f32 {
        // SAFETY: as in `l2_squared`: the level was checked by `for_isa`.
        unsafe { (self.dot_f16)(a, b) }
    }

    /// Writes the f16 bits of each value of `src` to `dst`, as
    /// [`f32_to_f16`] does (the same bits on every level). Panics if the
    /// lengths differ.
    pub fn encode_f16(&self, src: &[f32], dst: &mut [u16]) {
        // SAFETY: as in `l2_squared`: the level was checked by `for_isa`.
        unsafe { (self.encode_f16)(src, dst) }
    }

    /// Writes the value of each f16 of `src` to `dst`, as [`f16_to_f32`]
    /// does. Panics if the lengths differ.
    pub fn decode_f16(&self, src: &[u16], dst: &mut [f32]) {
        // SAFETY: as in `l2_squared`: the level was checked by `for_isa`.
        unsafe { (self.decode_f16)(src, dst) }
    }

    /// The distance `metric` defines, as one function pointer of this level.
    pub fn kernel(&self, metric: Metric) -> Kernel {
        self.bind(metric, self.l2_squared, self.dot)
    }

    /// The distance `metric` defines from an f32 query to an f16 vector, as
    /// one function pointer of this level.
    pub fn kernel_f16(&self, metric: Metric) -> KernelF16 {
        self.bind(metric, self.l2_squared_f16, self.dot_f16)
    }

    /// The [`Kernel`] of `metric` from this level's raw L2 and dot kernels.
    fn bind<S>(&self, metric: Metric, l2_squared: RawFn<S>, dot: RawFn<S>) -> Kernel<S> {
        let (raw, sign, offset) = match metric {
            Metric::L2 => (l2_squared, 1.0, 0.0),
            Metric::Angular => (dot, -1.0, 1.0),
            Metric::InnerProduct => (dot, -1.0, 0.0),
        };
        Kernel {
            raw,
            sign,
            offset,
            isa: self.isa,
            metric,
        }
    }
}

/// One metric's distance on one [`Isa`] level, for hot loops: a call is one
/// indirect call plus `offset + sign * raw`, which reproduces the metric
/// exactly (`x`, `1 - x` or `-x`), with no feature test and no `match`.
/// The first vector is f32; the second has elements `S`: f32, or f16 bit
/// patterns (`u16`) for a [`KernelF16`].
#[derive(Clone, Copy, Debug)]
pub struct Kernel<S = f32> {
    // Invariant: runs on this CPU (it comes from a `Kernels`).
    raw: RawFn<S>,
    sign: f32,
    offset: f32,
    isa: Isa,
    metric: Metric,
}

/// A [`Kernel`] from an f32 query to a vector of f16 bit patterns.
pub type KernelF16 = Kernel<u16>;

impl<S> Kernel<S> {
    /// The distance between `a` and `b` (smaller is closer). Panics if the
    /// lengths differ.
    #[inline]
    pub fn distance(&self, a: &[f32], b: &[S]) -> f32 {
        // SAFETY: `raw` comes from a `Kernels`, whose level `for_isa`
        // checked on this CPU.
        self.offset + self.sign * unsafe { (self.raw)(a, b) }
    }

    /// The metric this kernel computes.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The level this kernel is compiled for.
    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// The kernel of `metric` on [`Isa::best`]: obtain it once, call it often.
pub fn kernel(metric: Metric) -> Kernel {
    Kernels::best().kernel(metric)
}

/// The f32-query-to-f16-vector kernel of `metric` on [`Isa::best`].
pub fn kernel_f16(metric: Metric) -> KernelF16 {
    Kernels::best().kernel_f16(metric)
}

/// Encodes `src` into f16 bit patterns in `dst` on [`Isa::best`]: round to
/// nearest, ties to even, as [`f32_to_f16`]. Panics if the lengths differ.
pub fn encode_f16(src: &[f32], dst: &mut [u16]) {
    Kernels::best().encode_f16(src, dst)
}

/// Decodes the f16 bit patterns of `src` into `dst` on [`Isa::best`]
/// (exact). Panics if the lengths differ.
pub fn decode_f16(src: &[u16], dst: &mut [f32]) {
    Kernels::best().decode_f16(src, dst)
}

/// Squared Euclidean distance on [`Isa::best`]. Panics if the lengths differ.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    Kernels::best().l2_squared(a, b)
}

/// Inner product on [`Isa::best`]. Panics if the lengths differ.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Kernels::best().dot(a, b)
}

/// The distance `metric` defines between `a` and `b`, on [`Isa::best`].
/// For many calls, obtain a [`Kernel`] once with [`kernel`] instead.
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    kernel(metric).distance(a, b)
}

/// Size of a cache line on the CPUs annvil targets.
pub const CACHE_LINE: usize = 64;

/// Asks the CPU to bring the cache line holding `ptr` into every cache level
/// (T0), e.g. the next neighbour's vector while the current one is compared.
/// A hint only: any address is allowed, none is dereferenced. A no-op off
/// x86_64.
#[inline]
pub fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory or program
    // state, whatever the address (it is not even dereferenced); SSE, which
    // provides it, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// [`prefetch`]es every cache line `data` touches (a graph search prefetches
/// a neighbour's whole vector or code row this way).
#[inline]
pub fn prefetch_slice<T>(data: &[T]) {
    let start = data.as_ptr().cast::<u8>();
    let misalign = start as usize % CACHE_LINE;
    let first_line = start.wrapping_sub(misalign);
    for offset in (0..misalign + size_of_val(data)).step_by(CACHE_LINE) {
        prefetch(first_line.wrapping_add(offset));
    }
}
