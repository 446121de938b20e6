//! RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs (generation and
//! verification). Generation takes a function that returns the hash of a complete, aligned
//! subtree, so the log can answer from its in-memory levels and tests from a plain leaf list.

use sha2::{Digest as _, Sha256};

use crate::AttestorError;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The hashes of a tree, as far as proofs need them: `perfect(level, index)` is the hash of the
/// complete subtree of `2^level` leaves starting at leaf `index << level`.
pub trait SubtreeHashes {
    /// The hash of a complete, aligned subtree.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, AttestorError>;

    /// `MTH(D[lo:hi])` for ranges proofs ask for: built from complete subtrees.
    fn range(&self, lo: u64, hi: u64) -> Result<Hash, AttestorError> {
        let n = hi - lo;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            return self.perfect(n.trailing_zeros(), lo >> n.trailing_zeros());
        }
        let k = split_point(n);
        Ok(node_hash(
            &self.range(lo, lo + k)?,
            &self.range(lo + k, hi)?,
        ))
    }
}

/// A plain list of leaf hashes (tests, the monitor).
impl SubtreeHashes for [Hash] {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, AttestorError> {
        let width = 1u64 << level;
        let lo = index * width;
        let lo_usize =
            usize::try_from(lo).map_err(|_| AttestorError::Proof("index overflow".into()))?;
        let hi = lo_usize
            + usize::try_from(width).map_err(|_| AttestorError::Proof("width overflow".into()))?;
        if hi > self.len() {
            return Err(AttestorError::Proof(format!(
                "subtree {lo}..{hi} beyond {} leaves",
                self.len()
            )));
        }
        Ok(root_of(&self[lo_usize..hi]))
    }
}

/// The root of a list of leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    tree: &(impl SubtreeHashes + ?Sized),
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, AttestorError> {
    if index >= size {
        return Err(AttestorError::Proof(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    let mut proof = Vec::new();
    path(tree, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(
    tree: &(impl SubtreeHashes + ?Sized),
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), AttestorError> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(tree, m, lo, lo + k, out)?;
        out.push(tree.range(lo + k, hi)?);
    } else {
        path(tree, m - k, lo + k, hi, out)?;
        out.push(tree.range(lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof between sizes `old` and `new` (RFC 9162 §2.1.4.1).
pub fn consistency_proof(
    tree: &(impl SubtreeHashes + ?Sized),
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, AttestorError> {
    if old > new {
        return Err(AttestorError::Proof(format!(
            "old size {old} exceeds new size {new}"
        )));
    }
    let mut proof = Vec::new();
    if old == 0 || old == new {
        return Ok(proof);
    }
    subproof(tree, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof(
    tree: &(impl SubtreeHashes + ?Sized),
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), AttestorError> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(tree.range(lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(tree, m, lo, lo + k, complete, out)?;
        out.push(tree.range(lo + k, hi)?);
    } else {
        subproof(tree, m - k, lo + k, hi, false, out)?;
        out.push(tree.range(lo, lo + k)?);
    }
    Ok(())
}

/// Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, AttestorError> {
    if index >= size {
        return Err(AttestorError::Proof(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(AttestorError::Proof("inclusion proof is too long".into()));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(AttestorError::Proof("inclusion proof is too short".into()));
    }
    Ok(r)
}

/// Verifies an inclusion proof against `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), AttestorError> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if &computed != root {
        return Err(AttestorError::Proof(format!(
            "inclusion proof of leaf {index} in size {size} yields root {}, expected {}",
            hex::encode(computed),
            hex::encode(root)
        )));
    }
    Ok(())
}

/// Verifies a consistency proof between `(old, old_root)` and `(new, new_root)` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), AttestorError> {
    let fail = |reason: &str| {
        Err(AttestorError::Proof(format!(
            "consistency {old} -> {new}: {reason}"
        )))
    };
    if old > new {
        return fail("old size exceeds new size");
    }
    if old == 0 {
        // Every tree is consistent with the empty tree, but a proof from zero proves nothing
        // and is rejected like transparency-dev/merkle does.
        return fail("old size 0 has no consistency proof");
    }
    if old == new {
        if !proof.is_empty() {
            return fail("proof must be empty for equal sizes");
        }
        if old_root != new_root {
            return fail("roots differ for equal sizes");
        }
        return Ok(());
    }
    if proof.is_empty() {
        return fail("empty proof");
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (path[0], path[0]);
    for c in &path[1..] {
        if s_n == 0 {
            return fail("proof is too long");
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return fail("proof is too short");
    }
    if &f_r != old_root {
        return fail("old root does not match");
    }
    if &s_r != new_root {
        return fail("new root does not match");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_proofs_verify_for_every_small_tree() {
        let leaves: Vec<Hash> = (0u8..70).map(|i| leaf_hash(&[i])).collect();
        for size in 1..=leaves.len() as u64 {
            let tree = &leaves[..size as usize];
            let root = root_of(tree);
            for index in 0..size {
                let proof = inclusion_proof(tree, index, size).unwrap();
                verify_inclusion(index, size, &tree[index as usize], &proof, &root).unwrap();
            }
            for old in 1..=size {
                let proof = consistency_proof(tree, old, size).unwrap();
                let old_root = root_of(&tree[..old as usize]);
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
                if old < size {
                    let mut bad = root;
                    bad[0] ^= 1;
                    assert!(verify_consistency(old, size, &old_root, &bad, &proof).is_err());
                }
            }
        }
    }
}
