//! Parameter declarations: what a slot publishes about the parameters it
//! accepts, so tools can show them and tune them inside their ranges.
//!
//! A declaration is metadata, not validation: the slot still reads and
//! checks its values with [`Params`](crate::Params). `host check` verifies
//! that every declaration is consistent (the default parses and lies in the
//! range, names are unique).

/// The values a declared parameter takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamRange {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value worth trying.
        min: i64,
        /// Largest value worth trying.
        max: i64,
    },
    /// A floating-point number in `min..=max`.
    Float {
        /// Smallest value worth trying.
        min: f64,
        /// Largest value worth trying.
        max: f64,
    },
    /// One of these strings.
    Choice(&'static [&'static str]),
}

/// The declaration of one parameter a slot accepts, listed in the slot
/// trait's `PARAMS` constant:
///
/// ```
/// use annvil_abi::ParamSpec;
///
/// const PARAMS: &[ParamSpec] = &[
///     ParamSpec::int("ef", 10, 2000, "64", "beam width of the search").knob(),
///     ParamSpec::choice("codes", &["f32", "sq8"], "f32", "how base vectors are stored"),
/// ];
/// assert!(PARAMS[0].is_knob() && !PARAMS[1].is_knob());
/// ```
///
/// The constructors are `const fn`s that reject, at compile time when used
/// in a constant, what cannot cross the C ABI: an empty name, a NUL byte in
/// any string, a `|` in a choice (the C form separates choices with it), no
/// choices, or `min > max`. Whether the default parses and lies in the
/// range is left to `host check`, which applies the same rules to C
/// variants.
///
/// ```compile_fail
/// // min > max: the constant does not compile.
/// const BAD: annvil_abi::ParamSpec = annvil_abi::ParamSpec::int("M", 64, 4, "16", "");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    name: &'static str,
    range: ParamRange,
    default: &'static str,
    knob: bool,
    doc: &'static str,
}

impl ParamSpec {
    /// A fixed whole-number parameter in `min..=max`.
    pub const fn int(
        name: &'static str,
        min: i64,
        max: i64,
        default: &'static str,
        doc: &'static str,
    ) -> ParamSpec {
        assert!(min <= max, "ParamSpec::int: min > max");
        ParamSpec::new(name, ParamRange::Int { min, max }, default, doc)
    }

    /// A fixed floating-point parameter in `min..=max` (both finite).
    pub const fn float(
        name: &'static str,
        min: f64,
        max: f64,
        default: &'static str,
        doc: &'static str,
    ) -> ParamSpec {
        assert!(
            min.is_finite() && max.is_finite() && min <= max,
            "ParamSpec::float: the range must be finite with min <= max"
        );
        ParamSpec::new(name, ParamRange::Float { min, max }, default, doc)
    }

    /// A fixed parameter taking one of `choices`.
    pub const fn choice(
        name: &'static str,
        choices: &'static [&'static str],
        default: &'static str,
        doc: &'static str,
    ) -> ParamSpec {
        assert!(!choices.is_empty(), "ParamSpec::choice: no choices");
        let mut i = 0;
        while i < choices.len() {
            assert!(
                !choices[i].is_empty()
                    && !contains(choices[i], b'\0')
                    && !contains(choices[i], b'|'),
                "ParamSpec::choice: a choice is empty or contains NUL or `|`"
            );
            i += 1;
        }
        ParamSpec::new(name, ParamRange::Choice(choices), default, doc)
    }

    /// The same parameter as a swept knob (set through the search slot's
    /// `configure`) rather than a fixed `build`/`prepare` parameter.
    pub const fn knob(self) -> ParamSpec {
        ParamSpec { knob: true, ..self }
    }

    const fn new(
        name: &'static str,
        range: ParamRange,
        default: &'static str,
        doc: &'static str,
    ) -> ParamSpec {
        assert!(!name.is_empty(), "ParamSpec: empty name");
        assert!(
            !contains(name, b'\0') && !contains(default, b'\0') && !contains(doc, b'\0'),
            "ParamSpec: a string contains a NUL byte"
        );
        ParamSpec {
            name,
            range,
            default,
            knob: false,
            doc,
        }
    }

    /// The key, as written in variant.yaml.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The values worth trying.
    pub const fn range(&self) -> ParamRange {
        self.range
    }

    /// The value the slot uses when the key is absent, as written in
    /// variant.yaml.
    pub const fn default(&self) -> &'static str {
        self.default
    }

    /// True for a swept knob, false for a fixed parameter.
    pub const fn is_knob(&self) -> bool {
        self.knob
    }

    /// One line saying what the parameter does.
    pub const fn doc(&self) -> &'static str {
        self.doc
    }
}

const fn contains(s: &str, byte: u8) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_record_every_field() {
        let spec = ParamSpec::float("alpha", 1.0, 1.5, "1.2", "pruning slack").knob();
        assert_eq!(spec.name(), "alpha");
        assert_eq!(spec.range(), ParamRange::Float { min: 1.0, max: 1.5 });
        assert_eq!(spec.default(), "1.2");
        assert!(spec.is_knob());
        assert_eq!(spec.doc(), "pruning slack");
        assert!(!ParamSpec::int("M", 4, 64, "16", "").is_knob());
    }

    #[test]
    #[should_panic(expected = "min > max")]
    fn int_range_must_be_ordered() {
        ParamSpec::int("M", 64, 4, "16", "");
    }

    #[test]
    #[should_panic(expected = "contains NUL or `|`")]
    fn a_choice_cannot_hold_the_separator() {
        ParamSpec::choice("codes", &["f32|sq8"], "f32", "");
    }

    #[test]
    #[should_panic(expected = "NUL byte")]
    fn strings_cannot_hold_nul() {
        ParamSpec::int("M", 4, 64, "16\0", "");
    }

    #[test]
    #[should_panic(expected = "empty name")]
    fn name_cannot_be_empty() {
        ParamSpec::float("", 0.0, 1.0, "0.5", "");
    }
}
