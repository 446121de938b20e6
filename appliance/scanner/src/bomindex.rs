//! BOM-Index sidecar (docs/bom-index.md): a small binary file written next to each image SBOM
//! for fast joins by matching and policy: a header, the image's layers, a purl table (one row
//! per component: bom-ref, purl, layer), one roaring bitmap per layer (the components that layer
//! introduced) and one for `usedByEntrypoint`; a SHA-256 trailer over everything before it.
//!
//! [`BomIndex::from_bytes`] never panics on hostile input (fuzzed): every count is checked
//! against the bytes that remain before anything is allocated.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use sha2::{Digest as _, Sha256};

use crate::ScanResult;
use crate::digest::Digest;
use crate::usage::Usage;

/// File magic.
pub const MAGIC: &[u8; 8] = b"STELLABI";
/// Format version written and read.
pub const VERSION: u16 = 1;
/// Most components an index may hold.
pub const MAX_COMPONENTS: u32 = 4_000_000;
/// Most layers an index may hold.
pub const MAX_LAYERS: u32 = 4096;
/// Longest string in the purl table.
pub const MAX_STRING: u32 = 64 << 10;

/// Why an index could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BomIndexError {
    /// Not a BOM-Index (magic).
    #[error("not a BOM-Index (bad magic)")]
    Magic,
    /// Another version.
    #[error("BOM-Index version {0} is not supported (this reader knows {VERSION})")]
    Version(u16),
    /// The bytes end early.
    #[error("BOM-Index truncated while reading {0}")]
    Truncated(&'static str),
    /// A count or value is out of range.
    #[error("BOM-Index field {field} out of range: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The SHA-256 trailer does not match.
    #[error("BOM-Index checksum mismatch")]
    Checksum,
}

/// The catalog's `format` of a stored BOM-Index (artifact kind `bom-index`).
pub const FORMAT: &str = "stella-bom-index-v1";

/// One row of the purl table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedComponent {
    /// The component's bom-ref (purl, `bin:{sha256}`, or `ECOSYSTEM:NAME@VERSION`).
    pub bom_ref: String,
    /// Its purl, if any.
    pub purl: Option<String>,
    /// Index of the layer that introduced it.
    pub layer: u32,
}

/// An in-memory BOM-Index.
#[derive(Debug, Clone, PartialEq)]
pub struct BomIndex {
    /// Image id (config digest).
    pub image_id: Digest,
    /// Layer diff_ids, bottom first.
    pub layers: Vec<Digest>,
    /// Components, sorted by bom-ref; a component's position is its bitmap id.
    pub components: Vec<IndexedComponent>,
    /// Per layer: positions of the components it introduced.
    pub layer_bitmaps: Vec<RoaringBitmap>,
    /// Positions of the components in the usage closure.
    pub used_by_entrypoint: RoaringBitmap,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BomIndexError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(BomIndexError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(BomIndexError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, BomIndexError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, BomIndexError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
    fn digest(&mut self, what: &'static str) -> Result<Digest, BomIndexError> {
        let raw = self.take(32, what)?;
        Digest::parse(&format!("sha256:{}", hex::encode(raw))).map_err(|e| BomIndexError::Invalid {
            field: what,
            reason: e.to_string(),
        })
    }
    fn string(&mut self, what: &'static str) -> Result<String, BomIndexError> {
        let len = self.u32(what)?;
        if len > MAX_STRING {
            return Err(BomIndexError::Invalid {
                field: what,
                reason: format!("{len} bytes is longer than {MAX_STRING}"),
            });
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| BomIndexError::Invalid {
            field: what,
            reason: e.to_string(),
        })
    }
    fn bitmap(
        &mut self,
        what: &'static str,
        universe: u32,
    ) -> Result<RoaringBitmap, BomIndexError> {
        let len = self.u32(what)?;
        let bytes = self.take(len as usize, what)?;
        let bitmap =
            RoaringBitmap::deserialize_from(bytes).map_err(|e| BomIndexError::Invalid {
                field: what,
                reason: e.to_string(),
            })?;
        if bitmap.max().is_some_and(|max| max >= universe) {
            return Err(BomIndexError::Invalid {
                field: what,
                reason: format!("bit beyond the {universe} components"),
            });
        }
        Ok(bitmap)
    }
}

fn raw_digest(digest: &Digest) -> Vec<u8> {
    hex::decode(digest.hex()).unwrap_or_else(|_| vec![0; 32])
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    put_u32(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn put_bitmap(out: &mut Vec<u8>, bitmap: &RoaringBitmap) {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    // Writing to a Vec cannot fail.
    if bitmap.serialize_into(&mut bytes).is_err() {
        bytes.clear();
    }
    put_u32(out, bytes.len());
    out.extend_from_slice(&bytes);
}

impl BomIndex {
    /// Builds the index of a scan; `usage` fills the `usedByEntrypoint` bitmap (empty without it).
    pub fn build(result: &ScanResult, usage: Option<&Usage>) -> BomIndex {
        let mut components: Vec<IndexedComponent> = result
            .components
            .iter()
            .map(|c| IndexedComponent {
                bom_ref: c.bom_ref.clone(),
                purl: c.purl.clone(),
                layer: u32::try_from(c.layer_index).unwrap_or(u32::MAX),
            })
            .collect();
        components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
        components.dedup_by(|a, b| a.bom_ref == b.bom_ref);
        let mut layer_bitmaps = vec![RoaringBitmap::new(); result.layers.len()];
        let mut used_by_entrypoint = RoaringBitmap::new();
        for (position, component) in components.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            if let Some(bitmap) = layer_bitmaps.get_mut(component.layer as usize) {
                bitmap.insert(position);
            }
            if usage.is_some_and(|u| u.uses(&component.bom_ref)) {
                used_by_entrypoint.insert(position);
            }
        }
        BomIndex {
            image_id: result.image.image_id.clone(),
            layers: result.layers.iter().map(|l| l.diff_id.clone()).collect(),
            components,
            layer_bitmaps,
            used_by_entrypoint,
        }
    }

    /// The binary form (docs/bom-index.md).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&raw_digest(&self.image_id));
        put_u32(&mut out, self.layers.len());
        put_u32(&mut out, self.components.len());
        for layer in &self.layers {
            out.extend_from_slice(&raw_digest(layer));
        }
        for component in &self.components {
            put_string(&mut out, &component.bom_ref);
            put_string(&mut out, component.purl.as_deref().unwrap_or(""));
            out.extend_from_slice(&component.layer.to_le_bytes());
        }
        for bitmap in &self.layer_bitmaps {
            put_bitmap(&mut out, bitmap);
        }
        put_bitmap(&mut out, &self.used_by_entrypoint);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Reads an index, checking magic, version, every count and the checksum.
    pub fn from_bytes(bytes: &[u8]) -> Result<BomIndex, BomIndexError> {
        if bytes.len() < MAGIC.len() || bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(BomIndexError::Magic);
        }
        let body_len = bytes
            .len()
            .checked_sub(32)
            .ok_or(BomIndexError::Truncated("checksum"))?;
        let (body, checksum) = bytes.split_at(body_len);
        let mut reader = Reader {
            bytes: body,
            pos: MAGIC.len(),
        };
        let version = reader.u16("version")?;
        if version != VERSION {
            return Err(BomIndexError::Version(version));
        }
        let _flags = reader.u16("flags")?;
        let image_id = reader.digest("image id")?;
        let layer_count = reader.u32("layer count")?;
        let component_count = reader.u32("component count")?;
        if layer_count > MAX_LAYERS {
            return Err(BomIndexError::Invalid {
                field: "layer count",
                reason: format!("{layer_count} > {MAX_LAYERS}"),
            });
        }
        // Each component takes at least 12 bytes, each layer 32 + a bitmap length.
        if component_count > MAX_COMPONENTS
            || (component_count as usize).saturating_mul(12) > reader.remaining()
        {
            return Err(BomIndexError::Invalid {
                field: "component count",
                reason: format!("{component_count} components do not fit"),
            });
        }
        let mut layers = Vec::with_capacity(layer_count as usize);
        for _ in 0..layer_count {
            layers.push(reader.digest("layer diff_id")?);
        }
        let mut components = Vec::with_capacity(component_count as usize);
        for _ in 0..component_count {
            let bom_ref = reader.string("bom-ref")?;
            let purl = reader.string("purl")?;
            let layer = reader.u32("component layer")?;
            if layer >= layer_count {
                return Err(BomIndexError::Invalid {
                    field: "component layer",
                    reason: format!("layer {layer} of {layer_count}"),
                });
            }
            if components
                .last()
                .is_some_and(|last: &IndexedComponent| last.bom_ref >= bom_ref)
            {
                return Err(BomIndexError::Invalid {
                    field: "bom-ref",
                    reason: "purl table not sorted and unique".into(),
                });
            }
            components.push(IndexedComponent {
                bom_ref,
                purl: (!purl.is_empty()).then_some(purl),
                layer,
            });
        }
        let mut layer_bitmaps = Vec::with_capacity(layer_count as usize);
        for _ in 0..layer_count {
            layer_bitmaps.push(reader.bitmap("layer bitmap", component_count)?);
        }
        let used_by_entrypoint = reader.bitmap("usedByEntrypoint bitmap", component_count)?;
        if reader.remaining() != 0 {
            return Err(BomIndexError::Invalid {
                field: "trailer",
                reason: format!("{} unexpected bytes", reader.remaining()),
            });
        }
        // Checked last, so that the structure checks above are what a fuzzer exercises.
        if Sha256::digest(body).as_slice() != checksum {
            return Err(BomIndexError::Checksum);
        }
        Ok(BomIndex {
            image_id,
            layers,
            components,
            layer_bitmaps,
            used_by_entrypoint,
        })
    }

    /// Position (bitmap id) of a component by bom-ref (binary search).
    pub fn position(&self, bom_ref: &str) -> Option<u32> {
        self.components
            .binary_search_by(|c| c.bom_ref.as_str().cmp(bom_ref))
            .ok()
            .and_then(|p| u32::try_from(p).ok())
    }

    /// Whether the component is in the entrypoint's usage closure.
    pub fn used_by_entrypoint(&self, bom_ref: &str) -> bool {
        self.position(bom_ref)
            .is_some_and(|p| self.used_by_entrypoint.contains(p))
    }

    /// Diff_id of the layer that introduced the component.
    pub fn layer_of(&self, bom_ref: &str) -> Option<&Digest> {
        let position = self.position(bom_ref)? as usize;
        self.layers
            .get(self.components.get(position)?.layer as usize)
    }

    /// The components a layer introduced.
    pub fn components_in_layer(&self, layer: usize) -> impl Iterator<Item = &IndexedComponent> {
        self.layer_bitmaps
            .get(layer)
            .into_iter()
            .flat_map(|b| b.iter())
            .filter_map(|p| self.components.get(p as usize))
    }

    /// bom-ref → purl for every component (for joins that start from purls).
    pub fn purls(&self) -> BTreeMap<&str, Option<&str>> {
        self.components
            .iter()
            .map(|c| (c.bom_ref.as_str(), c.purl.as_deref()))
            .collect()
    }
}

/// Reads an index (the fuzzing entry point).
pub fn read(bytes: &[u8]) -> Result<BomIndex, BomIndexError> {
    BomIndex::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BomIndex {
        let digest = |n: u8| Digest::of_bytes(&[n]);
        let mut layer0 = RoaringBitmap::new();
        layer0.insert(0);
        layer0.insert(1);
        let mut layer1 = RoaringBitmap::new();
        layer1.insert(2);
        let mut used = RoaringBitmap::new();
        used.insert(1);
        BomIndex {
            image_id: digest(9),
            layers: vec![digest(0), digest(1)],
            components: vec![
                IndexedComponent {
                    bom_ref: "bin:00".into(),
                    purl: None,
                    layer: 0,
                },
                IndexedComponent {
                    bom_ref: "pkg:deb/debian/zlib1g@1".into(),
                    purl: Some("pkg:deb/debian/zlib1g@1".into()),
                    layer: 0,
                },
                IndexedComponent {
                    bom_ref: "pkg:npm/a@1".into(),
                    purl: Some("pkg:npm/a@1".into()),
                    layer: 1,
                },
            ],
            layer_bitmaps: vec![layer0, layer1],
            used_by_entrypoint: used,
        }
    }

    #[test]
    fn round_trip_and_lookups() {
        let index = sample();
        let bytes = index.to_bytes();
        let back = BomIndex::from_bytes(&bytes).unwrap();
        assert_eq!(back, index);
        assert!(back.used_by_entrypoint("pkg:deb/debian/zlib1g@1"));
        assert!(!back.used_by_entrypoint("pkg:npm/a@1"));
        assert_eq!(back.layer_of("pkg:npm/a@1"), Some(&Digest::of_bytes(&[1])));
        let in_layer0: Vec<&str> = back
            .components_in_layer(0)
            .map(|c| c.bom_ref.as_str())
            .collect();
        assert_eq!(in_layer0, ["bin:00", "pkg:deb/debian/zlib1g@1"]);
    }

    #[test]
    fn damage_is_a_named_error() {
        let bytes = sample().to_bytes();
        assert_eq!(BomIndex::from_bytes(b"nope"), Err(BomIndexError::Magic));
        let mut flipped = bytes.clone();
        let at = bytes.windows(6).position(|w| w == b"bin:00").unwrap() + 5;
        flipped[at] ^= 1;
        assert_eq!(BomIndex::from_bytes(&flipped), Err(BomIndexError::Checksum));
        for cut in [8, 10, 40, bytes.len() - 1] {
            assert!(BomIndex::from_bytes(&bytes[..cut]).is_err());
        }
        let mut other = bytes.clone();
        other[8] = 2;
        assert_eq!(BomIndex::from_bytes(&other), Err(BomIndexError::Version(2)));
    }
}
