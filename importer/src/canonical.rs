//! Canonical JSON (RFC 8785) for every signed or hashed kit file.

use serde::Serialize;

use crate::error::KitError;

/// Serialises `value` as RFC 8785 canonical JSON: sorted keys, no whitespace, ES6 number form.
pub fn to_canonical_json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, KitError> {
    serde_json_canonicalizer::to_vec(value).map_err(|error| KitError::Encoding {
        what: what.to_string(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_numbers_are_es6() {
        let value = serde_json::json!({"b": 1.50, "a": [3, "x"], "c": 1e21});
        let bytes = to_canonical_json("test", &value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a":[3,"x"],"b":1.5,"c":1e+21}"#
        );
    }
}
