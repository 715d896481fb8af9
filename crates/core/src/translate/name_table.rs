//! [`NameTable`]: a map keyed by a number and a name, cheap to look up for short names.

/// A map from (number, name) to a value, for what the names in a snapshot come to (a route's
/// namespace, a backendRef's answer). A name of at most 16 bytes (every name of the
/// benchmark, most names in a cluster) is held as two words covering its bytes, so that a
/// look-up is four multiplications, one slot read and four integer comparisons: a
/// `HashMap<&str, _>` costs a hash over the bytes, a probe of control bytes and a `memcmp`
/// call, about half of what resolving a backend cost. Open addressing, linear probing, at
/// most half full.
pub(crate) struct NameTable<'a, V> {
    slots: Vec<Slot<'a, V>>,
    /// 64 − log2 of the slots: a hash's top bits are its slot.
    shift: u32,
    len: usize,
}

#[derive(Clone, Copy)]
struct Slot<'a, V> {
    /// [`EMPTY`] as its third word (a length no name has) for an empty slot.
    key: [u64; 4],
    name: &'a str,
    value: V,
}

/// The third word of an empty slot's key.
const EMPTY: u64 = u64::MAX;

/// Longer names are compared by their text too.
const SHORT: usize = 16;

/// The key of (`number`, `name`): two windows over the first and the last bytes of `name`,
/// overlapping when it is shorter than both, hold every byte, so with the length they tell
/// any two names of at most [`SHORT`] bytes apart. A longer name's second word is a hash of
/// all its bytes.
#[inline(always)]
fn key(number: u64, name: &str) -> [u64; 4] {
    let b = name.as_bytes();
    let n = b.len();
    let word8 = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    let word4 = |s: &[u8]| u64::from(u32::from_le_bytes(s.try_into().unwrap_or_default()));
    let words = if n > SHORT {
        use std::hash::BuildHasher;
        [word8(&b[..8]), rustc_hash::FxBuildHasher.hash_one(b)]
    } else if n >= 8 {
        [word8(&b[..8]), word8(&b[n - 8..])]
    } else if n >= 4 {
        [word4(&b[..4]), word4(&b[n - 4..])]
    } else if n > 0 {
        [u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16, 0]
    } else {
        [0, 0]
    };
    [words[0], words[1], n as u64, number]
}

/// Whether two keys are equal, word by word, the last bytes' word first (the words most
/// names differ in). Not `==` on the arrays: that compares 16 bytes at a time, and loading
/// the key being looked up, just written to the stack 8 bytes at a time, 16 bytes at a time
/// stalls (the store cannot be forwarded to the load): `perf` put 7% of `route_out`'s time
/// on that one load.
#[inline(always)]
fn same(a: &[u64; 4], b: &[u64; 4]) -> bool {
    a[1] == b[1] && a[0] == b[0] && a[2] == b[2] && a[3] == b[3]
}

impl<'a, V: Copy + Default> NameTable<'a, V> {
    /// A table for `capacity` names before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let slots = (2 * capacity).next_power_of_two().max(2);
        NameTable {
            slots: vec![Slot { key: [0, 0, EMPTY, 0], name: "", value: V::default() }; slots],
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    /// How many entries it holds (the tests' check of the count kept for growing).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Where `key` (of `name`) is, and `true`; or the empty slot where it would go, and
    /// `false`.
    #[inline(always)]
    fn find(&self, key: &[u64; 4], name: &str) -> (usize, bool) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mix = |hash: u64, word: u64| hash.wrapping_add(word).wrapping_mul(K);
        let hash = mix(mix(mix(mix(0, key[3]), key[2]), key[0]), key[1]);
        let mask = self.slots.len() - 1;
        let mut i = (hash >> self.shift) as usize & mask;
        loop {
            let slot = &self.slots[i];
            if same(&slot.key, key) && (name.len() <= SHORT || slot.name == name) {
                return (i, true);
            }
            if slot.key[2] == EMPTY {
                return (i, false);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of (`number`, `name`). The tests' way to read a table (translation reads and
    /// fills it with [`NameTable::get_or_insert`]).
    #[cfg(test)]
    pub(crate) fn get(&self, number: u64, name: &str) -> Option<V> {
        match self.find(&key(number, name), name) {
            (i, true) => Some(self.slots[i].value),
            (_, false) => None,
        }
    }

    /// The value of (`number`, `name`), set to `value` first if it has none.
    #[inline(always)]
    pub(crate) fn get_or_insert(&mut self, number: u64, name: &'a str, value: V) -> &mut V {
        let key = key(number, name);
        let i = match self.find(&key, name) {
            (i, true) => i,
            (i, false) => self.add(i, key, name, value),
        };
        &mut self.slots[i].value
    }

    /// Puts a new entry in empty slot `i`, or where it goes once the table has grown; says
    /// where it is.
    #[inline(never)]
    fn add(&mut self, mut i: usize, key: [u64; 4], name: &'a str, value: V) -> usize {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
            i = self.find(&key, name).0;
        }
        self.len += 1;
        self.slots[i] = Slot { key, name, value };
        i
    }

    /// Sets (`number`, `name`) to `value`, replacing what it had.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, number: u64, name: &'a str, value: V) {
        *self.get_or_insert(number, name, value) = value;
    }

    /// Twice the slots, every entry moved to its place among them.
    fn grow(&mut self) {
        let mut grown = NameTable::with_capacity(self.slots.len());
        for slot in self.slots.iter().filter(|slot| slot.key[2] != EMPTY) {
            let i = grown.find(&slot.key, slot.name).0;
            grown.slots[i] = *slot;
        }
        grown.len = self.len;
        *self = grown;
    }
}

#[cfg(test)]
#[path = "name_table_tests.rs"]
mod tests;
