//! Keys and values as db_bench and peerbench make them, so that the same parameters mean the
//! same data in every engine: key `i` is its decimal zero-padded to the key size
//! (`format!("{i:016}")` at the default 16 bytes), values are random bytes.
//!
//! db_bench itself writes the integer as 8 big-endian bytes padded with '0' to the key size:
//! another spelling with the same length and the same order, so the trees are shaped alike.

use anyhow::bail;
use rand::rngs::SmallRng;
use rand::{Rng, RngExt, SeedableRng};

/// Writes keys into one reusable buffer, so generating a key allocates nothing.
pub struct KeyGen {
    buf: Vec<u8>,
}

impl KeyGen {
    /// Fails if `key_size` cannot hold every key below `num` (a shorter key would make
    /// distinct integers collide and quietly shrink the key space being measured).
    pub fn new(key_size: usize, num: u64) -> anyhow::Result<KeyGen> {
        let digits = decimal_digits(num.saturating_sub(1));
        if key_size < digits {
            bail!(
                "--key-size {key_size} cannot hold key {} ({digits} decimal digits); use --key-size {digits} or more",
                num - 1
            );
        }
        Ok(KeyGen::unchecked(key_size))
    }

    /// For callers that checked the key size against their key space with [`KeyGen::new`].
    pub fn unchecked(key_size: usize) -> KeyGen {
        KeyGen {
            buf: vec![b'0'; key_size],
        }
    }

    /// Key `i`: its decimal right-aligned in the key size, zeros before it.
    pub fn key(&mut self, mut i: u64) -> &[u8] {
        for byte in self.buf.iter_mut().rev() {
            *byte = b'0' + (i % 10) as u8;
            i /= 10;
        }
        &self.buf
    }

    /// An owned copy of key `i`, for range bounds.
    pub fn owned(&mut self, i: u64) -> Vec<u8> {
        self.key(i).to_vec()
    }
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Independent random sequences: a read must not replay the very keys a fill drew (it would
/// find them all), and two threads must not draw the same keys.
#[derive(Clone, Copy)]
pub enum Stream {
    Writes = 0,
    Reads = 1,
    Seeks = 2,
    Ranges = 3,
    Mixed = 4,
}

/// One worker's source of random key numbers and values.
pub struct Random {
    rng: SmallRng,
    value: Vec<u8>,
}

impl Random {
    pub fn new(seed: u64, stream: Stream, worker: usize, value_size: usize) -> Random {
        let seed = seed ^ ((stream as u64) << 48) ^ ((worker as u64) << 32);
        Random {
            rng: SmallRng::seed_from_u64(seed),
            value: vec![0; value_size],
        }
    }

    /// A key number drawn uniformly from `[0, n)`, with replacement (as db_bench's
    /// `rand.Next() % num`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.random_range(0..n.max(1))
    }

    /// Whether an event of probability `p` happens.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// A fresh random value (new bytes for every write, so nothing can deduplicate them).
    pub fn value(&mut self) -> &[u8] {
        self.rng.fill_bytes(&mut self.value);
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_zero_padded_decimal() {
        let mut g = KeyGen::new(16, 1000).unwrap();
        assert_eq!(g.key(42), format!("{:016}", 42).as_bytes());
        assert_eq!(g.key(0), b"0000000000000000");
        let mut g = KeyGen::new(20, 10).unwrap();
        assert_eq!(g.key(7), format!("{:020}", 7).as_bytes());
    }

    #[test]
    fn a_key_size_too_small_for_num_is_refused() {
        assert!(KeyGen::new(3, 1000).is_ok());
        let err = KeyGen::new(3, 1001).err().unwrap().to_string();
        assert!(err.contains("--key-size 4"), "{err}");
    }
}
