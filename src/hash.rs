//! A content hash for stable keys: 128-bit FNV-1a, fast and fixed, for the dedup keys of
//! messages and the cache tag of a token check. Not cryptographic.

const FNV_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// 128-bit FNV-1a over the concatenated parts: a stable key for dedup and cache tags, not a
/// defence against anyone choosing inputs to collide.
pub fn fnv1a_128<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u128 {
    parts
        .into_iter()
        .flat_map(|p| p.iter())
        .fold(FNV_OFFSET, |h, &b| {
            (h ^ u128::from(b)).wrapping_mul(FNV_PRIME)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vector() {
        // The published FNV-1a 128 hash of "a".
        assert_eq!(
            format!("{:032x}", fnv1a_128([b"a".as_slice()])),
            "d228cb696f1a8caf78912b704e4a8964"
        );
    }
}
