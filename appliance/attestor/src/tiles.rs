//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, with `N` in
//! 3-digit path elements (`x001/x234/067`), and the entry-bundle encoding.

use crate::AttestorError;

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    /// `Some(L)` for a hash tile of tile level `L`, `None` for an entry bundle.
    pub level: Option<u8>,
    /// Tile index `N`.
    pub index: u64,
    /// `Some(W)` (1..=255) for a partial tile.
    pub partial_width: Option<u16>,
}

impl TileId {
    /// Number of hashes (or entries) the tile holds.
    pub fn width(&self) -> u64 {
        self.partial_width.map_or(TILE_WIDTH, u64::from)
    }

    /// The path relative to the log root, e.g. `tile/0/x001/234.p/7`.
    pub fn path(&self) -> String {
        let level = match self.level {
            Some(level) => level.to_string(),
            None => "entries".to_owned(),
        };
        let mut out = format!("tile/{level}/{}", encode_index(self.index));
        if let Some(width) = self.partial_width {
            out.push_str(&format!(".p/{width}"));
        }
        out
    }

    /// Parses a path relative to the log root (a leading `/` is allowed).
    pub fn parse(path: &str) -> Result<Self, AttestorError> {
        let bad = |reason: &str| AttestorError::TilePath {
            path: path.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let rest = path
            .trim_start_matches('/')
            .strip_prefix("tile/")
            .ok_or_else(|| bad("does not start with tile/"))?;
        let (level_text, rest) = rest.split_once('/').ok_or_else(|| bad("no tile index"))?;
        let level = if level_text == "entries" {
            None
        } else {
            if level_text.is_empty()
                || level_text.len() > 2
                || !level_text.bytes().all(|b| b.is_ascii_digit())
                || (level_text.len() > 1 && level_text.starts_with('0'))
            {
                return Err(bad("level is not a small decimal"));
            }
            let level: u8 = level_text.parse().map_err(|_| bad("level"))?;
            if level > 7 {
                return Err(bad("level above 7"));
            }
            Some(level)
        };
        let (index_text, partial_width) = match rest.split_once(".p/") {
            Some((index_text, width_text)) => {
                if width_text.is_empty()
                    || width_text.len() > 3
                    || !width_text.bytes().all(|b| b.is_ascii_digit())
                    || width_text.starts_with('0')
                {
                    return Err(bad("partial width is not a decimal 1..255"));
                }
                let width: u16 = width_text.parse().map_err(|_| bad("width"))?;
                if width == 0 || u64::from(width) >= TILE_WIDTH {
                    return Err(bad("partial width is not in 1..255"));
                }
                (index_text, Some(width))
            }
            None => (rest, None),
        };
        let elements: Vec<&str> = index_text.split('/').collect();
        if elements.is_empty() || elements.len() > 7 {
            return Err(bad("index has no or too many path elements"));
        }
        let mut index: u64 = 0;
        for (position, element) in elements.iter().enumerate() {
            let last = position + 1 == elements.len();
            let digits = if last {
                *element
            } else {
                element
                    .strip_prefix('x')
                    .ok_or_else(|| bad("non-final index element lacks the x prefix"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index elements are three decimal digits"));
            }
            let value: u64 = digits.parse().map_err(|_| bad("index"))?;
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(value))
                .ok_or_else(|| bad("index overflows"))?;
        }
        if encode_index(index) != index_text {
            return Err(bad("index is not in canonical form"));
        }
        Ok(TileId {
            level,
            index,
            partial_width,
        })
    }
}

/// `1234067` → `x001/x234/067`.
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    groups.reverse();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Encodes entries as an entry bundle: each a big-endian `uint16` length, then the bytes.
pub fn encode_bundle(entries: &[Vec<u8>]) -> Result<Vec<u8>, AttestorError> {
    let mut out = Vec::new();
    for entry in entries {
        let length = u16::try_from(entry.len()).map_err(|_| {
            AttestorError::Entry(format!("entry of {} bytes exceeds 65535", entry.len()))
        })?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Decodes an entry bundle (untrusted bytes).
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<Vec<u8>>, AttestorError> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(AttestorError::Entry(
                "entry bundle ends inside a length".into(),
            ));
        }
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + length {
            return Err(AttestorError::Entry(format!(
                "entry bundle entry {} claims {length} bytes, {} remain",
                entries.len(),
                rest.len() - 2
            )));
        }
        entries.push(rest[2..2 + length].to_vec());
        rest = &rest[2 + length..];
        if entries.len() as u64 > TILE_WIDTH {
            return Err(AttestorError::Entry(
                "entry bundle holds more than 256 entries".into(),
            ));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_c2sp_examples() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        let id = TileId::parse("tile/1/x001/x234/067.p/8").unwrap();
        assert_eq!(
            id,
            TileId {
                level: Some(1),
                index: 1234067,
                partial_width: Some(8)
            }
        );
        assert_eq!(id.path(), "tile/1/x001/x234/067.p/8");
        assert_eq!(TileId::parse("tile/entries/000").unwrap().level, None);
        for bad in [
            "tile/0/1234",
            "tile/0/x01/234",
            "tile/0/001/234",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/8/000",
            "tile/00/000",
            "tile/0/x000/001",
            "tile/0/000/",
            "tiles/0/000",
            "tile/0/../000",
        ] {
            assert!(TileId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bundles_round_trip_and_reject_truncation() {
        let entries = vec![b"a".to_vec(), vec![], vec![7u8; 300]];
        let bytes = encode_bundle(&entries).unwrap();
        assert_eq!(parse_bundle(&bytes).unwrap(), entries);
        assert!(parse_bundle(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_bundle(&[0]).is_err());
    }
}
