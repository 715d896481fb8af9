//! One total first-match order implementing Gateway API precedence, listener fences, and the
//! removal of rules that an earlier rule makes unreachable.
//!
//! With tens of thousands of rules, comparing them field by field (strings behind pointers)
//! is dominated by cache misses; so each distinct listener hostname, route hostname and path is
//! ranked once, and the rules are sorted by a key of small integers.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::hostname::{listener_cmp, specificity_cmp, Hostname};
use crate::ingress::{IngressRule, RuleSource};
use crate::path::PathRank;

/// Hostnames (of listener blocks and of routes) as small ids: ordering and the reachability
/// check then index vectors instead of hashing and comparing strings for every rule. Each
/// distinct hostname is also written once, as the text its rules share.
#[derive(Default)]
pub(crate) struct HostIds<'a> {
    ids: HashMap<Option<&'a Hostname>, u32>,
    values: Vec<Option<&'a Hostname>>,
    text: Vec<Option<Arc<str>>>,
}

impl<'a> HostIds<'a> {
    pub(crate) fn id(&mut self, h: Option<&'a Hostname>) -> u32 {
        let (values, text) = (&mut self.values, &mut self.text);
        *self.ids.entry(h).or_insert_with(|| {
            values.push(h);
            text.push(h.map(|h| Arc::from(h.as_string())));
            (values.len() - 1) as u32
        })
    }

    /// The `hostname:` of rules with the hostname `id` (lower case; `None`: every host).
    pub(crate) fn text(&self, id: u32) -> Option<Arc<str>> {
        self.text[id as usize].clone()
    }
}

/// What ordering needs to know of one rule, kept apart from the rule itself: sorting and the
/// reachability check then read a few small fields per rule, and each rule is touched once,
/// when it is moved to its place.
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
}

/// The rules to order, in the order they were made, and their [`Candidate`]s (same index).
/// Route rules must be added in route order (oldest, then `namespace/name`, then kind) and
/// within a route in rule and match order: the order of addition breaks the last ties.
#[derive(Default)]
pub(crate) struct Candidates {
    keys: Vec<Candidate>,
    /// Each is moved to its place once (`None` afterwards).
    rules: Vec<Option<IngressRule>>,
}

impl Candidates {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Candidates { keys: Vec::with_capacity(n), rules: Vec::with_capacity(n) }
    }

    pub(crate) fn push(&mut self, key: Candidate, rule: IngressRule) {
        debug_assert_eq!(key.fence, !matches!(rule.source, RuleSource::Route { .. }));
        self.keys.push(key);
        self.rules.push(Some(rule));
    }

    /// The fence closing the block of `listener`, the id of its hostname.
    pub(crate) fn push_fence(&mut self, listener: u32, hosts: &HostIds<'_>, service: &Arc<str>) {
        let hostname = hosts.text(listener);
        let rule = IngressRule {
            hostname: hostname.clone(),
            path: None,
            service: Arc::clone(service),
            origin_request: Default::default(),
            source: RuleSource::ListenerFence { hostname: hostname.unwrap_or_else(|| Arc::from("")) },
        };
        let all_paths = PathRank::http(&crate::model::PathMatch::all(), None);
        let key =
            Candidate { listener, host: listener, fence: true, grpc: false, rank: all_paths, path_hash: 0 };
        self.push(key, rule);
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
/// The sort key of every candidate, packed into one integer: the listener's rank, route rules
/// (0) before the block's fence (1), the rank of the route hostname, the path's rank, and the
/// candidate's index. Candidates are made in route order (oldest, then `namespace/name`, then
/// kind), and within a route in rule and match order, so the index carries the last criteria.
/// Each field takes only the bits its largest value needs, so tens of thousands of keys fit
/// in 64 bits and sort without touching a string; `None` when they would not fit in 128.
struct Packing {
    host_bits: u32,
    class_bits: u32,
    primary_bits: u32,
    secondary_bits: u32,
    index_bits: u32,
    max_primary: u64,
    max_secondary: u64,
    /// Bits of the whole key.
    bits: u32,
}

fn bits(max: u64) -> u32 {
    u64::BITS - max.leading_zeros()
}

impl Packing {
    fn new(
        max_listener: u32,
        max_host: u32,
        paths: impl Iterator<Item = PathRank>,
        count: usize,
    ) -> Option<Self> {
        let (mut max_primary, mut max_secondary) = (0u64, 0u64);
        for p in paths {
            let (_, primary, secondary) = p.parts();
            max_primary = max_primary.max(primary as u64);
            max_secondary = max_secondary.max(secondary as u64);
        }
        let mut packing = Packing {
            host_bits: bits(u64::from(max_host)),
            class_bits: 2,
            primary_bits: bits(max_primary),
            secondary_bits: bits(max_secondary),
            index_bits: bits(count as u64),
            max_primary,
            max_secondary,
            bits: 0,
        };
        // The listener's rank, then the fence bit, then the fields above.
        packing.bits = bits(u64::from(max_listener))
            + 1
            + packing.host_bits
            + packing.class_bits
            + packing.primary_bits
            + packing.secondary_bits
            + packing.index_bits;
        (packing.bits <= 128).then_some(packing)
    }

    fn key(&self, listener: u32, fence: bool, host: u32, path: PathRank, index: usize) -> u128 {
        let (class, primary, secondary) = path.parts();
        debug_assert!(class < 4);
        let mut key = u128::from(listener);
        let mut push = |bits: u32, value: u64| key = (key << bits) | u128::from(value);
        push(1, u64::from(fence));
        push(self.host_bits, u64::from(host));
        push(self.class_bits, u64::from(class));
        // Longer first: the distance to the longest.
        push(self.primary_bits, self.max_primary - primary as u64);
        push(self.secondary_bits, self.max_secondary - secondary as u64);
        push(self.index_bits, index as u64);
        key
    }

    fn index(&self, key: u128) -> usize {
        (key & ((1u128 << self.index_bits) - 1)) as usize
    }
}

/// Sort keys of `bits` significant bits, a byte at a time from the lowest (LSD radix sort): a
/// few linear passes instead of a comparison sort's n log n.
fn radix_sort(keys: &mut Vec<u64>, bits: u32) {
    let mut buffer = vec![0u64; keys.len()];
    for shift in (0..bits).step_by(8) {
        let mut counts = [0usize; 257];
        for k in keys.iter() {
            counts[((k >> shift) & 0xff) as usize + 1] += 1;
        }
        for i in 1..257 {
            counts[i] += counts[i - 1];
        }
        for k in keys.iter() {
            let digit = ((k >> shift) & 0xff) as usize;
            buffer[counts[digit]] = *k;
            counts[digit] += 1;
        }
        std::mem::swap(keys, &mut buffer);
    }
}

/// The candidates' indices in first-match order.
fn sorted(candidates: &[Candidate], listener_rank: &[u32], host_rank: &[u32]) -> Vec<usize> {
    let field =
        |c: &Candidate| (listener_rank[c.listener as usize], c.fence, host_rank[c.host as usize], c.rank);
    let max = |ranks: &[u32]| ranks.iter().copied().filter(|r| *r != u32::MAX).max().unwrap_or(0);
    let packing =
        Packing::new(max(listener_rank), max(host_rank), candidates.iter().map(|c| c.rank), candidates.len());
    match packing {
        Some(packing) => {
            let keys = candidates.iter().enumerate().map(|(i, c)| {
                let (listener, fence, host, path) = field(c);
                packing.key(listener, fence, host, path, i)
            });
            // Keys are distinct (the index is in them): any sort gives the same order.
            if packing.bits <= 64 {
                let mut keys: Vec<u64> = keys.map(|k| k as u64).collect();
                radix_sort(&mut keys, packing.bits);
                keys.into_iter().map(|k| packing.index(u128::from(k))).collect()
            } else {
                let mut keys: Vec<u128> = keys.collect();
                keys.sort_unstable();
                keys.into_iter().map(|k| packing.index(k)).collect()
            }
        }
        // Lengths past any real path: the same order, field by field.
        None => {
            let mut keys: Vec<((u32, bool, u32, PathRank), usize)> =
                candidates.iter().enumerate().map(|(i, c)| (field(c), i)).collect();
            keys.sort_unstable();
            keys.into_iter().map(|(_, i)| i).collect()
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

/// Sort, and drop unreachable rules. A rule is unreachable when an earlier rule has the same
/// path (or none) and a hostname covering its own (the same, a wildcard over it, or none);
/// everything after a rule that matches all traffic is unreachable. Also says whether a
/// GRPCRoute rule is kept.
pub(crate) fn finish(candidates: Candidates, hosts: &HostIds<'_>) -> (Vec<IngressRule>, Vec<Shadowed>, bool) {
    let Candidates { keys: candidates, rules: mut made } = candidates;
    let listener_rank = ranks(hosts, candidates.iter().map(|c| c.listener), listener_cmp);
    let host_rank = ranks(hosts, candidates.iter().map(|c| c.host), specificity_cmp);

    // Keys are distinct (each holds its candidate's index), and candidates are made in an
    // order that does not depend on the input's: the same objects in any order give the same
    // rules.
    let order = sorted(&candidates, &listener_rank, &host_rank);

    // For each hostname, the ids of the hostnames whose rules catch all its requests: itself,
    // the wildcards over it, and "every host" (those that occur).
    // Kept flat: the ids for `id` are `covering_ids[covering_from[id]..covering_from[id + 1]]`.
    let by_key: HashMap<(u8, &str), u32> =
        hosts.values.iter().enumerate().map(|(id, h)| (host_key(*h), id as u32)).collect();
    let mut covering_ids: Vec<u32> = Vec::with_capacity(hosts.values.len() * 3);
    let mut covering_from: Vec<usize> = Vec::with_capacity(hosts.values.len() + 1);
    for h in &hosts.values {
        covering_from.push(covering_ids.len());
        covering_ids.extend(covering(*h).filter_map(|k| by_key.get(&k).copied()));
    }
    covering_from.push(covering_ids.len());

    // Path rules are looked up by (host id, hash of the path). Sorting puts the rules of one
    // listener block and route hostname next to each other, so most hostnames are only ever
    // looked up while their own run lasts: those are kept in a small map cleared at each run,
    // which stays in cache. The rest ("shared": a hostname covering another one, or one that
    // occurs in more than one listener block) go to a map that lives for the whole loop.
    let mut shared = vec![false; hosts.values.len()];
    for (id, from) in covering_from.windows(2).enumerate() {
        for &h in &covering_ids[from[0]..from[1]] {
            if h as usize != id {
                shared[h as usize] = true;
            }
        }
    }
    let mut block_of: Vec<u32> = vec![u32::MAX; hosts.values.len()];
    for c in candidates.iter().filter(|c| c.path_hash != 0) {
        let block = &mut block_of[c.host as usize];
        if *block == u32::MAX {
            *block = c.listener;
        } else if *block != c.listener {
            shared[c.host as usize] = true;
        }
    }
    drop(block_of);

    let mut rules: Vec<IngressRule> = Vec::with_capacity(candidates.len());
    let mut shadowed = Vec::new();
    // Of every host id: the first kept rule without a path, and whether any kept rule has one.
    let mut no_path_first: Vec<Option<usize>> = vec![None; hosts.values.len()];
    let mut has_paths: Vec<bool> = vec![false; hosts.values.len()];
    // Index of the first kept rule with a given path: `seen` by (host id, hash of the path) for
    // shared hostnames, `run` by the hash for the hostname of the current run (listener block,
    // hostname). A hash names the path without hashing or comparing strings per lookup; a hit
    // is confirmed on the strings. A collision of two different paths (one in 2^64) only keeps
    // a rule that could have been dropped: never drops one that is reachable.
    let mut seen: HashMap<(u32, u64), usize> = HashMap::default();
    let mut run: HashMap<u64, usize> = HashMap::default();
    let mut run_of: Option<(u32, u32)> = None;
    let mut catch_all: Option<usize> = None;
    let mut uses_grpc = false;
    for i in order {
        let c = &candidates[i];
        let Some(rule) = made[i].take() else { continue };
        let path = c.path_hash;
        if run_of != Some((c.listener, c.host)) {
            // Clearing writes the whole table: a map grown by a long run is dropped instead.
            if run.capacity() > 64 {
                run = HashMap::default();
            } else if !run.is_empty() {
                run.clear();
            }
            run_of = Some((c.listener, c.host));
        }
        let first_with_path = |h: u32| {
            let first = if shared[h as usize] { seen.get(&(h, path)) } else { run.get(&path) };
            first.filter(|f| rules[**f].path == rule.path).copied()
        };
        let earlier = catch_all.or_else(|| {
            let host = c.host as usize;
            // A hostname other than the rule's own is shared (it covers the rule's).
            covering_ids[covering_from[host]..covering_from[host + 1]].iter().find_map(|&h| {
                no_path_first[h as usize]
                    .or_else(|| (path != 0 && has_paths[h as usize]).then(|| first_with_path(h)).flatten())
            })
        });
        if let Some(first) = earlier {
            if !c.fence {
                shadowed.push(Shadowed { source: rule.source, by: rules[first].source.clone() });
            }
            continue;
        }
        if rule.is_catch_all() {
            catch_all = Some(rules.len());
        }
        if path == 0 {
            no_path_first[c.host as usize].get_or_insert(rules.len());
        } else {
            has_paths[c.host as usize] = true;
            if shared[c.host as usize] {
                seen.entry((c.host, path)).or_insert(rules.len());
            } else {
                run.entry(path).or_insert(rules.len());
            }
        }
        uses_grpc |= c.grpc;
        rules.push(rule);
    }
    (rules, shadowed, uses_grpc)
}

/// A hostname pattern as a borrowed key: (0 = every host | 1 = exact | 2 = `*.suffix`, name).
fn host_key(h: Option<&Hostname>) -> (u8, &str) {
    match h {
        None => (0, ""),
        Some(Hostname::Exact(name)) => (1, name),
        Some(Hostname::Wildcard(suffix)) => (2, suffix),
    }
}

/// The host keys whose rules match every host `h` matches: itself, the wildcards over it, and
/// "every host".
fn covering(h: Option<&Hostname>) -> impl Iterator<Item = (u8, &str)> {
    let name = match h {
        None => "",
        Some(Hostname::Exact(n) | Hostname::Wildcard(n)) => n.as_str(),
    };
    let own = h.map(|h| host_key(Some(h)));
    let wildcards = name.match_indices('.').map(move |(i, _)| (2, &name[i + 1..]));
    own.into_iter().chain(wildcards).chain(std::iter::once((0, "")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PathKind, PathMatch};

    fn rank(kind: u8, len: usize) -> PathRank {
        let kind = [PathKind::Exact, PathKind::RegularExpression, PathKind::PathPrefix][kind as usize % 3];
        PathRank::http(&PathMatch { kind, value: format!("/{}", "a".repeat(len)) }, Some("^/$"))
    }

    proptest::proptest! {
        /// The packed key sorts exactly as the fields compared one by one.
        #[test]
        fn packed_keys_sort_like_the_fields(
            fields in proptest::collection::vec((0u32..4, proptest::bool::ANY, 0u32..50, 0u8..3, 0usize..300), 0..200)
        ) {
            let max_listener = fields.iter().map(|f| f.0).max().unwrap_or(0);
            let max_host = fields.iter().map(|f| f.2).max().unwrap_or(0);
            let packing = Packing::new(max_listener, max_host, fields.iter().map(|f| rank(f.3, f.4)), fields.len())
                .expect("small fields fit");
            let mut packed: Vec<u128> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| packing.key(f.0, f.1, f.2, rank(f.3, f.4), i))
                .collect();
            packed.sort_unstable();
            let packed: Vec<usize> = packed.into_iter().map(|k| packing.index(k)).collect();
            let mut plain: Vec<((u32, bool, u32, PathRank), usize)> =
                fields.iter().enumerate().map(|(i, f)| ((f.0, f.1, f.2, rank(f.3, f.4)), i)).collect();
            plain.sort_unstable();
            let plain: Vec<usize> = plain.into_iter().map(|(_, i)| i).collect();
            proptest::prop_assert_eq!(packed, plain);
        }
    }

    proptest::proptest! {
        #[test]
        fn radix_sort_sorts(mut keys in proptest::collection::vec(0u64..(1 << 41), 0..500)) {
            let mut expected = keys.clone();
            expected.sort_unstable();
            radix_sort(&mut keys, 41);
            proptest::prop_assert_eq!(keys, expected);
        }
    }

    /// Does a rule for hostname `a` catch every request a rule for `b` would get (cloudflared:
    /// exact names, `*.` a suffix match, none every host)? Written from strings, apart from
    /// [`covering`].
    fn covers(a: Option<&Hostname>, b: Option<&Hostname>) -> bool {
        match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(Hostname::Exact(x)), Some(Hostname::Exact(y))) => x == y,
            (Some(Hostname::Exact(_)), Some(Hostname::Wildcard(_))) => false,
            (Some(Hostname::Wildcard(s)), Some(Hostname::Exact(y))) => y.ends_with(&format!(".{s}")),
            (Some(Hostname::Wildcard(s)), Some(Hostname::Wildcard(y))) => {
                y == s || y.ends_with(&format!(".{s}"))
            }
        }
    }

    proptest::proptest! {
        /// `finish` keeps exactly the rules that no earlier kept rule serves all the traffic of
        /// (a hostname covering theirs, and no path or the same one), checked one by one
        /// against every earlier rule: the per-run and shared lookups drop nothing reachable.
        #[test]
        fn finish_drops_exactly_the_unreachable_rules(
            made in proptest::collection::vec((0usize..3, 0usize..7, 0usize..4), 0..60)
        ) {
            let names = [None, Some("a.com"), Some("x.a.com"), Some("*.a.com"), Some("y.x.a.com"), Some("*.x.a.com"), Some("b.org")];
            let hostnames: Vec<Option<Hostname>> =
                names.iter().map(|n| n.map(|n| Hostname::parse(n).expect("valid"))).collect();
            let listeners = [0usize, 3, 2];
            let paths = [None, Some("^/a$"), Some("^/a(?s:/.*)?$"), Some("^/b(?s:/.*)?$")];
            let mut hosts = HostIds::default();
            let mut candidates = Candidates::default();
            let route = Arc::new(crate::ingress::RouteName {
                kind: crate::model::RouteKind::Http,
                namespace: "ns".into(),
                name: "r".into(),
            });
            for (i, &(l, h, p)) in made.iter().enumerate() {
                let listener = hosts.id(hostnames[listeners[l]].as_ref());
                let host = hosts.id(hostnames[h].as_ref());
                let path = paths[p].map(Arc::from);
                let key = Candidate {
                    listener,
                    host,
                    fence: false,
                    grpc: false,
                    rank: rank((p % 3) as u8, p),
                    path_hash: paths[p].map_or(0, super::super::rules::path_hash),
                };
                let rule = IngressRule {
                    hostname: hosts.text(host),
                    path,
                    service: Arc::from("http://s"),
                    origin_request: Default::default(),
                    source: RuleSource::Route { route: Arc::clone(&route), rule: i as u32, match_index: 0 },
                };
                candidates.push(key, rule);
            }
            for l in [3usize, 2] {
                let id = hosts.id(hostnames[l].as_ref());
                candidates.push_fence(id, &hosts, &Arc::from("http_status:404"));
            }

            let listener_rank = ranks(&hosts, candidates.keys.iter().map(|c| c.listener), listener_cmp);
            let host_rank = ranks(&hosts, candidates.keys.iter().map(|c| c.host), specificity_cmp);
            let order = sorted(&candidates.keys, &listener_rank, &host_rank);
            let mut expected: Vec<IngressRule> = Vec::new();
            for i in order {
                let rule = candidates.rules[i].clone().expect("each rule once");
                let host = hostnames.iter().flatten().find(|h| Some(h.as_string().as_str()) == rule.hostname.as_deref());
                let served = expected.iter().any(|e| {
                    let e_host = hostnames.iter().flatten().find(|h| Some(h.as_string().as_str()) == e.hostname.as_deref());
                    covers(e_host, host) && (e.path.is_none() || e.path == rule.path)
                });
                if !served {
                    expected.push(rule);
                }
            }
            let (kept, _, _) = finish(candidates, &hosts);
            proptest::prop_assert_eq!(kept, expected);
        }
    }

    #[test]
    fn packing_refuses_what_does_not_fit_in_128_bits() {
        let long = "a".repeat(1 << 20);
        let method = crate::model::GrpcMethodMatch {
            kind: crate::model::MethodKind::Exact,
            service: Some(long.clone()),
            method: Some(long),
        };
        let huge = [PathRank::grpc(Some(&method), Some("^/$"))].into_iter();
        assert!(Packing::new(u32::MAX, u32::MAX, huge, 1 << 31).is_none());
        assert!(Packing::new(3, 5000, [rank(0, 1024)].into_iter(), 40_000).is_some());
    }
}
