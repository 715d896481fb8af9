//! [`FirstPaths`]: the first kept rule of each (hostname, path) in [`super::finish`], those of
//! the current run in [`RunPaths`], the others in a map.

use rustc_hash::FxHashMap as HashMap;

/// The first kept rule of each (hostname id, hash of the path) in [`super::finish`]'s walk in
/// sorted order. Sorting puts the rules of one listener block and route hostname (a run) next
/// to each other, so most hostnames are only ever looked up while their own run lasts: those
/// are kept in [`RunPaths`], cleared at each run, which stays in cache. The rest (`shared`: a
/// hostname covering another one, or one that occurs in more than one listener block) go to
/// a map that lives for the whole walk. Each method takes whether the hostname is shared,
/// and says once which of the two answers.
#[derive(Default)]
pub(super) struct FirstPaths {
    seen: HashMap<(u32, u64), usize>,
    run: RunPaths,
}

impl FirstPaths {
    /// For the next run, of at most `room` paths ([`RunPaths::clear`]).
    #[inline]
    pub(super) fn next_run(&mut self, room: usize) {
        self.run.clear(room);
    }

    /// The first kept rule with the path of hash `hash` on the hostname `host` (shared or of
    /// the current run).
    #[inline]
    pub(super) fn get(&self, shared: bool, host: u32, hash: u64) -> Option<usize> {
        if shared {
            self.seen.get(&(host, hash)).copied()
        } else {
            self.run.get(hash)
        }
    }

    /// What [`FirstPaths::get`] gives; when that is `None`, `kept` becomes its value: one
    /// lookup where a miss would be followed by an insert.
    #[inline]
    pub(super) fn first_or_insert(
        &mut self,
        shared: bool,
        host: u32,
        hash: u64,
        kept: usize,
    ) -> Option<usize> {
        if shared {
            first_or_insert(&mut self.seen, (host, hash), kept)
        } else {
            self.run.first_or_insert(hash, kept)
        }
    }

    /// `kept` for the path of hash `hash` on `host`, unless it has one.
    #[inline]
    pub(super) fn insert_first(&mut self, shared: bool, host: u32, hash: u64, kept: usize) {
        if shared {
            self.seen.entry((host, hash)).or_insert(kept);
        } else {
            self.run.insert_first(hash, kept);
        }
    }
}

/// The first kept rule of each path (by its hash) among the rules of the current run (one
/// listener block, one route hostname), for [`super::finish`]. Most runs are a route's few matches on
/// its own hostname: a short list searched in order costs less than hashing into a map, and
/// only a run of more than [`RunPaths::FEW`] distinct paths moves them to one.
#[derive(Default)]
pub(super) struct RunPaths {
    /// Distinct hashes, in the order they were first inserted (empty once `many` is used).
    few: Vec<(u64, usize)>,
    many: HashMap<u64, usize>,
    /// How many paths the current run may have at most: the room `many` is given when the run
    /// moves to it, so it never grows while the run lasts (each growth moves every entry).
    room: usize,
}

impl RunPaths {
    const FEW: usize = 16;

    /// For the next run, of at most `room` paths. The map keeps its room: the next long run
    /// fills it without growing it again (each growth moves every entry), and the short runs
    /// in between never touch it (clearing writes the whole table, once, after the run that
    /// filled it).
    pub(super) fn clear(&mut self, room: usize) {
        self.room = room;
        self.few.clear();
        if !self.many.is_empty() {
            self.many.clear();
        }
    }

    pub(super) fn get(&self, hash: u64) -> Option<usize> {
        if self.many.is_empty() {
            self.few.iter().find(|(h, _)| *h == hash).map(|(_, kept)| *kept)
        } else {
            self.many.get(&hash).copied()
        }
    }

    /// What [`RunPaths::get`] gives for `hash`; when that is `None`, `kept` becomes its value
    /// ([`RunPaths::insert_first`]): one lookup where a miss would be followed by an insert.
    pub(super) fn first_or_insert(&mut self, hash: u64, kept: usize) -> Option<usize> {
        if self.many.is_empty() {
            if let Some(&(_, first)) = self.few.iter().find(|(h, _)| *h == hash) {
                return Some(first);
            }
            if self.few.len() < Self::FEW {
                self.few.push((hash, kept));
                return None;
            }
            self.spill();
        }
        first_or_insert(&mut self.many, hash, kept)
    }

    /// Moves the hashes of `few` (full) to `many`, with room for the run's paths.
    fn spill(&mut self) {
        // The hashes in `few` are distinct: each goes in as it is.
        self.many.reserve(self.room.max(Self::FEW + 1));
        self.many.extend(self.few.drain(..));
    }

    /// `kept` for `hash`, unless it has one: [`RunPaths::first_or_insert`] without the answer,
    /// written out apart on purpose. Calling that from here made the compiler keep it out of
    /// line in `finish` (callgrind, 4 x 2,000 routes: +0.75 M instructions; +0.18 M with
    /// `#[inline(always)]`).
    pub(super) fn insert_first(&mut self, hash: u64, kept: usize) {
        if self.many.is_empty() {
            if self.few.iter().any(|(h, _)| *h == hash) {
                return;
            }
            if self.few.len() < Self::FEW {
                self.few.push((hash, kept));
                return;
            }
            self.spill();
        }
        self.many.entry(hash).or_insert(kept);
    }
}

/// The value of `key` in `map`; when it has none, `kept` becomes it and the answer is `None`:
/// one lookup for "the first kept rule with this path, or this one is".
fn first_or_insert<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, usize>,
    key: K,
    kept: usize,
) -> Option<usize> {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(kept);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The same answers as one map kept for the whole run, past `FEW` distinct hashes
        /// too (40 hashes: most cases move to the map): `get` the first value inserted for a
        /// hash, `first_or_insert` that, then the insert, `clear`
        /// forgets every hash.
        #[test]
        fn run_paths_answer_as_a_map(ops in proptest::collection::vec((0u8..5, 0u64..40), 0..300)) {
            let mut run = RunPaths::default();
            let mut map: std::collections::HashMap<u64, usize> = Default::default();
            for (i, (op, hash)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        // Room for more paths or fewer than the run gets: the same answers.
                        run.clear(hash as usize);
                        map.clear();
                    }
                    1 => proptest::prop_assert_eq!(run.get(hash), map.get(&hash).copied()),
                    2 => {
                        let first = map.get(&hash).copied();
                        map.entry(hash).or_insert(i);
                        proptest::prop_assert_eq!(run.first_or_insert(hash, i), first);
                    }
                    _ => {
                        run.insert_first(hash, i);
                        map.entry(hash).or_insert(i);
                    }
                }
                proptest::prop_assert_eq!(run.few.len() + run.many.len(), map.len());
            }
        }
    }

    #[test]
    fn run_paths_move_to_a_map_past_few_distinct_hashes() {
        let mut run = RunPaths::default();
        for h in 0..RunPaths::FEW as u64 {
            run.insert_first(h, h as usize);
            run.insert_first(h, 99);
        }
        assert!(run.many.is_empty());
        run.insert_first(100, 100);
        assert!(run.few.is_empty() && run.many.len() == RunPaths::FEW + 1);
        assert_eq!((run.get(3), run.get(100), run.get(101)), (Some(3), Some(100), None));
        run.clear(0);
        assert_eq!(run.get(3), None);
    }
}
