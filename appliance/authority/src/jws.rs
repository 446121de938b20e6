//! JWS compact serialisation (RFC 7515 §7.1): split, decode and re-frame. Only the framing lives
//! here; signatures are made by a [`crate::TokenSigner`] (so an HSM can sign) and checked by
//! [`crate::PublicJwk::verify`]. Input is untrusted: its size is bounded before anything is
//! decoded.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The longest JWS accepted (access token or DPoP proof), in bytes.
pub const MAX_JWS_LEN: usize = 8 * 1024;

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the thing in the error.
pub fn b64url_decode(text: &str, what: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|err| format!("{what} is not base64url: {err}"))
}

/// base64url(sha256(bytes)): the DPoP `ath` and the RFC 7638 thumbprint encoding.
pub fn sha256_b64url(bytes: impl AsRef<[u8]>) -> String {
    b64url(Sha256::digest(bytes.as_ref()))
}

/// A JWS split into its parts, header and payload decoded as JSON objects.
#[derive(Debug)]
pub(crate) struct Compact<'a> {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes that were signed.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; `what` names it ("access token", "DPoP proof") in errors.
pub(crate) fn parse<'a>(jws: &'a str, what: &str) -> Result<Compact<'a>, String> {
    if jws.len() > MAX_JWS_LEN {
        return Err(format!(
            "{what} is {} bytes, over the {MAX_JWS_LEN}-byte limit",
            jws.len()
        ));
    }
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{what} is not a compact JWS of three parts"));
    };
    let signing_input = &jws[..header.len() + 1 + payload.len()];
    let header = object(
        &b64url_decode(header, &format!("{what} header"))?,
        what,
        "header",
    )?;
    let payload = object(
        &b64url_decode(payload, &format!("{what} payload"))?,
        what,
        "payload",
    )?;
    let signature = b64url_decode(signature, &format!("{what} signature"))?;
    Ok(Compact {
        header,
        payload,
        signing_input,
        signature,
    })
}

fn object(bytes: &[u8], what: &str, part: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{what} {part} is not a JSON object")),
        Err(err) => Err(format!("{what} {part} is not JSON: {err}")),
    }
}

/// `BASE64URL(header).BASE64URL(payload)`, ready to be signed.
pub(crate) fn signing_input(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string()),
        b64url(payload.to_string())
    )
}

/// A string member of a JSON object, or `None` when absent or not a string.
pub(crate) fn str_member<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name).and_then(Value::as_str)
}

/// An integer member (seconds since the epoch).
pub(crate) fn int_member(map: &Map<String, Value>, name: &str) -> Option<i64> {
    map.get(name).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_shapes_with_named_errors() {
        assert!(parse("a.b", "proof").unwrap_err().contains("three parts"));
        assert!(
            parse("a.b.c.d", "proof")
                .unwrap_err()
                .contains("three parts")
        );
        let long = "a".repeat(MAX_JWS_LEN + 1);
        assert!(parse(&long, "proof").unwrap_err().contains("limit"));
        let not_object = format!("{}.{}.", b64url("[1]"), b64url("{}"));
        assert!(
            parse(&not_object, "proof")
                .unwrap_err()
                .contains("header is not a JSON object")
        );
        let ok = format!("{}.{}.{}", b64url("{}"), b64url("{\"a\":1}"), b64url("s"));
        let compact = parse(&ok, "proof").unwrap();
        assert_eq!(compact.signature, b"s");
        assert_eq!(int_member(&compact.payload, "a"), Some(1));
    }
}
