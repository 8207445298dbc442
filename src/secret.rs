//! Random secrets, the constant-time comparison every secret check goes through, and the
//! digest a secret is kept as where the secret itself must not be.

use std::fs::File;
use std::io::{self, Read};

/// Generated secrets are 24 random bytes: 192 bits, hex-encoded.
pub const SECRET_BYTES: usize = 24;

/// A fresh random secret: `bytes` bytes from the kernel's CSPRNG, hex-encoded so it can be
/// pasted into a header, a URL or a shell without quoting.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The shortest webhook secret or admin token the relay takes from outside: 22 characters
/// of base64 carry 132 bits.
pub const MIN_GIVEN_CHARS: usize = 22;
/// The least apparent entropy (`apparent_bits`) a given secret must show.
pub const MIN_GIVEN_BITS: f64 = 128.0;

/// Why a secret given from outside is refused, in words; None when it will do. A token
/// that guards the API and the setup page must not fall to a guesser.
pub fn weakness(secret: &str) -> Option<String> {
    let chars = secret.chars().count();
    let bits = apparent_bits(secret);
    (chars < MIN_GIVEN_CHARS || bits < MIN_GIVEN_BITS).then(|| {
        format!(
            "{chars} characters, about {bits:.0} bits; at least {MIN_GIVEN_CHARS} random \
             characters and {MIN_GIVEN_BITS:.0} bits are needed"
        )
    })
}

/// How many bits a secret appears to carry: its length times the bits of a character drawn
/// from the kinds it uses (digits, lower case, upper case, other ASCII, anything else), with
/// the length counted at most twice the number of different characters, so that `aaaa...`,
/// `abab...` or a word repeated is not taken for a long secret. An estimate from above for
/// chosen secrets; for random ones it is what they hold.
pub fn apparent_bits(secret: &str) -> f64 {
    let mut kinds = [false; 5];
    let mut distinct: Vec<char> = Vec::new();
    let mut len = 0usize;
    for c in secret.chars() {
        len += 1;
        let kind = match c {
            '0'..='9' => 0,
            'a'..='z' => 1,
            'A'..='Z' => 2,
            c if c.is_ascii() => 3,
            _ => 4,
        };
        kinds[kind] = true;
        if !distinct.contains(&c) {
            distinct.push(c);
        }
    }
    const POOL: [f64; 5] = [10.0, 26.0, 26.0, 33.0, 128.0];
    let pool: f64 = POOL
        .iter()
        .zip(kinds)
        .filter(|(_, used)| *used)
        .map(|(n, _)| n)
        .sum();
    if pool == 0.0 {
        return 0.0;
    }
    len.min(distinct.len() * 2) as f64 * pool.log2()
}

/// Compares a presented secret with the real one without an early exit, so the time taken
/// tells an attacker nothing about how many leading characters were right. The length is not
/// hidden; our secrets have a fixed, public length anyway.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    let diff = presented
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    // black_box keeps the optimiser from turning the fold back into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// SHA-256 of a secret, hex-encoded: enough to recognise it, useless to present.
pub fn digest(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_secrets_are_hex_of_the_asked_length_and_differ() {
        let a = random_hex(24).unwrap();
        let b = random_hex(24).unwrap();
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn weak_secrets_are_refused_and_random_ones_taken() {
        for weak in [
            "abc",
            "changeme-changeme-changeme",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababab",
            "0123456789abcdef0123",
            "password1234567890abcdef",
        ] {
            assert!(weakness(weak).is_some(), "{weak} was taken");
        }
        for strong in [
            random_hex(SECRET_BYTES).unwrap().as_str(),
            "vR3k9_Qz-LmW2xPa7tYb0c",
            "test-webhook-secret-0123456789abcdef",
            "Zm9vYmFyYmF6cXV4cXV1eHh5eno=",
        ] {
            assert_eq!(weakness(strong), None, "{strong} was refused");
        }
        let said = weakness("abc").unwrap();
        assert!(said.starts_with("3 characters, about 14 bits"), "{said}");
    }

    #[test]
    fn comparison_matches_only_equal_secrets() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
