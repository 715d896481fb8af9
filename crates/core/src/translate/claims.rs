//! Which hostnames HTTPRoutes and GRPCRoutes already serve on each listener hostname block, so
//! that the younger of two routes of different kinds overlapping on a hostname can be refused
//! without comparing every pair of routes.
//!
//! Claims are made for every hostname of every route that may conflict
//! ([`may_conflict`]), so a claim makes no string: the tables borrow the hostname and
//! the route, and the hostnames' labels reversed, which the queries of a wildcard (or of every
//! host) need in order, are made only when such a query comes (session 16: 10,000 routes and
//! one GRPCRoute took 17.6–19.5 ms to translate, against 5.9–6.1 ms without the GRPCRoute,
//! with a string index of every claim).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::hostname::Hostname;
use crate::model::{Route, RouteKind};

use super::attach;
use super::gateways::GatewayView;

/// A route that claims hostnames: named only in the message of a conflict.
type Owner<'a> = &'a Route;

/// The hostnames one kind of route serves on one block, indexed for overlap queries. The first
/// claim of a hostname owns it.
#[derive(Default)]
struct KindIndex<'a> {
    /// A route without hostname (every host), and who owns it.
    all: Option<Owner<'a>>,
    exact: HashMap<&'a str, Owner<'a>>,
    /// `*.suffix` by suffix.
    wildcard: HashMap<&'a str, Owner<'a>>,
    /// Every claimed hostname by its labels reversed (`a.example.com` → `com.example.a`,
    /// `*.example.com` → `com.example.*`), to find those under a wildcard with a range query:
    /// up to date with the claims before `unsorted`.
    reversed: BTreeMap<String, Owner<'a>>,
    /// The hostnames claimed since `reversed` was last brought up to date, in claim order.
    unsorted: Vec<(&'a Hostname, Owner<'a>)>,
}

/// `name`'s labels in reverse order, joined by dots, written after `out`'s text.
fn push_reversed(out: &mut String, name: &str) {
    for (i, label) in name.rsplit('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(label);
    }
}

fn reversed(h: &Hostname) -> String {
    let mut out = String::with_capacity(h.char_count());
    match h {
        Hostname::Exact(name) => push_reversed(&mut out, name),
        Hostname::Wildcard(suffix) => {
            push_reversed(&mut out, suffix);
            out.push_str(".*");
        }
    }
    out
}

/// Suffixes of `name` after each dot: `a.b.c` → `b.c`, `c`.
fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.').map(move |(i, _)| &name[i + 1..])
}

impl<'a> KindIndex<'a> {
    fn insert(&mut self, host: Option<&'a Hostname>, owner: Owner<'a>) {
        let Some(host) = host else {
            self.all.get_or_insert(owner);
            return;
        };
        let first = match host {
            Hostname::Exact(name) => self.exact.entry(name.as_str()),
            Hostname::Wildcard(suffix) => self.wildcard.entry(suffix.as_str()),
        };
        // A hostname claimed before keeps its owner, in `reversed` too: not added again.
        if let std::collections::hash_map::Entry::Vacant(vacant) = first {
            vacant.insert(owner);
            self.unsorted.push((host, owner));
        }
    }

    /// `reversed`, brought up to date with every claim.
    fn reversed(&mut self) -> &BTreeMap<String, Owner<'a>> {
        for (host, owner) in self.unsorted.drain(..) {
            self.reversed.entry(reversed(host)).or_insert(owner);
        }
        &self.reversed
    }

    /// An owner of a hostname some request could match together with `host`, if any.
    fn overlapping(&mut self, host: Option<&Hostname>) -> Option<(Owner<'a>, String)> {
        if let Some(owner) = self.all {
            return Some((owner, "every host".to_string()));
        }
        let host = match host {
            None => {
                return self.reversed().iter().next().map(|(_, owner)| (*owner, "a hostname".to_string()));
            }
            Some(h) => h,
        };
        let name = match host {
            Hostname::Exact(name) => {
                if let Some(owner) = self.exact.get(name.as_str()) {
                    return Some((*owner, name.to_string()));
                }
                name
            }
            Hostname::Wildcard(suffix) => {
                // Anything claimed under `*.suffix` (exact names and narrower wildcards).
                let mut prefix = String::with_capacity(suffix.len() + 1);
                push_reversed(&mut prefix, suffix);
                prefix.push('.');
                let from = (std::ops::Bound::Included(prefix.as_str()), std::ops::Bound::Unbounded);
                if let Some((key, owner)) = self.reversed().range::<str, _>(from).next() {
                    if key.starts_with(&prefix) {
                        return Some((*owner, key.rsplit('.').collect::<Vec<_>>().join(".")));
                    }
                }
                if let Some(owner) = self.wildcard.get(suffix.as_str()) {
                    return Some((*owner, host.as_string()));
                }
                suffix
            }
        };
        if self.wildcard.is_empty() {
            return None; // No wildcard over `name` is claimed: its suffixes need not be looked up.
        }
        suffixes(name).find_map(|s| self.wildcard.get(s).map(|owner| (*owner, format!("*.{s}"))))
    }

    fn is_empty(&self) -> bool {
        self.all.is_none() && self.exact.is_empty() && self.wildcard.is_empty()
    }
}

/// Claims per listener hostname block (the id of the listener's hostname, a
/// [`super::order::HostIds`] id: the same for the same hostname) and route kind.
#[derive(Default)]
pub(crate) struct Claims<'a> {
    blocks: HashMap<(u32, RouteKind), KindIndex<'a>>,
}

impl<'a> Claims<'a> {
    /// `owner`, of kind `kind`, serves `host` on `block`.
    pub(crate) fn claim(
        &mut self,
        block: u32,
        kind: RouteKind,
        host: Option<&'a Hostname>,
        owner: &'a Route,
    ) {
        self.blocks.entry((block, kind)).or_default().insert(host, owner);
    }

    /// Why `kind` may not serve `host` on `block`: a route of the other kind got there first.
    pub(crate) fn conflict(
        &mut self,
        block: u32,
        kind: RouteKind,
        host: Option<&Hostname>,
    ) -> Option<String> {
        let other = match kind {
            RouteKind::Http => RouteKind::Grpc,
            RouteKind::Grpc => RouteKind::Http,
        };
        let index = self.blocks.get_mut(&(block, other)).filter(|i| !i.is_empty())?;
        index.overlapping(host).map(|(owner, taken)| {
            format!(
                "{} already serves {taken} on this listener hostname; an HTTPRoute and a GRPCRoute cannot share a hostname",
                super::object_name(owner)
            )
        })
    }
}

/// A hostname as this module reads it: (wildcard, the name or the wildcard's suffix); `None`:
/// every host.
type Written<'h> = Option<(bool, &'h str)>;

/// The hostnames `route` may serve, as [`Written`]: its own, as written (as
/// [`Hostname::parse`] takes a valid value), or, for a route without any, those of the
/// listeners its parentRefs name (by Gateway, `sectionName` and `port`; a listener without
/// hostname: every host). Attachment narrows these, never widens them. A value the parser would
/// refuse rejects its route, which then claims nothing: what it is taken for here does not
/// matter.
fn written<'h>(route: &'h Route, gateways: &'h [GatewayView<'_>], out: &mut Vec<Written<'h>>) {
    out.clear();
    if !route.hostnames.is_empty() {
        out.extend(route.hostnames.iter().map(|h| {
            let h = h.as_str();
            Some(h.strip_prefix("*.").map_or((false, h), |suffix| (true, suffix)))
        }));
        return;
    }
    for parent_ref in &route.parent_refs {
        let Some(g) = attach::parent_gateway(route, parent_ref, gateways) else { continue };
        out.extend(attach::named(parent_ref, &gateways[g]).map(|(_, l)| {
            l.hostname.as_ref().map(|h| match h {
                Hostname::Exact(name) => (false, name.as_str()),
                Hostname::Wildcard(suffix) => (true, suffix.as_str()),
            })
        }));
    }
}

/// Which of `routes` may serve a hostname that a route of the other kind (HTTPRoute or
/// GRPCRoute) may serve too ([`written`]), pair by pair: every route that could be refused for,
/// or could refuse, a route of the other kind ([`Claims`]) is among them (attachment only
/// narrows what they may serve). The others' outcomes depend on no other route's, so the
/// translation takes them as they are stored and claims nothing for them; only these are taken
/// oldest first, after them, each checked against the older ones' claims.
///
/// The smaller kind's hostnames are indexed (exact names, wildcards' suffixes, and every
/// suffix after a dot of either, each with the routes that have it) and the larger kind's are
/// looked up there; an entry found marks its routes, once.
pub(crate) fn may_conflict(routes: &[Route], gateways: &[GatewayView<'_>]) -> Vec<bool> {
    let mut flags = vec![false; routes.len()];
    let count = |kind: RouteKind| routes.iter().filter(|r| r.kind == kind).count();
    let (http, grpc) = (count(RouteKind::Http), count(RouteKind::Grpc));
    if http == 0 || grpc == 0 {
        return flags;
    }
    let (few, many) =
        if grpc <= http { (RouteKind::Grpc, RouteKind::Http) } else { (RouteKind::Http, RouteKind::Grpc) };
    let of = |kind: RouteKind| routes.iter().enumerate().filter(move |(_, r)| r.kind == kind);
    let mut hosts = Vec::new();

    // The few: by exact name, by wildcard suffix, and under each suffix after a dot (a
    // wildcard over them is any of those); those that may serve every host, and those that may
    // serve some host (what one of the many serving every host overlaps).
    type Index<'h> = HashMap<&'h str, Vec<u32>>;
    let (mut exact, mut wildcard, mut under) = (Index::default(), Index::default(), Index::default());
    let (mut few_every, mut few_some) = (Vec::new(), Vec::new());
    for (i, route) in of(few) {
        written(route, gateways, &mut hosts);
        if !hosts.is_empty() {
            few_some.push(i);
        }
        for host in &hosts {
            let Some((is_wildcard, name)) = *host else {
                few_every.push(i);
                continue;
            };
            if is_wildcard { &mut wildcard } else { &mut exact }.entry(name).or_default().push(i as u32);
            for suffix in suffixes(name) {
                under.entry(suffix).or_default().push(i as u32);
            }
        }
    }

    // The many, each looked up; the few found are marked as their entries are found.
    let mark = |entry: Option<&mut Vec<u32>>, flags: &mut Vec<bool>| match entry {
        Some(routes) => {
            for i in routes.drain(..) {
                flags[i as usize] = true;
            }
            true
        }
        None => false,
    };
    let (mut many_some, mut many_every) = (false, false);
    for (i, route) in of(many) {
        written(route, gateways, &mut hosts);
        if hosts.is_empty() {
            continue;
        }
        many_some = true;
        // One of the few may serve every host: it overlaps this one.
        let mut found = !few_every.is_empty();
        for host in &hosts {
            let Some((is_wildcard, name)) = *host else {
                many_every = true;
                found |= !few_some.is_empty();
                continue;
            };
            // Wildcards of the few over `name` (over the wildcard `*.name` too), if any: the
            // few are often a handful of exact names, and each look-up hashes a suffix.
            if !wildcard.is_empty() {
                for suffix in suffixes(name) {
                    found |= mark(wildcard.get_mut(suffix), &mut flags);
                }
            }
            if is_wildcard {
                // The same wildcard, or names and narrower wildcards of the few under it.
                found |= mark(wildcard.get_mut(name), &mut flags);
                found |= mark(under.get_mut(name), &mut flags);
            } else {
                found |= mark(exact.get_mut(name), &mut flags);
            }
        }
        flags[i] |= found;
    }
    // Serving every host, the few overlap each of the many that serves some; serving some,
    // each of the many that serves every host.
    if many_some {
        few_every.iter().for_each(|i| flags[*i] = true);
    }
    if many_every {
        few_some.iter().for_each(|i| flags[*i] = true);
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::http_route;

    fn h(s: &str) -> Option<Hostname> {
        Some(Hostname::parse(s).unwrap())
    }

    #[test]
    fn conflicts_are_found_for_every_kind_of_overlap() {
        let cases: &[(&str, Option<&str>, Option<&str>, bool)] = &[
            ("same_exact", Some("a.example.com"), Some("a.example.com"), true),
            ("different_exact", Some("a.example.com"), Some("b.example.com"), false),
            ("exact_under_claimed_wildcard", Some("*.example.com"), Some("a.b.example.com"), true),
            ("wildcard_over_claimed_exact", Some("a.b.example.com"), Some("*.example.com"), true),
            ("wildcard_over_claimed_narrower_wildcard", Some("*.b.example.com"), Some("*.example.com"), true),
            (
                "narrower_wildcard_under_claimed_wildcard",
                Some("*.example.com"),
                Some("*.b.example.com"),
                true,
            ),
            ("apex_is_not_under_wildcard", Some("*.example.com"), Some("example.com"), false),
            ("wildcard_does_not_cover_apex", Some("example.com"), Some("*.example.com"), false),
            ("sibling_suffix_is_not_under", Some("a.notexample.com"), Some("*.example.com"), false),
            ("claimed_all_hosts", None, Some("x.org"), true),
            ("asking_all_hosts", Some("x.org"), None, true),
        ];
        for (name, claimed, asked, conflict) in cases {
            let (claimed, asked) = (claimed.and_then(h), asked.and_then(h));
            let owner = http_route("ns", "old");
            let mut claims = Claims::default();
            claims.claim(0, RouteKind::Http, claimed.as_ref(), &owner);
            let got = claims.conflict(0, RouteKind::Grpc, asked.as_ref());
            assert_eq!(got.is_some(), *conflict, "{name}: {got:?}");
            assert!(
                claims.conflict(0, RouteKind::Http, asked.as_ref()).is_none(),
                "{name}: same kind never conflicts"
            );
            assert!(claims.conflict(1, RouteKind::Grpc, asked.as_ref()).is_none(), "{name}: other block");
        }
    }

    /// A message names the first route to claim the hostname it gives; under a wildcard, the
    /// hostname first in the order of labels reversed, with the claims made after an earlier
    /// query counted too.
    #[test]
    fn the_message_names_the_first_owner_and_the_first_hostname_under_a_wildcard() {
        let (z, a, wildcard) = (h("z.example.com"), h("a.example.com"), h("*.example.com"));
        let (first, second) = (http_route("ns", "first"), http_route("ns", "second"));
        let mut claims = Claims::default();
        claims.claim(0, RouteKind::Http, z.as_ref(), &first);
        let got = claims.conflict(0, RouteKind::Grpc, wildcard.as_ref()).unwrap();
        assert!(got.starts_with("HTTPRoute ns/first already serves z.example.com on"), "{got}");
        claims.claim(0, RouteKind::Http, z.as_ref(), &second);
        let got = claims.conflict(0, RouteKind::Grpc, z.as_ref()).unwrap();
        assert!(got.starts_with("HTTPRoute ns/first already serves z.example.com on"), "{got}");
        claims.claim(0, RouteKind::Http, a.as_ref(), &second);
        let got = claims.conflict(0, RouteKind::Grpc, wildcard.as_ref()).unwrap();
        assert!(got.starts_with("HTTPRoute ns/second already serves a.example.com on"), "{got}");
        let got = claims.conflict(0, RouteKind::Grpc, None).unwrap();
        assert!(got.starts_with("HTTPRoute ns/second already serves a hostname on"), "{got}");
    }
}
