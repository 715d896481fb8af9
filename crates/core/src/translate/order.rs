//! One total first-match order implementing Gateway API precedence, listener fences, and the
//! removal of rules that an earlier rule makes unreachable.
//!
//! With tens of thousands of rules, comparing them field by field (strings behind pointers)
//! is dominated by cache misses; so each distinct listener hostname, route hostname and path is
//! ranked once, and the rules are sorted by a key of small integers.

use rustc_hash::FxHashMap as HashMap;

use crate::hostname::{listener_cmp, specificity_cmp, Hostname};
use crate::ingress::{
    IngressRules, OriginRequest, RouteName, Rule, RuleSource, Services, SharedText, SourceRecord, NO_ORIGIN,
};
use crate::path::PathRank;

pub(crate) use super::hosts::HostIds;

/// What ordering needs to know of one rule, besides what the rule is made of ([`Made`], stored
/// next to it): the sort keys are made from these, and each rule is made once, in its place,
/// once the order and the reachability of the rules before it are known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    /// The hostname of the listener block the rule belongs to (a [`HostIds`] id; the hostname
    /// `None` is a listener without one).
    pub listener: u32,
    /// The rule's hostname (a [`HostIds`] id; `None`: every host).
    pub host: u32,
    /// The block's closing `http_status:404` rather than a route's rule.
    pub fence: bool,
    /// A GRPCRoute's rule.
    pub grpc: bool,
    pub rank: PathRank,
    /// A hash of the rule's path (never 0), 0 without one.
    pub path_hash: u64,
    /// Where the rule's path is (`start`, `end`) in the paths string [`finish`] is given.
    pub path: (u32, u32),
}

/// What a rule is made of besides its hostname and path (which [`finish`] gives it, from its
/// [`Candidate`]): ids only (20 bytes), so building, copying and reading the candidates moves
/// no reference count, and [`finish`] makes each rule it keeps once, in its final place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Made {
    /// The id of its service in the [`Services`] [`finish`] is given.
    pub service: u32,
    /// Its `originRequest` keys, a place in [`Candidates::origin_request`]'s list, or
    /// [`NO_ORIGIN`].
    pub origin: u32,
    /// Its route, a place in [`Candidates::route`]'s list; [`Made::FENCE`] for a listener's
    /// fence ([`RuleSource::ListenerFence`], whose hostname is the listener's).
    pub route: u32,
    pub rule: u32,
    pub match_index: u32,
}

impl Made {
    /// The [`Made::route`] of a listener's fence.
    pub const FENCE: u32 = u32::MAX;
}

/// The rules to order, in the order they were made, each a [`Candidate`] and its [`Made`].
/// Routes may be added in any order, each with its place oldest first ([`Candidates::age`]),
/// and within a route in rule and match order: the route's place, then the order of addition,
/// break the last ties.
#[derive(Default)]
pub(crate) struct Candidates {
    /// Each candidate with its [`Made`] next to it: [`finish`] reads both in sorted order, at
    /// random, from one place (56 bytes) rather than two (32 and 20 bytes, each often on two
    /// cache lines). Only the one pass that makes the sort keys reads them in this order.
    keys: Vec<(Candidate, Made)>,
    /// The listener ids of `keys`, each once (there are few), as [`Candidates::block`] gave them.
    listeners: Vec<u32>,
    /// The non-empty `originRequest` keys the candidates name ([`Made::origin`]).
    origins: Vec<OriginRequest>,
    /// The routes the candidates name ([`Made::route`]), each once. A route whose matches
    /// are then dropped ([`Candidates::truncate`]) keeps its entry: one unused name in the
    /// rules' list, where finding and removing it would cost more.
    routes: Vec<RouteName>,
    /// The place oldest first of each of `routes` ([`Candidates::age`] when it was added).
    ages: Vec<u32>,
    /// The place oldest first of the route whose rules are added now.
    age: u32,
    /// What [`finish`] needs of the hostnames, gathered as the candidates are placed.
    stats: push::HostStats,
}

impl Candidates {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Candidates {
            keys: Vec::with_capacity(n),
            listeners: Vec::new(),
            origins: Vec::new(),
            routes: Vec::new(),
            ages: Vec::new(),
            age: 0,
            stats: push::HostStats::default(),
        }
    }

    /// Before the rules of a route are added: its place oldest first (then `namespace/name`,
    /// then kind), which orders its rules after those of older routes on a tie.
    pub(crate) fn age(&mut self, age: u32) {
        self.age = age;
    }

    /// The [`Made::origin`] of rules with the keys `keys`: a new place in the list for keys
    /// that are not empty (the matches of one route rule share it), [`NO_ORIGIN`] otherwise.
    pub(crate) fn origin_request(&mut self, keys: OriginRequest) -> u32 {
        if keys.is_empty() {
            return NO_ORIGIN;
        }
        self.origins.push(keys);
        u32::try_from(self.origins.len() - 1).expect("under 4 G keys")
    }

    /// The [`Made::route`] of the rules of `route`, which is added to the list: once per
    /// route, before its first rule (the list becomes the rules' list of routes).
    pub(crate) fn route(&mut self, route: &RouteName) -> u32 {
        self.routes.push(route.clone());
        self.ages.push(self.age);
        u32::try_from(self.routes.len() - 1).expect("under 4 G routes")
    }

    /// Before the rules of a listener block are pushed: its listener's hostname id.
    pub(crate) fn block(&mut self, listener: u32) {
        if !self.listeners.contains(&listener) {
            self.listeners.push(listener);
        }
    }
}

/// The precedence, as one key. Gateway API (HTTPRoute): "Proxy or Load Balancer routing
/// configuration generated from HTTPRoutes MUST prioritize matches based on the following
/// criteria, continuing on ties: Exact path match; Longest PathPrefix; Method; Headers; Query
/// params", after "Largest number of characters in a matching non-wildcard hostname; Largest
/// number of characters in a matching hostname". "If ties still exist across multiple Routes,
/// matching precedence MUST be determined in order of the following criteria, continuing on
/// ties: The oldest Route based on creation timestamp; The Route appearing first in
/// alphabetical order by {namespace}/{name}. If ties still exist within an HTTPRoute, matching
/// precedence MUST be granted to the FIRST matching rule (in list order)". GRPCRoute: the
/// characters of the service, then of the method, take the place of the path.
///
/// cloudflared is first-match, so before all of that comes listener isolation: the most
/// specific listener's block (exact hostname, then wildcards with more labels, then none),
/// closed by its fence, so a request for its hostname never reaches a broader listener.
///
/// The sort key of every candidate, packed into one integer: the listener's rank, the rank of
/// the route hostname (the block's fence, whose hostname is its listener's, one past the
/// largest: after every route rule of the block, and no bit of its own), the path's rank, the
/// route's place oldest first (then `namespace/name`, then kind; 0 for a fence, the only rule
/// of its block with its host rank), and the candidate's index: within a route, candidates are
/// made in rule and match order, so the index carries the last criterion.
/// Each field takes only the bits its largest value needs, so tens of thousands of keys fit
/// in 64 bits and sort without touching a string; `None` when they would not fit in 128.
struct Packing {
    /// The bits of a host rank up to one past `max_host` (a fence's).
    host_bits: u32,
    max_host: u64,
    class_bits: u32,
    primary_bits: u32,
    secondary_bits: u32,
    age_bits: u32,
    index_bits: u32,
    max_primary: u64,
    max_secondary: u64,
    /// Bits of the whole key.
    bits: u32,
}

fn bits(max: u64) -> u32 {
    u64::BITS - max.leading_zeros()
}

/// The largest primary and secondary [`PathRank::parts`] of `rank`, and `max` so far: what
/// [`Packing::new`] needs of the paths, gathered as the candidates are placed
/// ([`push::HostStats`]).
fn max_parts(max: (u64, u64), rank: PathRank) -> (u64, u64) {
    let (_, primary, secondary) = rank.parts();
    (max.0.max(primary as u64), max.1.max(secondary as u64))
}

impl Packing {
    /// For keys of listener ranks up to `max_listener`, host ranks up to `max_host`, paths of
    /// [`PathRank::parts`] up to `max_parts` (primary, secondary: [`max_parts`]), routes' places
    /// up to `max_age` and `count` candidates.
    fn new(
        max_listener: u32,
        max_host: u32,
        max_parts: (u64, u64),
        max_age: u32,
        count: usize,
    ) -> Option<Self> {
        let (max_primary, max_secondary) = max_parts;
        let mut packing = Packing {
            host_bits: bits(u64::from(max_host) + 1),
            max_host: u64::from(max_host),
            class_bits: 2,
            primary_bits: bits(max_primary),
            secondary_bits: bits(max_secondary),
            age_bits: bits(u64::from(max_age)),
            index_bits: bits(count as u64),
            max_primary,
            max_secondary,
            bits: 0,
        };
        // The listener's rank, then the fields above.
        packing.bits = bits(u64::from(max_listener))
            + packing.host_bits
            + packing.class_bits
            + packing.primary_bits
            + packing.secondary_bits
            + packing.age_bits
            + packing.index_bits;
        (packing.bits <= 128).then_some(packing)
    }

    /// The key, as a `u128`, or as a `u64` when [`Packing::bits`] is at most 64 (the same
    /// bits; shifting a `u128` costs several instructions). A fence's `host` is not read: it
    /// is its listener's, the same for every fence of the block.
    fn key<K>(&self, listener: u32, fence: bool, host: u32, path: PathRank, age: u32, index: usize) -> K
    where
        K: From<u64> + std::ops::Shl<u32, Output = K> + std::ops::BitOr<Output = K>,
    {
        let (class, primary, secondary) = path.parts();
        debug_assert!(class < 4);
        let mut key = K::from(u64::from(listener));
        let mut push = |bits: u32, value: u64| {
            let k = std::mem::replace(&mut key, K::from(0));
            key = (k << bits) | K::from(value);
        };
        push(self.host_bits, if fence { self.max_host + 1 } else { u64::from(host) });
        push(self.class_bits, u64::from(class));
        // Longer first: the distance to the longest.
        push(self.primary_bits, self.max_primary - primary as u64);
        push(self.secondary_bits, self.max_secondary - secondary as u64);
        push(self.age_bits, u64::from(age));
        push(self.index_bits, index as u64);
        key
    }

    fn index(&self, key: u128) -> usize {
        (key & ((1u128 << self.index_bits) - 1)) as usize
    }
}

/// A candidate's precedence, field by field, as [`Packing`] packs it: its listener's rank,
/// whether it is a fence, its hostname's rank, its path's rank, its route's place oldest first.
type KeyFields = (u32, bool, u32, PathRank, u32);

/// The candidates' indices in first-match order (fewer than 2^32: each is a rule in memory).
/// `max_parts`: the largest [`PathRank::parts`] of their paths ([`max_parts`]).
/// `ages`: the place oldest first of each route the candidates name ([`Made::route`]).
fn sorted(
    candidates: &[(Candidate, Made)],
    ages: &[u32],
    listener_rank: &[u32],
    host_rank: &[u32],
    max_parts: (u64, u64),
) -> Vec<u32> {
    // Routes added oldest first (a walk oldest first, or routes stored so): the index alone
    // breaks the ties as their places would, and the key needs no bits for them (one radix
    // pass fewer at 10,000 routes).
    let added_oldest_first = ages.windows(2).all(|w| w[0] < w[1]);
    let age = |made: &Made| {
        if made.route == Made::FENCE || added_oldest_first {
            0
        } else {
            ages[made.route as usize]
        }
    };
    let field = |c: &Candidate, made: &Made| {
        (listener_rank[c.listener as usize], c.fence, host_rank[c.host as usize], c.rank, age(made))
    };
    let max = |ranks: &[u32]| ranks.iter().copied().filter(|r| *r != u32::MAX).max().unwrap_or(0);
    let max_age = if added_oldest_first { 0 } else { ages.iter().copied().max().unwrap_or(0) };
    let packing = Packing::new(max(listener_rank), max(host_rank), max_parts, max_age, candidates.len());
    match packing {
        Some(packing) => {
            let parts = candidates.iter().enumerate().map(|(i, (c, made))| (field(c, made), i));
            // Keys are distinct (the index is in them): any sort gives the same order.
            if packing.bits <= 64 {
                let keys: Vec<u64> =
                    parts.map(|((l, f, h, p, a), i)| packing.key(l, f, h, p, a, i)).collect();
                // Made in the order of their index (the lowest bits): a stable sort of the
                // bits above is enough.
                radix_sorted_low(keys, packing.index_bits, packing.bits)
            } else {
                let mut keys: Vec<u128> =
                    parts.map(|((l, f, h, p, a), i)| packing.key(l, f, h, p, a, i)).collect();
                keys.sort_unstable();
                keys.into_iter().map(|k| packing.index(k) as u32).collect()
            }
        }
        // Lengths past any real path: the same order, field by field.
        None => {
            let mut keys: Vec<(KeyFields, usize)> =
                candidates.iter().enumerate().map(|(i, (c, made))| (field(c, made), i)).collect();
            keys.sort_unstable();
            keys.into_iter().map(|(_, i)| i as u32).collect()
        }
    }
}

/// A rule left out because an earlier one serves all of its traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shadowed {
    pub source: RuleSource,
    pub by: RuleSource,
}

/// `rank[id]` for the ids `used`, in the order of `cmp` over their hostnames (distinct ids
/// name distinct hostnames, so ranks are distinct).
fn ranks(
    hosts: &HostIds<'_>,
    used: impl Iterator<Item = u32>,
    cmp: impl Fn(Option<&Hostname>, Option<&Hostname>) -> std::cmp::Ordering,
) -> Vec<u32> {
    let mut seen = vec![false; hosts.values.len()];
    let mut ids: Vec<u32> = used.filter(|id| !std::mem::replace(&mut seen[*id as usize], true)).collect();
    ids.sort_unstable_by(|a, b| cmp(hosts.values[*a as usize], hosts.values[*b as usize]));
    let mut rank = vec![u32::MAX; hosts.values.len()];
    for (r, id) in ids.into_iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    rank
}

/// `rank[id]` of every hostname in [`specificity_cmp`] order. Sorted as integers: a key made
/// once per hostname (kind, length, first eight bytes, id) orders most of them, and the
/// hostnames themselves, scattered in memory, are compared only where those are equal.
fn host_ranks(hosts: &HostIds<'_>) -> Vec<u32> {
    // Agrees with `specificity_cmp` wherever it is not equal: the kind (exact, wildcard, none),
    // then the longer first (a length past 16 bits counts as 2^16 - 1: equal there, the
    // hostnames are compared), then, between names of the same kind and length (so of the
    // same length as stored), their first bytes, as the strings compare. The id in the low
    // 32 bits; bits 32 to 45 are zero.
    let key = |id: usize, h: Option<&Hostname>| -> u128 {
        let (kind, name) = match h {
            Some(Hostname::Exact(name)) => (0u128, name.as_str()),
            Some(Hostname::Wildcard(suffix)) => (1, suffix.as_str()),
            None => (2, ""),
        };
        let len = h.map_or(0, Hostname::char_count).min(usize::from(u16::MAX)) as u128;
        let mut first = [0u8; 8];
        let n = name.len().min(8);
        first[..n].copy_from_slice(&name.as_bytes()[..n]);
        kind << 126
            | (u128::from(u16::MAX) - len) << 110
            | u128::from(u64::from_be_bytes(first)) << 46
            | id as u128
    };
    let mut keys: Vec<u128> = hosts.values.iter().enumerate().map(|(id, h)| key(id, *h)).collect();
    keys.sort_unstable();
    let host = |k: &u128| hosts.values[*k as u32 as usize];
    for equal in keys.chunk_by_mut(|a, b| a >> 32 == b >> 32).filter(|run| run.len() > 1) {
        equal.sort_unstable_by(|a, b| specificity_cmp(host(a), host(b)));
    }
    let mut rank = vec![u32::MAX; hosts.values.len()];
    for (r, k) in keys.into_iter().enumerate() {
        rank[k as u32 as usize] = r as u32;
    }
    rank
}

/// Sort, and drop unreachable rules. A rule is unreachable when an earlier rule has the same
/// path (or none) and a hostname covering its own (the same, a wildcard over it, or none);
/// everything after a rule that matches all traffic is unreachable. Also says whether a
/// GRPCRoute rule is kept. The candidates' paths are ranges of `paths`.
///
/// The check runs on the candidates' small keys, in sorted order; each rule kept is made then,
/// from its [`Made`], straight into its place at the end of the list: no rule is moved after
/// it is made, and a rule left out is never made at all.
pub(crate) fn finish(
    candidates: Candidates,
    hosts: &HostIds<'_>,
    mut paths: String,
    services: Services,
) -> (IngressRules, Vec<Shadowed>, bool) {
    let Candidates { keys: candidates, listeners, origins, routes, ages, age: _, stats } = candidates;
    let listener_rank = ranks(hosts, listeners.into_iter(), listener_cmp);
    // Every hostname ranked, used by a rule or not: the order among those used is the same.
    let host_rank = host_ranks(hosts);

    // Which hostnames have rules, and which occur (with a path) in more than one listener
    // block; how many rules with a path each hostname has (room for its runs' paths); and the
    // longest paths (for the sort key): gathered as the candidates were placed.
    let push::HostStats { has_rules, mut shared, with_path, longest, .. } =
        stats.for_hosts(hosts.values.len());

    // Keys are distinct (each holds its candidate's index), and candidates are made in an
    // order that does not depend on the input's: the same objects in any order give the same
    // rules.
    let order = sorted(&candidates, &ages, &listener_rank, &host_rank, longest);
    drop(ages);

    // For each hostname with rules, the ids of the hostnames with rules that catch all its
    // requests: itself, the wildcards over it (the longest first), and "every host". A
    // hostname without rules is never looked up, nor does it catch anything.
    // Kept flat: the ids for `id` are `covering_ids[covering_from[id]..covering_from[id + 1]]`.
    let mut wildcards: HashMap<&str, u32> = HashMap::default();
    // The lengths of the wildcards' suffixes, each once, the longest first: a hostname's
    // suffixes of other lengths are not looked up, nor looked for.
    let mut suffix_lens: Vec<usize> = Vec::new();
    for (id, h) in hosts.values.iter().enumerate().filter(|(id, _)| has_rules[*id]) {
        if let Some(Hostname::Wildcard(suffix)) = h {
            wildcards.insert(suffix.as_str(), id as u32);
            suffix_lens.push(suffix.len());
        }
    }
    suffix_lens.sort_unstable_by(|a, b| b.cmp(a));
    suffix_lens.dedup();
    let every_host =
        hosts.values.iter().position(Option::is_none).filter(|id| has_rules[*id]).map(|id| id as u32);
    let mut covering_ids: Vec<u32> = Vec::with_capacity(hosts.values.len() * 2);
    let mut covering_from: Vec<usize> = Vec::with_capacity(hosts.values.len() + 1);
    for (id, h) in hosts.values.iter().enumerate() {
        covering_from.push(covering_ids.len());
        if !has_rules[id] {
            continue;
        }
        if let Some(h) = h {
            covering_ids.push(id as u32);
            let (Hostname::Exact(name) | Hostname::Wildcard(name)) = h;
            let suffixes = wildcard_suffixes(name, &suffix_lens);
            covering_ids.extend(suffixes.filter_map(|suffix| wildcards.get(suffix).copied()));
        }
        covering_ids.extend(every_host);
    }
    covering_from.push(covering_ids.len());

    // Path rules are looked up by (host id, hash of the path), in a table of the current run
    // for most hostnames, and in a map for the walk for the "shared" ones ([`FirstPaths`]): a
    // hostname covering another one, or one that occurs in more than one listener block.
    for (id, from) in covering_from.windows(2).enumerate() {
        for &h in &covering_ids[from[0]..from[1]] {
            if h as usize != id {
                shared[h as usize] = true;
            }
        }
    }

    let mut shadowed = Vec::new();
    // Of every host id: the first kept rule without a path, and whether any kept rule has one.
    let mut no_path_first: Vec<Option<usize>> = vec![None; hosts.values.len()];
    let mut has_paths: Vec<bool> = vec![false; hosts.values.len()];
    // Index of the first kept rule with a given path, by (host id, hash of the path). A hash
    // names the path without hashing or comparing strings per lookup; a hit is confirmed on
    // the strings. A collision of two different paths (one in 2^64) only keeps a rule that
    // could have been dropped: never drops one that is reachable.
    let mut first_paths = FirstPaths::default();
    let mut run_of: Option<(u32, u32)> = None;
    let mut catch_all: Option<usize> = None;
    let mut uses_grpc = false;
    // The string the kept rules' paths and hostnames share, the hostnames after the paths.
    paths.reserve_exact(hosts.text.len());
    let hosts_at = SharedText::append(&mut paths, &hosts.text).start;
    let host_range = |id: u32| hosts.ranges[id as usize].map(|(start, end)| start + hosts_at..end + hosts_at);
    // The rules kept, in their order (room for all: most are), with the parts they share.
    let mut rules = IngressRules::with_parts(paths, services, origins, routes, order.len());
    // The hostnames other than the run's own that may serve one of its rules: those covering
    // it with a kept rule (in `covering_ids`' order, up to the first with one without a path,
    // which serves every rule after it). Only rules of the run's own hostname are kept while
    // the run lasts, so these are found once per run.
    let mut others: Vec<u32> = Vec::new();
    for &i in &order {
        let i = i as usize;
        let (c, made) = &candidates[i];
        let (own, path) = (c.host, c.path_hash);
        if run_of != Some((c.listener, own)) {
            // At most the hostname's rules with a path, of every block.
            first_paths.next_run(with_path[own as usize] as usize);
            run_of = Some((c.listener, own));
            let covering = &covering_ids[covering_from[own as usize]..covering_from[own as usize + 1]];
            debug_assert_eq!(covering.first(), Some(&own), "a hostname with rules covers itself first");
            others.clear();
            for &h in &covering[1..] {
                if no_path_first[h as usize].is_some() || has_paths[h as usize] {
                    others.push(h);
                }
                if no_path_first[h as usize].is_some() {
                    break;
                }
            }
        }
        let kept = rules.len();
        // Whether the rule, kept, is already the first with its path in `first_paths`.
        let mut recorded = false;
        // Whether the kept rule at `first` has this rule's path. Bytes, not `str`: slicing a
        // `str` reads the bytes at both ends (char boundaries), a cache miss per rule, in this
        // order, where only a hit needs the text.
        let same_path = |rules: &IngressRules, first: usize| {
            rules.get(first).and_then(|r| r.path()).map(str::as_bytes)
                == Some(rules.text_bytes(c.path.0, c.path.1))
        };
        let earlier = match catch_all {
            Some(first) => Some(first),
            // Only a kept rule of its own hostname with its path can serve it (most rules):
            // one lookup finds that rule, or records this one, which is then kept, as the
            // first with the path. A different path of the same hash leaves the first as it is.
            None if path != 0 && others.is_empty() && no_path_first[own as usize].is_none() => {
                let first = first_paths.first_or_insert(shared[own as usize], own, path, kept);
                recorded = first.is_none();
                first.filter(|f| same_path(&rules, *f))
            }
            None => {
                let first_with_path =
                    |h: u32| first_paths.get(shared[h as usize], h, path).filter(|f| same_path(&rules, *f));
                // A hostname other than the rule's own is shared (it covers the rule's).
                std::iter::once(own).chain(others.iter().copied()).find_map(|h| {
                    no_path_first[h as usize].or_else(|| {
                        (path != 0 && has_paths[h as usize]).then(|| first_with_path(h)).flatten()
                    })
                })
            }
        };
        let Made { service, origin, route, rule, match_index } = *made;
        let source = match route {
            Made::FENCE => SourceRecord::fence(host_range(c.listener)),
            route => SourceRecord::Route { route, rule, match_index },
        };
        if let Some(first) = earlier {
            if !c.fence {
                let by = rules.get(first).expect("kept").source().to_owned();
                shadowed.push(Shadowed { source: rules.source_of(source).to_owned(), by });
            }
            continue;
        }
        rules.push_record(
            host_range(own),
            (path != 0).then_some(c.path.0..c.path.1),
            service,
            origin,
            source,
        );
        // A rule with a path catches only its path's requests: not read back (the record was
        // just written, and a read of it waits for that).
        if path == 0 && rules.last().is_some_and(Rule::is_catch_all) {
            catch_all = Some(kept);
        }
        if path == 0 {
            no_path_first[own as usize].get_or_insert(kept);
        } else {
            has_paths[own as usize] = true;
            // Recorded already when the lookup above found none.
            if !recorded {
                first_paths.insert_first(shared[own as usize], own, path, kept);
            }
        }
        uses_grpc |= c.grpc;
    }
    rules.shrink_to_fit();
    (rules, shadowed, uses_grpc)
}

/// The suffixes of `name` that follow a dot and are `lens` long (distinct, the longest
/// first), the longest first: the suffixes of the wildcards over `name` that may exist. With
/// `a.b.c` and `[3, 2, 1]`: `b.c`, `c`. Only the lengths are tried (a byte each), where a
/// look at every byte for its dots costs more: there are few wildcards' lengths.
fn wildcard_suffixes<'a>(name: &'a str, lens: &'a [usize]) -> impl Iterator<Item = &'a str> {
    let bytes = name.as_bytes();
    let shorter = lens.partition_point(|len| *len >= bytes.len());
    lens[shorter..]
        .iter()
        .filter(move |len| bytes[bytes.len() - **len - 1] == b'.')
        .map(move |len| &name[name.len() - len..])
}

#[path = "order_push.rs"]
mod push;
#[path = "order_radix.rs"]
mod radix;
pub(super) use radix::radix_pass;
pub(super) use radix::radix_sorted_low;
#[path = "order_runs.rs"]
mod runs;
use runs::FirstPaths;

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
