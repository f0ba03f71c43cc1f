//! Owns authenticating team-tier values. With `[cache] team_key_env` set, every value written
//! carries a keyed blake3 MAC over its Redis key and its bytes, and a value read back is used
//! only if its MAC is right: whoever can write to the Redis but does not hold the team's secret
//! cannot plant an entry, nor move a real one under another key. The key is derived from the
//! secret (`blake3::derive_key`), so the secret itself is never kept.

use std::fmt;

/// The `derive_key` context: fixed, and versioned so that a future scheme cannot accept v1 tags.
const CONTEXT: &str = "review-lsp team cache v1";
const TAG_LEN: usize = blake3::OUT_LEN;

pub struct Seal {
    key: [u8; 32],
}

impl Seal {
    pub fn from_secret(secret: &[u8]) -> Seal {
        Seal { key: blake3::derive_key(CONTEXT, secret) }
    }

    /// `name` is the full Redis key; its length goes first so the split between key and value
    /// is part of what is authenticated.
    fn tag(&self, name: &str, value: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(value);
        hasher.finalize()
    }

    /// `value` followed by its tag.
    pub fn seal(&self, name: &str, mut value: Vec<u8>) -> Vec<u8> {
        let tag = self.tag(name, &value);
        value.extend_from_slice(tag.as_bytes());
        value
    }

    /// The value without its tag, if the tag is right. `blake3::Hash` compares in constant
    /// time, so a forger learns nothing from how long a rejection takes.
    pub fn open(&self, name: &str, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let tag = blake3::Hash::from_bytes(sealed[split..].try_into().ok()?);
        sealed.truncate(split);
        (self.tag(name, &sealed) == tag).then_some(sealed)
    }
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seal([key hidden])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_secret() {
        let seal = Seal::from_secret(b"team secret");
        let sealed = seal.seal("ns:c:00", b"value".to_vec());
        assert_eq!(seal.open("ns:c:00", sealed.clone()), Some(b"value".to_vec()));
        assert_eq!(seal.open("ns:c:01", sealed.clone()), None, "moved under another key");
        assert_eq!(Seal::from_secret(b"other").open("ns:c:00", sealed.clone()), None, "another secret");
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(seal.open("ns:c:00", flipped), None, "changed value");
        assert_eq!(seal.open("ns:c:00", b"value".to_vec()), None, "no tag");
        assert_eq!(seal.open("ns:c:00", Vec::new()), None);
        assert!(!format!("{seal:?}").contains("secret"));
    }
}
