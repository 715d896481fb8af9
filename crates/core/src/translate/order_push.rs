//! Adding rules to [`Candidates`]: a listener's fence, a rule known in full, and the matches of
//! the route being translated, which are pushed, with their route, as they are rendered, and
//! placed (given their listener block and hostname) once the route's attachment is known.

use crate::path::PathRank;

use super::{max_parts, Candidate, Candidates, Made};

/// What [`super::finish`] needs of the hostnames (by [`super::HostIds`] id) and paths of the
/// candidates, gathered as they are pushed or placed, while in cache: the candidates are not
/// read once more, in the order they were made, to find it. A route's matches placed on
/// several (listener, hostname) count once per place, not once per match and place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostStats {
    /// Whether the hostname has candidates.
    pub has_rules: Vec<bool>,
    /// Whether it has candidates with a path in more than one listener block.
    pub shared: Vec<bool>,
    /// The listener block of its first candidate with a path (`u32::MAX`: none yet).
    pub block_of: Vec<u32>,
    /// How many of its candidates have a path.
    pub with_path: Vec<u32>,
    /// The largest [`crate::path::PathRank::parts`] of every candidate pushed ([`max_parts`];
    /// a route's matches dropped after count too: a wider field for the paths in the sort
    /// key orders the same).
    pub longest: (u64, u64),
    /// How many of the matches pending ([`Candidates::push_pending`]) have a path.
    pending_paths: u32,
}

impl HostStats {
    /// `count` candidates on the hostname `host` in the block `listener`, `paths` of them with
    /// a path.
    #[inline(always)]
    fn add(&mut self, listener: u32, host: u32, count: usize, paths: u32) {
        let h = host as usize;
        if count == 0 {
            return;
        }
        if h >= self.has_rules.len() {
            self.grow(h + 1);
        }
        self.has_rules[h] = true;
        if paths > 0 {
            self.with_path[h] += paths;
            let block = &mut self.block_of[h];
            if *block == u32::MAX {
                *block = listener;
            } else if *block != listener {
                self.shared[h] = true;
            }
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        self.resize(n.max(self.has_rules.len() * 2));
    }

    /// Each list `n` long, what is added unset.
    fn resize(&mut self, n: usize) {
        self.has_rules.resize(n, false);
        self.shared.resize(n, false);
        self.block_of.resize(n, u32::MAX);
        self.with_path.resize(n, 0);
    }

    /// Room for the ids below `hosts`: the lists then never grow (each growth copies them).
    pub(super) fn reserve(&mut self, hosts: usize) {
        if hosts > self.has_rules.len() {
            self.grow(hosts);
        }
    }

    /// These, each list as long as `hosts` (the ids given).
    pub(super) fn for_hosts(mut self, hosts: usize) -> Self {
        self.resize(hosts);
        self
    }
}

impl Candidates {
    /// Room for the hostname ids below `hosts` in what is gathered of them ([`HostStats`]).
    pub(crate) fn reserve_hosts(&mut self, hosts: usize) {
        self.stats.reserve(hosts);
    }

    /// How many candidates there are: where the matches pushed next start.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// A rule of a block named by [`Candidates::block`] (`key.listener`).
    pub(crate) fn push(&mut self, key: Candidate, made: Made) {
        debug_assert_eq!(key.fence, made.route == Made::FENCE);
        debug_assert!(self.listeners.contains(&key.listener));
        self.stats.longest = max_parts(self.stats.longest, key.rank);
        self.stats.add(key.listener, key.host, 1, u32::from(key.path_hash != 0));
        self.keys.push((key, made));
    }

    /// A rendered match of the route being translated, with its route, before its listener
    /// block and hostname are known (`key.listener` and `key.host` are given by
    /// [`Candidates::place_each`]). Each match is written once, where it is kept, rather than into
    /// a list of its own and then copied here. The matches pushed since `from` must then be
    /// placed ([`Candidates::place_each`]), or dropped with [`Candidates::truncate`], before
    /// any other rule is pushed.
    ///
    /// What [`HostStats`] needs of it is taken here, from the key as given: read back from
    /// the list when placed, just after it was written there, each read waited for the
    /// writes (slower on the clock, with fewer instructions).
    #[inline]
    pub(crate) fn push_pending(&mut self, key: Candidate, made: Made) {
        self.stats.pending_paths += u32::from(key.path_hash != 0);
        self.stats.longest = max_parts(self.stats.longest, key.rank);
        self.keys.push((key, made));
    }

    /// The matches pushed since `from` become the rules of the listener block `listener` on
    /// the route hostname `host` (both [`super::HostIds`] ids).
    /// Gives how many of them have a path.
    #[inline]
    fn place(&mut self, from: usize, listener: u32, host: u32) -> u32 {
        self.block(listener);
        for (key, _) in &mut self.keys[from..] {
            key.listener = listener;
            key.host = host;
        }
        let paths = std::mem::take(&mut self.stats.pending_paths);
        self.stats.add(listener, host, self.keys.len() - from, paths);
        paths
    }

    /// The matches pushed since `from` become the rules of each (listener block, route
    /// hostname) of `places` in turn (both [`super::HostIds`] ids): the first takes them where
    /// they are, each further one gets a copy ([`Candidates::place_copy`]); with none, they are
    /// dropped ([`Candidates::truncate`]).
    pub(crate) fn place_each(&mut self, from: usize, places: impl IntoIterator<Item = (u32, u32)>) {
        let to = self.len();
        let mut places = places.into_iter();
        let Some((listener, host)) = places.next() else {
            self.truncate(from);
            return;
        };
        let paths = self.place(from, listener, host);
        for (listener, host) in places {
            self.place_copy(from, to, listener, host, paths);
        }
    }

    /// The matches at `from..to`, placed already (`paths` of them with a path), once more as
    /// the rules of the listener block `listener` on the route hostname `host`: a route's
    /// further (listener, hostname).
    fn place_copy(&mut self, from: usize, to: usize, listener: u32, host: u32, paths: u32) {
        self.block(listener);
        for i in from..to {
            let (key, made) = self.keys[i];
            self.keys.push((Candidate { listener, host, ..key }, made));
        }
        self.stats.add(listener, host, to - from, paths);
    }

    /// Drops the candidates from `from` on: the matches of a route that gets no rules.
    pub(crate) fn truncate(&mut self, from: usize) {
        self.stats.pending_paths = 0;
        self.keys.truncate(from);
    }

    /// The fence closing the block of `listener`, the id of its hostname; `service` is the id
    /// of `http_status:404`.
    pub(crate) fn push_fence(&mut self, listener: u32, service: u32) {
        let made =
            Made { service, origin: crate::ingress::NO_ORIGIN, route: Made::FENCE, rule: 0, match_index: 0 };
        let all_paths = PathRank::http(&crate::model::PathMatch::all(), None);
        let key = Candidate {
            listener,
            host: listener,
            fence: true,
            grpc: false,
            rank: all_paths,
            path_hash: 0,
            path: (0, 0),
        };
        self.block(listener);
        self.push(key, made);
    }
}
