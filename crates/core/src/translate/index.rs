//! Lookups over a snapshot, built once per translation.

use std::collections::{BTreeMap, HashMap};

use crate::model::{BackendTlsPolicy, Namespace, ReferenceGrant, Service, Snapshot};

pub(crate) struct Index<'a> {
    namespaces: HashMap<&'a str, &'a Namespace>,
    /// The namespaces holding a Service, numbered in the order they first appear.
    service_namespaces: NameTable<'a, u32>,
    /// (namespace number, name) → the Service; of two with the same name, the later.
    services: NameTable<'a, Option<&'a Service>>,
    grants: HashMap<&'a str, Vec<&'a ReferenceGrant>>,
    tls_policies: HashMap<&'a str, Vec<&'a BackendTlsPolicy>>,
    empty_labels: BTreeMap<String, String>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(snapshot: &'a Snapshot) -> Self {
        let mut grants: HashMap<&str, Vec<&ReferenceGrant>> = HashMap::new();
        for grant in &snapshot.reference_grants {
            grants.entry(grant.meta.namespace.as_str()).or_default().push(grant);
        }
        let mut tls_policies: HashMap<&str, Vec<&BackendTlsPolicy>> = HashMap::new();
        for policy in &snapshot.backend_tls_policies {
            tls_policies.entry(policy.meta.namespace.as_str()).or_default().push(policy);
        }
        let mut service_namespaces = NameTable::with_capacity(snapshot.services.len());
        let mut services = NameTable::with_capacity(snapshot.services.len());
        for service in &snapshot.services {
            let next = u32::try_from(service_namespaces.len()).expect("under 4 G namespaces");
            let namespace = *service_namespaces.get_or_insert(0, &service.meta.namespace, next);
            services.insert(namespace.into(), &service.meta.name, Some(service));
        }
        Index {
            namespaces: snapshot.namespaces.iter().map(|n| (n.name.as_str(), n)).collect(),
            service_namespaces,
            services,
            grants,
            tls_policies,
            empty_labels: BTreeMap::new(),
        }
    }

    /// Labels of a namespace. A namespace that no object defines exists with no labels. The
    /// `kubernetes.io/metadata.name` label is always the namespace's name, as the API server
    /// sets it: a file cannot give namespace `evil` the label `apps` and so pass a listener's
    /// selector for `apps`.
    pub(crate) fn namespace_labels(&self, name: &str) -> std::borrow::Cow<'_, BTreeMap<String, String>> {
        let mut labels =
            std::borrow::Cow::Borrowed(self.namespaces.get(name).map_or(&self.empty_labels, |n| &n.labels));
        if labels.get("kubernetes.io/metadata.name").map(String::as_str) != Some(name) {
            labels.to_mut().insert("kubernetes.io/metadata.name".to_string(), name.to_string());
        }
        labels
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        self.services.get(self.service_namespaces.get(0, namespace)?.into(), name)?
    }

    pub(crate) fn grants_in(&self, namespace: &str) -> &[&'a ReferenceGrant] {
        self.grants.get(namespace).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn tls_policies_in(&self, namespace: &str) -> &[&'a BackendTlsPolicy] {
        self.tls_policies.get(namespace).map_or(&[], Vec::as_slice)
    }
}

/// A map from (number, name) to a value, for the names of a snapshot's objects and what they
/// come to. A name of at most 16 bytes (every name of the benchmark, most names in a cluster)
/// is held as two words covering its bytes, so that a look-up is four multiplications, one
/// slot read and a comparison of 32 bytes: a `HashMap<&str, _>` costs a hash over the bytes,
/// a probe of control bytes and a `memcmp` call, about half of what resolving a backend cost.
/// Open addressing, linear probing, at most half full.
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
            if slot.key == *key && (name.len() <= SHORT || slot.name == name) {
                return (i, true);
            }
            if slot.key[2] == EMPTY {
                return (i, false);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline(always)]
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
#[path = "index_tests.rs"]
mod tests;
