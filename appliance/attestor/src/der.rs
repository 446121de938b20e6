//! A minimal DER writer and reader for the structures this crate builds and checks by hand
//! (RFC 3161 tokens, CMS SignedData, precertificate TBS). Only definite lengths; the reader
//! rejects indefinite and non-minimal lengths and never reads past its input.

use crate::AttestorError;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: tag byte, length, content.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// A constructed value of `tag` holding the concatenation of `parts`.
pub(crate) fn cons(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// DER SET OF: elements sorted by their encodings (X.690 §11.6).
pub(crate) fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    tlv(SET, &elements.concat())
}

/// An OBJECT IDENTIFIER from its arcs.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let mut encode = |mut value: u64| {
        let mut stack = vec![(value & 0x7f) as u8];
        value >>= 7;
        while value > 0 {
            stack.push(0x80 | (value & 0x7f) as u8);
            value >>= 7;
        }
        stack.reverse();
        content.extend_from_slice(&stack);
    };
    if arcs.len() >= 2 {
        encode(arcs[0] * 40 + arcs[1]);
        for arc in &arcs[2..] {
            encode(*arc);
        }
    }
    tlv(OID, &content)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn uint(bytes: &[u8]) -> Vec<u8> {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let mut content = bytes.get(first..).unwrap_or(&[0]).to_vec();
    if content.is_empty() {
        content.push(0);
    }
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(INTEGER, &content)
}

/// A parsed TLV borrowing its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole encoding (tag, length and content).
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and the rest.
pub(crate) fn read<'a>(
    input: &'a [u8],
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), AttestorError> {
    let bad = |reason: &str| AttestorError::Der {
        what,
        reason: reason.to_owned(),
    };
    if input.len() < 2 {
        return Err(bad("truncated"));
    }
    let tag = input[0];
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tags are not supported"));
    }
    let first = input[1];
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < 2 + count {
            return Err(bad("bad length"));
        }
        let mut length = 0usize;
        for byte in &input[2..2 + count] {
            length = (length << 8) | usize::from(*byte);
        }
        if length < 0x80 || input[2] == 0 {
            return Err(bad("non-minimal length"));
        }
        (length, 2 + count)
    };
    if input.len() - header < length {
        return Err(bad("length beyond the input"));
    }
    let end = header + length;
    Ok((
        Tlv {
            tag,
            content: &input[header..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Reads one TLV that must have `tag`.
pub(crate) fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), AttestorError> {
    let (value, rest) = read(input, what)?;
    if value.tag != tag {
        return Err(AttestorError::Der {
            what,
            reason: format!("tag 0x{:02x}, expected 0x{tag:02x}", value.tag),
        });
    }
    Ok((value, rest))
}

/// All TLVs of a constructed value's content.
pub(crate) fn children<'a>(
    mut content: &'a [u8],
    what: &'static str,
) -> Result<Vec<Tlv<'a>>, AttestorError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (value, rest) = read(content, what)?;
        out.push(value);
        content = rest;
        if out.len() > 4096 {
            return Err(AttestorError::Der {
                what,
                reason: "too many elements".into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(
            oid(&[1, 2, 840, 113549]),
            [0x06, 0x06, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
        assert_eq!(uint(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0, 0, 5]), [0x02, 0x01, 0x05]);
        let long = tlv(OCTET_STRING, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let (value, rest) = read(&long, "test").unwrap();
        assert_eq!(value.content.len(), 200);
        assert!(rest.is_empty());
        assert!(read(&[0x04, 0x81, 0x05, 0, 0, 0, 0, 0], "test").is_err());
        assert!(read(&[0x04, 0x05, 0], "test").is_err());
    }
}
