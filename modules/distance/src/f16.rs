//! IEEE 754 binary16 ("half precision") values as `u16` bit patterns: the
//! portable conversions to and from f32. The bit tricks follow Fabian
//! Giesen's `half_to_float` and `float_to_half_fast3_rtne`, which are exact
//! for every input, subnormals included (f32 arithmetic in Rust always
//! rounds to nearest and never flushes subnormals).

/// f32 bits of the f16 exponent field, shifted to where f32 keeps it.
const F16_EXP_IN_F32: u32 = 0x7c00 << 13;

/// The f32 value of the f16 bit pattern `bits`: exact for every pattern;
/// infinities stay infinities and a NaN stays a NaN (payload kept).
#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    let bits = u32::from(bits);
    // Exponent and mantissa moved into f32 position, exponent rebiased.
    let mut out = (bits & 0x7fff) << 13;
    let exponent = out & F16_EXP_IN_F32;
    out += (127 - 15) << 23;
    if exponent == F16_EXP_IN_F32 {
        // Infinity or NaN: the exponent field must be all ones in f32 too.
        out += (128 - 16) << 23;
    } else if exponent == 0 {
        // Zero or subnormal: renormalise by one subtraction in f32.
        out += 1 << 23;
        out = (f32::from_bits(out) - f32::from_bits(113 << 23)).to_bits();
    }
    f32::from_bits(out | ((bits & 0x8000) << 16))
}

/// The f16 bit pattern nearest to `value`, ties to even: values too large
/// for f16 become infinities, values too small its subnormals or zero
/// (signed), and a NaN a quiet NaN with the top of its payload (what the
/// F16C instruction `vcvtps2ph` returns, so every path agrees).
#[inline]
pub fn f32_to_f16(value: f32) -> u16 {
    /// f32 bits of the f32 infinity.
    const F32_INFINITY: u32 = 255 << 23;
    /// f32 bits of 2^16, the first value that rounds to the f16 infinity
    /// with certainty (65520 and up do too, by rounding, below).
    const F16_OVERFLOW: u32 = (127 + 16) << 23;
    /// f32 bits of 2^-14, the smallest normal f16.
    const F16_MIN_NORMAL: u32 = 113 << 23;
    /// f32 bits of 0.5: adding it to a value below 2^-14 rounds the value
    /// to a multiple of 2^-24 (f16's subnormal step) in the low mantissa.
    const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;

    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let magnitude = bits & 0x7fff_ffff;
    let half = if magnitude >= F16_OVERFLOW {
        if magnitude > F32_INFINITY {
            0x7e00 | ((magnitude >> 13) & 0x03ff) as u16
        } else {
            0x7c00
        }
    } else if magnitude < F16_MIN_NORMAL {
        // The f32 addition rounds to nearest even at the subnormal step.
        let sum = f32::from_bits(magnitude) + f32::from_bits(DENORM_MAGIC);
        (sum.to_bits() - DENORM_MAGIC) as u16
    } else {
        let mantissa_odd = (magnitude >> 13) & 1;
        // Rebias the exponent and add just under half an f16 step, plus
        // one when the kept mantissa is odd: round to nearest, ties to
        // even. A carry out of the mantissa moves into the exponent, up to
        // the infinity.
        let rounded = magnitude
            .wrapping_add(((15u32).wrapping_sub(127)) << 23)
            .wrapping_add(0xfff + mantissa_odd);
        (rounded >> 13) as u16
    };
    half | sign
}

/// Encodes `src` into `dst` one value at a time with [`f32_to_f16`].
pub(crate) fn encode(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len(), "slices differ in length");
    for (half, &value) in dst.iter_mut().zip(src) {
        *half = f32_to_f16(value);
    }
}

/// Decodes `src` into `dst` one value at a time with [`f16_to_f32`].
pub(crate) fn decode(src: &[u16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "slices differ in length");
    for (value, &half) in dst.iter_mut().zip(src) {
        *value = f16_to_f32(half);
    }
}
