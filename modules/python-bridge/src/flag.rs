//! How a parameter declared `bool` is spelled: Python's `bool("false")` is
//! true, so the bridge reads the flag itself.

/// `true`/`1` or `false`/`0`; `None` for anything else.
#[cfg_attr(
    not(feature = "python"),
    allow(dead_code, reason = "the slots that use it need the python feature")
)]
pub(crate) fn parse_flag(raw: &str) -> Option<bool> {
    match raw {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_spelled_out() {
        assert_eq!(parse_flag("true"), Some(true));
        assert_eq!(parse_flag("1"), Some(true));
        assert_eq!(parse_flag("false"), Some(false));
        assert_eq!(parse_flag("0"), Some(false));
        assert_eq!(parse_flag("False"), None);
        assert_eq!(parse_flag("yes"), None);
        assert_eq!(parse_flag(""), None);
    }
}
