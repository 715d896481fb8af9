//! One total first-match order implementing Gateway API precedence, listener fences, and the
//! removal of rules that an earlier rule makes unreachable.
//!
//! With tens of thousands of rules, comparing them field by field (strings behind pointers)
//! is dominated by cache misses; so each distinct listener hostname, route hostname and path is
//! ranked once, and the rules are sorted by a key of small integers.

use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::hostname::{listener_cmp, specificity_cmp, Hostname};
use crate::ingress::{IngressRule, OriginRequest, RuleSource};
use crate::model::RouteKind;
use crate::path::PathRank;

use super::rules::MatchOut;

/// A route's identity as rules name it, shared by all of its rules.
#[derive(Clone, Debug)]
pub(crate) struct RouteId {
    pub kind: RouteKind,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// A rule before ordering; it borrows everything.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate<'a> {
    /// The hostname of the listener block the rule belongs to (`None`: a listener without one).
    pub listener: Option<&'a Hostname>,
    pub host: Option<&'a Hostname>,
    /// The route (with its rank in route order: oldest, then `namespace/name`, then kind) and
    /// the match; `None` for the block's fence, which closes it.
    pub route: Option<(u32, &'a RouteId, &'a MatchOut)>,
}

impl<'a> Candidate<'a> {
    pub(crate) fn fence(listener: &'a Hostname) -> Self {
        Candidate { listener: Some(listener), host: Some(listener), route: None }
    }

    fn path(&self) -> Option<&'a str> {
        self.route.and_then(|(_, _, m)| m.path.as_deref())
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    /// Rank of the listener hostname (`listener_cmp`).
    listener: u32,
    /// Route rules (0) before the block's fence (1).
    fence: u8,
    /// Rank of the route hostname (`specificity_cmp`).
    host: u32,
    path: PathRank,
    /// Between paths of equal rank, the regex itself: the order stays total.
    regex: Option<&'a str>,
    /// Rank of the route: creation timestamp, then `namespace/name`, then kind.
    route: u32,
    rule: u32,
    match_index: u32,
}

/// Rank every distinct value: equal values get equal ranks, in the order of `cmp`.
fn ranks<T: Copy + Eq + std::hash::Hash>(
    values: impl Iterator<Item = T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> HashMap<T, u32> {
    let mut distinct: Vec<T> = values.collect::<HashSet<T>>().into_iter().collect();
    distinct.sort_unstable_by(&cmp);
    distinct.into_iter().enumerate().map(|(i, v)| (v, i as u32)).collect()
}

/// A rule left out because an earlier one serves all of its traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shadowed {
    pub source: RuleSource,
    pub by: RuleSource,
}

/// Sort, drop unreachable rules, and turn candidates into ingress rules. A rule is
/// unreachable when an earlier rule has the same path (or none) and a hostname covering its
/// own (the same, a wildcard over it, or none); everything after a rule that matches all
/// traffic is unreachable.
pub(crate) fn finish(candidates: Vec<Candidate<'_>>) -> (Vec<IngressRule>, Vec<Shadowed>) {
    let listener_rank = ranks(candidates.iter().map(|c| c.listener), |a, b| listener_cmp(*a, *b));
    let host_rank = ranks(candidates.iter().map(|c| c.host), |a, b| specificity_cmp(*a, *b));

    let mut keyed: Vec<(Key<'_>, u32)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (fence, path, route, rule, match_index) = match c.route {
                Some((route, _, m)) => (0, m.rank, route, m.rule as u32, m.match_index as u32),
                None => (1, PathRank::http(&crate::model::PathMatch::all(), None), 0, 0, 0),
            };
            let key = Key {
                listener: listener_rank[&c.listener],
                fence,
                host: host_rank[&c.host],
                path,
                regex: c.path(),
                route,
                rule,
                match_index,
            };
            (key, i as u32)
        })
        .collect();
    // Keys are equal only for the same match of the same route reached through two listeners
    // with the same hostname: identical rules, one of which is kept below. So an unstable sort
    // gives the same output for any input order.
    keyed.sort_unstable();

    // Hosts and paths as small ids for the reachability check. For each distinct host, the ids
    // of the hosts whose rules would catch all its requests: itself, wildcards over it, "all".
    let host_id: HashMap<Option<&Hostname>, u32> = host_rank.iter().map(|(h, r)| (*h, *r)).collect();
    let by_key: HashMap<(u8, &str), u32> = host_id.iter().map(|(h, id)| (host_key(*h), *id)).collect();
    let mut covering_ids: HashMap<u32, Vec<u32>> =
        HashMap::with_capacity_and_hasher(host_id.len(), Default::default());
    for (h, id) in &host_id {
        covering_ids.insert(*id, covering(*h).filter_map(|k| by_key.get(&k).copied()).collect());
    }
    let mut path_ids: HashMap<&str, u32> = HashMap::default();
    // Each distinct hostname written once and shared by its rules.
    let mut host_text: Vec<Option<Arc<str>>> = vec![None; host_id.len()];
    for (h, id) in &host_id {
        host_text[*id as usize] = h.map(|h| Arc::from(h.as_string()));
    }

    let mut rules: Vec<IngressRule> = Vec::with_capacity(candidates.len());
    let mut shadowed = Vec::new();
    // (host id, path id; 0 = no path) of every rule kept so far → index of the first one.
    let mut seen: HashMap<(u32, u32), usize> =
        HashMap::with_capacity_and_hasher(candidates.len(), Default::default());
    let mut catch_all: Option<usize> = None;
    for (_, i) in keyed {
        let c = &candidates[i as usize];
        let path = c.path().map_or(0, |p| {
            let next = path_ids.len() as u32 + 1;
            *path_ids.entry(p).or_insert(next)
        });
        let host = host_id[&c.host];
        let earlier = catch_all.or_else(|| {
            covering_ids[&host].iter().find_map(|h| {
                seen.get(&(*h, 0)).or_else(|| if path == 0 { None } else { seen.get(&(*h, path)) }).copied()
            })
        });
        if let Some(first) = earlier {
            if c.route.is_some() {
                shadowed.push(Shadowed { source: source(c), by: rules[first].source.clone() });
            }
            continue;
        }
        let rule = ingress_rule(c, host_text[host as usize].clone());
        if rule.is_catch_all() {
            catch_all = Some(rules.len());
        }
        seen.entry((host, path)).or_insert(rules.len());
        rules.push(rule);
    }
    (rules, shadowed)
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

fn ingress_rule(c: &Candidate<'_>, hostname: Option<Arc<str>>) -> IngressRule {
    let (service, origin_request, path) = match c.route {
        Some((_, _, m)) => (m.service.clone(), m.origin_request.clone(), m.path.clone()),
        None => (Arc::from("http_status:404"), OriginRequest::default(), None),
    };
    IngressRule { hostname, path, service, origin_request, source: source(c) }
}

fn source(c: &Candidate<'_>) -> RuleSource {
    match c.route {
        None => RuleSource::ListenerFence {
            hostname: c.listener.map_or_else(|| Arc::from(""), |h| Arc::from(h.as_string())),
        },
        Some((_, route, m)) => RuleSource::Route {
            kind: route.kind,
            namespace: route.namespace.clone(),
            name: route.name.clone(),
            rule: m.rule,
            match_index: m.match_index,
        },
    }
}
