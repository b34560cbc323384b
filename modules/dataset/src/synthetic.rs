//! The built-in deterministic generator: clustered Gaussian vectors.
//!
//! Only IEEE basic operations (`+ - * /` and `sqrt`, all correctly rounded)
//! touch the values, never a platform `ln`/`cos`, so the same spec gives
//! bit-identical vectors on every machine.

use std::fmt;

use annvil_abi::Metric;
use annvil_core::SplitMix64;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::matrix::Matrix;

/// Parameters of the synthetic generator; the string form is
/// `synthetic:key=value,...` (see [`SyntheticSpec::parse_keys`]).
///
/// `clusters` centres are drawn from N(0, I); each cluster gets a spread
/// σ uniform in [0.25, 0.75); each vector picks a cluster uniformly and is
/// its centre plus σ·N(0, I). Base vectors and queries come from the same
/// distribution through independent streams, so changing `n` leaves the
/// queries (and the first base vectors) unchanged. The defaults make exact
/// brute-force search of all queries take about a second on one core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Base vectors.
    pub n: usize,
    /// Query vectors.
    pub queries: usize,
    /// Dimension.
    pub dim: usize,
    /// Gaussian clusters.
    pub clusters: usize,
    /// Metric (angular data is normalised after generation).
    pub metric: Metric,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> SyntheticSpec {
        SyntheticSpec {
            n: 20_000,
            queries: 1_000,
            dim: 64,
            clusters: 64,
            metric: Metric::L2,
            seed: 42,
        }
    }
}

impl fmt::Display for SyntheticSpec {
    /// The canonical spec string, every key spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "synthetic:n={},queries={},dim={},clusters={},metric={},seed={}",
            self.n, self.queries, self.dim, self.clusters, self.metric, self.seed
        )
    }
}

/// Independent PRNG streams of one seed.
#[derive(Clone, Copy)]
enum Stream {
    Centres = 1,
    Spreads = 2,
    Base = 3,
    Queries = 4,
}

impl SyntheticSpec {
    /// A name such as `synthetic-20000x64-euclidean`, with `-q`, `-c`, `-s`
    /// suffixes for the parameters that differ from the defaults.
    pub fn name(&self) -> String {
        let default = SyntheticSpec::default();
        let mut name = format!("synthetic-{}x{}-{}", self.n, self.dim, self.metric);
        for (value, fallback, tag) in [
            (self.queries as u64, default.queries as u64, "q"),
            (self.clusters as u64, default.clusters as u64, "c"),
            (self.seed, default.seed, "s"),
        ] {
            if value != fallback {
                name.push_str(&format!("-{tag}{value}"));
            }
        }
        name
    }

    /// Parses the `key=value,...` part of a spec string
    /// `synthetic:key=value,...` (keys `n`, `queries`, `dim`, `clusters`,
    /// `metric`, `seed`; the others keep their defaults). The error says
    /// what is wrong.
    pub fn parse_keys(keys: &str) -> std::result::Result<SyntheticSpec, String> {
        let mut spec = SyntheticSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for pair in keys.split(',').map(str::trim) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("`{key}` is given twice"));
            }
            seen.push(key);
            let count = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("`{key}={value}`: expected a whole number"))
            };
            match key {
                "n" => spec.n = count()?,
                "queries" => spec.queries = count()?,
                "dim" => spec.dim = count()?,
                "clusters" => spec.clusters = count()?,
                "metric" => spec.metric = value.parse()?,
                "seed" => {
                    spec.seed = value
                        .parse()
                        .map_err(|_| format!("`seed={value}`: expected a whole number"))?;
                }
                _ => {
                    return Err(format!(
                        "unknown key `{key}` (expected n, queries, dim, clusters, metric or seed)"
                    ));
                }
            }
        }
        spec.check()?;
        Ok(spec)
    }

    /// `Err` naming the first of `n`, `queries`, `dim`, `clusters` that is
    /// zero.
    fn check(&self) -> std::result::Result<(), String> {
        for (value, key) in [
            (self.n, "n"),
            (self.queries, "queries"),
            (self.dim, "dim"),
            (self.clusters, "clusters"),
        ] {
            if value == 0 {
                return Err(format!("`{key}` must be at least 1"));
            }
        }
        Ok(())
    }

    /// Generates the dataset (validated and, for angular, normalised by
    /// [`Dataset::new`]). Fails when a count or the dimension is zero.
    pub fn generate(&self) -> Result<Dataset> {
        self.check()
            .map_err(|problem| DataError::Invalid(format!("synthetic dataset: {problem}")))?;
        let mut centres = Rng::new(self.seed, Stream::Centres);
        let centres: Vec<f64> = (0..self.clusters * self.dim)
            .map(|_| centres.gaussian())
            .collect();
        let mut spreads = Rng::new(self.seed, Stream::Spreads);
        let spreads: Vec<f64> = (0..self.clusters)
            .map(|_| 0.25 + 0.5 * spreads.uniform())
            .collect();
        let draw = |count: usize, stream: Stream| {
            let mut rng = Rng::new(self.seed, stream);
            let mut data = Vec::with_capacity(count * self.dim);
            for _ in 0..count {
                let cluster = rng.below(self.clusters);
                let centre = &centres[cluster * self.dim..(cluster + 1) * self.dim];
                data.extend(
                    centre
                        .iter()
                        .map(|&c| (c + spreads[cluster] * rng.gaussian()) as f32),
                );
            }
            Matrix::new(data, self.dim)
        };
        Dataset::new(
            self.name(),
            self.metric,
            draw(self.n, Stream::Base)?,
            draw(self.queries, Stream::Queries)?,
            self.to_string(),
        )
    }
}

/// xoshiro256** seeded through annvil-core's SplitMix64, plus Marsaglia's
/// polar method for normal deviates.
struct Rng {
    state: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64, stream: Stream) -> Rng {
        let mut seeder =
            SplitMix64::new(seed ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng {
            state: [(); 4].map(|()| seeder.next_u64()),
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³²
    /// for any realistic `n`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A standard normal deviate.
    fn gaussian(&mut self) -> f64 {
        if let Some(value) = self.spare.take() {
            return value;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let factor = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * factor);
                return u * factor;
            }
        }
    }
}

/// The natural logarithm of a positive normal `x` from basic operations
/// only: `x = m·2^e` with `m` in [√½, √2), then
/// `ln m = 2·atanh((m-1)/(m+1))` by its series, accurate to a few ulps.
fn ln(x: f64) -> f64 {
    debug_assert!(x.is_normal() && x > 0.0);
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut mantissa = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if mantissa > std::f64::consts::SQRT_2 {
        mantissa *= 0.5;
        exponent += 1;
    }
    let z = (mantissa - 1.0) / (mantissa + 1.0);
    let z2 = z * z;
    // |z| < 0.172, so z²ⁿ/(2n+1) is below 1e-17 by n = 12.
    let series = (1..=12)
        .rev()
        .fold(0.0, |acc, n| acc * z2 + 1.0 / f64::from(2 * n + 1));
    let ln_mantissa = 2.0 * z * (1.0 + z2 * series);
    exponent as f64 * std::f64::consts::LN_2 + ln_mantissa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for x in [
            1e-300, 1e-17, 0.001, 0.3, 0.5, 0.7072, 0.99999, 1.0, 1.5, 2.0, 1e10,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 4.0 * f64::EPSILON * std.abs().max(1.0),
                "{x}: {ours} vs {std}"
            );
        }
    }

    #[test]
    fn gaussian_moments() {
        let mut rng = Rng::new(7, Stream::Base);
        let samples: Vec<f64> = (0..200_000).map(|_| rng.gaussian()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
    }

    #[test]
    fn streams_are_independent_of_sizes() {
        let small = SyntheticSpec {
            n: 100,
            queries: 10,
            dim: 8,
            clusters: 4,
            ..SyntheticSpec::default()
        };
        let large = SyntheticSpec {
            n: 300,
            ..small.clone()
        };
        let (a, b) = (small.generate().unwrap(), large.generate().unwrap());
        assert_eq!(a.test, b.test);
        assert_eq!(
            a.train.as_slice(),
            &b.train.as_slice()[..a.train.as_slice().len()]
        );
    }
}
