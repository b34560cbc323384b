//! Key/value parameters from variant.yaml, with unknown-key detection.

use std::str::FromStr;

use crate::error::{Error, Result, StatusCode};

/// The parameters of one slot call. Every key the slot reads is marked as
/// known; after the call the SDK rejects any key left unread with
/// [`StatusCode::UnknownParameter`], naming the keys the slot accepts.
#[derive(Clone, Debug, Default)]
pub struct Params {
    items: Vec<(String, String)>,
    read: Vec<bool>,
    accepted: Vec<String>,
}

impl Params {
    /// Parameters from (key, value) pairs.
    pub fn new<K: Into<String>, V: Into<String>>(
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Params {
        let items: Vec<(String, String)> = items
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Params {
            read: vec![false; items.len()],
            items,
            accepted: Vec::new(),
        }
    }

    /// The value of `key` parsed as `T`, or `None` when absent. A value that
    /// does not parse is an [`StatusCode::InvalidArgument`] error.
    pub fn get<T: FromStr>(&mut self, key: &str) -> Result<Option<T>> {
        if !self.accepted.iter().any(|k| k == key) {
            self.accepted.push(key.to_owned());
        }
        let Some(index) = self.items.iter().position(|(k, _)| k == key) else {
            return Ok(None);
        };
        self.read[index] = true;
        let value = &self.items[index].1;
        value.trim().parse::<T>().map(Some).map_err(|_| {
            Error::invalid(format!(
                "parameter `{key}`: `{value}` is not a valid {}",
                short_type_name::<T>()
            ))
        })
    }

    /// The value of `key` parsed as `T`, or `default` when absent.
    pub fn get_or<T: FromStr>(&mut self, key: &str, default: T) -> Result<T> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Fails with [`StatusCode::UnknownParameter`] when a key was never read.
    pub fn finish(&self) -> Result<()> {
        let unknown: Vec<&str> = self
            .items
            .iter()
            .zip(&self.read)
            .filter(|(_, read)| !**read)
            .map(|((k, _), _)| k.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let accepted = if self.accepted.is_empty() {
            "none".to_owned()
        } else {
            self.accepted.join(", ")
        };
        Err(Error::new(
            StatusCode::UnknownParameter,
            format!(
                "unknown parameter{} `{}` (accepted: {accepted})",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join("`, `")
            ),
        ))
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_and_rejects_unknown_keys() {
        let mut p = Params::new([("ef", "64"), ("bogus", "1")]);
        assert_eq!(p.get_or::<usize>("ef", 10).unwrap(), 64);
        assert_eq!(p.get_or::<usize>("m", 16).unwrap(), 16);
        let err = p.finish().unwrap_err();
        assert_eq!(err.status, StatusCode::UnknownParameter);
        assert!(err.message.contains("`bogus`"), "{}", err.message);
        assert!(err.message.contains("ef, m"), "{}", err.message);
    }

    #[test]
    fn malformed_value_is_invalid_argument() {
        let mut p = Params::new([("ef", "ten")]);
        let err = p.get::<usize>("ef").unwrap_err();
        assert_eq!(err.status, StatusCode::InvalidArgument);
        assert!(err.message.contains("`ten` is not a valid usize"));
    }
}
