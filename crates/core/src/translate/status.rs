//! Route and Gateway status from the translation's outcomes (DOMAIN.md §5).

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::ingress::{RouteName, SharedText};
use crate::model::{Route, RouteKind};
use crate::status::{
    Condition, ConditionStatus, GatewayStatus, ListenerStatus, RouteConditions, RouteParentStatus,
    RouteStatus,
};

use super::attach::ParentOutcome;
use super::gateways::GatewayView;
use super::hosts::Short;
use super::order::radix_pass;
use super::rules::RouteOut;
use super::{Reason, Settings};

/// The status of `route`, written into `slot` (its place among the statuses) rather than
/// moved there. `id` is the route's name, which the status keeps and lends back for the rules
/// to copy; each parent's parentRef is the outcome's shared copy. A parent that accepts the
/// route, with nothing said of its rules and backendRefs, gets [`RouteConditions::accepted`]:
/// no list is made.
pub(crate) fn route_status<'a>(
    slot: &'a mut Option<RouteStatus>,
    route: &Route,
    id: RouteName,
    outcomes: &mut [ParentOutcome<'_>],
    out: &RouteOut,
) -> &'a RouteName {
    let all_rules_dropped = !route.rules.is_empty() && out.rules_kept == 0;
    let generation = route.meta.generation;
    let status = slot.insert(RouteStatus {
        route: id,
        incarnation: route.meta.incarnation,
        generation,
        parents: SmallVec::new(),
    });
    // Nothing said of the route's rules and backendRefs: an accepting parent's conditions are
    // the fixed pair. (The general case below would make the same two, `route_accepted` and
    // `refs_resolved`, and `RouteConditions::from` would find them.)
    let plain = out.rejections.is_empty() && out.unresolved.is_empty() && !all_rules_dropped;
    // What is said of the route's rules and backendRefs, the same on every parent.
    let dropped: Option<String> = (!out.rejections.is_empty()).then(|| {
        let dropped: Vec<String> =
            out.rejections.iter().map(|r| format!("{}: {}", r.field, r.message)).collect();
        dropped.join("; ")
    });
    let resolved = || match out.unresolved.first() {
        None => Condition::refs_resolved(generation),
        Some(first) => {
            let all: Vec<String> =
                out.unresolved.iter().map(|u| format!("{}: {}", u.field, u.why.message)).collect();
            Condition::new(
                "ResolvedRefs",
                ConditionStatus::False,
                first.why.reason.as_str(),
                all.join("; "),
                generation,
            )
        }
    };
    for outcome in outcomes.iter_mut() {
        let parent_ref = outcome.shared.take().expect("each outcome's parentRef, taken once");
        if plain && outcome.result.is_ok() {
            let conditions = RouteConditions::accepted(generation);
            status.parents.push(RouteParentStatus { parent_ref, conditions });
            continue;
        }
        let accepted = match &outcome.result {
            Err((reason, message)) => Condition::new(
                "Accepted",
                ConditionStatus::False,
                reason.as_str(),
                message.clone(),
                generation,
            ),
            Ok(_) if all_rules_dropped => Condition::new(
                "Accepted",
                ConditionStatus::False,
                Reason::UnsupportedValue.as_str(),
                format!(
                    "No rule can be expressed as a cloudflared ingress rule: {}",
                    dropped.as_deref().unwrap_or_default()
                ),
                generation,
            ),
            Ok(_) => Condition::route_accepted(generation),
        };
        let conditions = match &dropped {
            Some(dropped) if !all_rules_dropped && outcome.result.is_ok() => vec![
                accepted,
                resolved(),
                Condition::new(
                    "PartiallyInvalid",
                    ConditionStatus::True,
                    Reason::UnsupportedValue.as_str(),
                    format!("Not rendered: {dropped}"),
                    generation,
                ),
            ],
            _ => vec![accepted, resolved()],
        };
        status.parents.push(RouteParentStatus { parent_ref, conditions: conditions.into() });
    }
    &status.route
}

/// Every route's namespace and name as its status and rules hold them ([`RouteName`]: ranges
/// of [`Names::text`], which holds each (kind, namespace)'s namespace once and the names one
/// after the other), and the place of its status among the statuses in identity order (kind,
/// namespace, name), given `routes` in any order; with `also` of each route, made in the same
/// pass (the routes' memory is read once). Made before the translation's temporaries, since
/// they outlive it in the statuses.
///
/// The places are found once, on small keys (the rank of the kind and namespace, then the
/// name's first 20 bytes; the whole names only when those are equal), so that each status is
/// written straight into its place instead of being sorted, 400 bytes each, afterwards.
pub(crate) fn names<'r, T>(routes: &[&'r Route], mut also: impl FnMut(&'r Route) -> T) -> (Names, Vec<T>) {
    // Each distinct (kind, namespace), in the order first seen, and where its namespace is in
    // the text.
    let mut seen: FxHashMap<(RouteKind, Short<'_>), u32> = FxHashMap::default();
    let mut groups: Vec<(RouteKind, &str)> = Vec::new();
    let mut namespaces: Vec<Range<u32>> = Vec::new();
    let mut keys: Vec<IdentityKey> = Vec::with_capacity(routes.len());
    let mut more: Vec<T> = Vec::with_capacity(routes.len());
    let mut names: Vec<RouteNames> = Vec::with_capacity(routes.len());
    let mut text = String::with_capacity(routes.len() * 16);
    for (chunk, some) in routes.chunks(READ_AHEAD).enumerate() {
        read_ahead(some);
        for (i, route) in some.iter().enumerate() {
            let at = chunk * READ_AHEAD + i;
            more.push(also(route));
            let namespace = route.meta.namespace.as_str();
            let group = *seen.entry((route.kind, Short(namespace))).or_insert_with(|| {
                groups.push((route.kind, namespace));
                namespaces.push(SharedText::append(&mut text, namespace));
                groups.len() as u32 - 1
            });
            let name = route.meta.name.as_str();
            IdentityKey::push(&mut keys, group, name, at);
            names.push(RouteNames { name: SharedText::append(&mut text, name), group, place: 0 });
        }
    }
    drop(seen);
    // The groups' ranks in identity order, in place of the order first seen.
    let mut by_identity: Vec<u32> = (0..groups.len() as u32).collect();
    by_identity.sort_unstable_by_key(|g| groups[*g as usize]);
    let mut rank = vec![0u32; groups.len()];
    for (r, group) in by_identity.into_iter().enumerate() {
        rank[group as usize] = r as u32;
    }
    for key in &mut keys {
        let first_seen = u32::from_be_bytes(key.bytes[..4].try_into().expect("4 bytes"));
        key.bytes[..4].copy_from_slice(&rank[first_seen as usize].to_be_bytes());
    }
    sort_keys(&mut keys, routes);
    for (place, key) in keys.iter().enumerate() {
        names[key.at as usize].place = place as u32;
    }
    text.shrink_to_fit();
    (Names { text: Arc::new(text), routes: names, namespaces }, more)
}

/// The routes [`names`] reads ahead at a time ([`read_ahead`]). Measured at 10,000 routes (the
/// bench's, after a render): `names` takes 2.5 ms without reading ahead, 1.35 reading 8 routes
/// ahead, 1.2 from 64 on.
const READ_AHEAD: usize = 64;

/// Reads the strings [`names`] and its `also` read of each of `routes` (namespace, name,
/// hostnames), all at once, before any is needed. These are the first reads of the snapshot's
/// strings in a translation, each a cache miss; [`names`] does some hundreds of instructions (a
/// hash look-up, a hostname's parse and allocation) between two routes, so its own reads come
/// one route at a time, each miss waited for in turn. Read here, a load after another with
/// nothing in between, they overlap, as in a bare walk of the snapshot.
fn read_ahead(routes: &[&Route]) {
    let first_byte = |s: &str| s.as_bytes().first().map_or(0, |c| usize::from(*c));
    let mut sum = 0usize;
    for route in routes {
        sum = sum.wrapping_add(first_byte(&route.meta.namespace) + first_byte(&route.meta.name));
        for hostname in &route.hostnames {
            sum = sum.wrapping_add(first_byte(hostname));
        }
    }
    std::hint::black_box(sum);
}

/// What [`names`] gives: each route's, and the string of all the names.
pub(crate) struct Names {
    pub text: Arc<String>,
    pub routes: Vec<RouteNames>,
    /// Where each distinct (kind, namespace)'s namespace is in [`Names::text`], by group: the
    /// groups are below its length.
    pub namespaces: Vec<Range<u32>>,
}

/// What [`names`] gives each route (16 bytes).
pub(crate) struct RouteNames {
    /// Where the name is in [`Names::text`].
    pub name: Range<u32>,
    /// The route's kind and namespace as a number: the same for the same pair, below the
    /// length of [`Names::namespaces`].
    pub group: u32,
    /// The place of the route's status in identity order, among all routes'.
    pub place: u32,
}

/// Puts `keys` in identity order. Keys padded with zeros order as the names do, unless they are
/// equal: the names decide then (the position last, for a snapshot holding one route twice).
///
/// A byte at a time from the last (LSD radix sort: stable, a few linear passes instead of a
/// comparison sort's n log n), skipping the bytes that all keys share, as most are: the
/// padding and the common start of names.
///
/// Keys found in order already (the routes of one kind as a cluster lists them, by namespace
/// and name) are left as they are, which is what the passes would give (they are stable).
fn sort_keys(keys: &mut Vec<IdentityKey>, routes: &[&Route]) {
    let Some(first) = keys.first().copied() else { return };
    // The bytes as three big-endian words: they compare as the bytes do.
    let order = |key: &IdentityKey| -> [u64; 3] {
        std::array::from_fn(|w| u64::from_be_bytes(key.bytes[w * 8..w * 8 + 8].try_into().expect("8 bytes")))
    };
    if !keys.windows(2).all(|w| order(&w[0]) <= order(&w[1])) {
        radix_sort_keys(keys, first);
    }
    for equal in keys.chunk_by_mut(|a, b| a.bytes == b.bytes) {
        if equal.len() > 1 {
            equal.sort_unstable_by(|a, b| {
                let (x, y) = (routes[a.at as usize], routes[b.at as usize]);
                x.meta.name.cmp(&y.meta.name).then(a.at.cmp(&b.at))
            });
        }
    }
}

/// The radix passes of [`sort_keys`], on the bytes where `keys` (`first` among them) differ.
fn radix_sort_keys(keys: &mut Vec<IdentityKey>, first: IdentityKey) {
    // The bytes as three words, to find the bytes that vary a word at a time.
    let words = |key: &IdentityKey| -> [u64; 3] {
        std::array::from_fn(|w| u64::from_ne_bytes(key.bytes[w * 8..w * 8 + 8].try_into().expect("8 bytes")))
    };
    let (first_words, mut varies) = (words(&first), [0u64; 3]);
    for key in keys.iter() {
        for (v, (w, f)) in varies.iter_mut().zip(words(key).iter().zip(&first_words)) {
            *v |= w ^ f;
        }
    }
    let varying: Vec<u8> = varies.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (mut buffer, mut counts) = (keys.clone(), [0usize; 257]);
    for i in (0..KEY_BYTES).rev().filter(|i| varying[*i] != 0) {
        radix_pass(keys, &mut buffer, &mut counts, |key| usize::from(key.bytes[i]));
    }
}

/// The bytes of an [`IdentityKey`]: the group's 4, then the name's first 20.
const KEY_BYTES: usize = 24;

/// Identity order on bytes: the rank of the route's kind and namespace, then the first bytes of
/// its name, big-endian and padded with zeros. Bytes rather than integers, so that a radix pass
/// reads its digit with one load.
#[derive(Clone, Copy)]
struct IdentityKey {
    /// The group (kind and namespace) in the first 4, the name's first 20 after.
    bytes: [u8; KEY_BYTES],
    /// The route's position in the slice given to [`names`].
    at: u32,
}

impl IdentityKey {
    /// The key of a route of `group` named `name`, at `at`, added to `keys`. Written where it
    /// is kept: made on the stack and moved, its bytes were read back as a whole just after
    /// the copy of the name wrote them in parts, which waits for the copy (measured: 4% of a
    /// translation at 10,000 routes).
    fn push(keys: &mut Vec<IdentityKey>, group: u32, name: &str, at: usize) {
        keys.push(IdentityKey { bytes: [0u8; KEY_BYTES], at: at as u32 });
        let bytes = &mut keys.last_mut().expect("just pushed").bytes;
        bytes[..4].copy_from_slice(&group.to_be_bytes());
        let n = name.len().min(KEY_BYTES - 4);
        bytes[4..4 + n].copy_from_slice(&name.as_bytes()[..n]);
    }
}

/// Route statuses, each written at its place in identity order (see [`names`]); routes that
/// are not ours leave theirs empty.
pub(crate) struct InPlace(Vec<Option<RouteStatus>>);

impl InPlace {
    pub fn new(routes: usize) -> Self {
        InPlace(std::iter::repeat_with(|| None).take(routes).collect())
    }

    /// Where the status at `place` goes.
    pub fn slot(&mut self, place: u32) -> &mut Option<RouteStatus> {
        &mut self.0[place as usize]
    }

    /// The statuses in identity order. The vector is reused (`filter_map` collects in place,
    /// `flatten` does not): no second copy of megabytes of statuses.
    #[allow(clippy::filter_map_identity)]
    pub fn into_vec(self) -> Vec<RouteStatus> {
        self.0.into_iter().filter_map(|s| s).collect()
    }
}

pub(crate) fn gateway_status(g: &GatewayView<'_>, settings: &Settings) -> GatewayStatus {
    let generation = g.gateway.meta.generation;
    let accepted = match &g.rejected {
        None => Condition::new("Accepted", ConditionStatus::True, "Accepted", "Gateway accepted", generation),
        Some((reason, message)) => {
            Condition::new("Accepted", ConditionStatus::False, reason, message.clone(), generation)
        }
    };
    GatewayStatus {
        namespace: g.id.namespace.clone(),
        name: g.id.name.clone(),
        incarnation: g.gateway.meta.incarnation,
        generation,
        addresses: settings.tunnel_id.iter().map(|id| format!("{id}.cfargotunnel.com")).collect(),
        conditions: vec![accepted],
        listeners: g
            .listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.listener.name.clone(),
                supported_kinds: l.supported_kinds(),
                attached_routes: l.attached.get(),
                conditions: l.conditions(generation),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {

    use crate::build::{grpc_route, http_route};
    use crate::model::{Route, RouteKind};

    proptest::proptest! {
        /// The places are the ranks by (kind, namespace, name), whatever the order given: names
        /// around the 12 and 20 bytes of the key with a common head, names that start others,
        /// namespaces that start others; given in identity order already (no radix pass) or
        /// not.
        #[test]
        fn places_are_the_identity_order(
            ids in proptest::collection::btree_set(
                (proptest::bool::ANY, "(a|ab|a-b|team)", "(r|route-x{5,7}|route-x{13,15})[0-9]{0,2}"),
                0..150,
            ),
            rotate in 0usize..150,
            in_order in proptest::bool::ANY,
        ) {
            let routes: Vec<Route> = ids
                .iter()
                .map(|(grpc, ns, name)| if *grpc { grpc_route(ns, name) } else { http_route(ns, name) })
                .collect();
            let mut refs: Vec<&Route> = routes.iter().collect();
            if in_order {
                refs.sort_by_key(|r| (r.kind, r.meta.namespace.as_str(), r.meta.name.as_str()));
            } else if !refs.is_empty() {
                let n = rotate % refs.len();
                refs.rotate_left(n);
                refs.reverse();
            }
            let mut expected: Vec<(RouteKind, &str, &str)> =
                refs.iter().map(|r| (r.kind, r.meta.namespace.as_str(), r.meta.name.as_str())).collect();
            expected.sort();
            let (names, _) = super::names(&refs, |_| ());
            let mut placed: Vec<Option<(RouteKind, &str, &str)>> = vec![None; refs.len()];
            for (route, n) in refs.iter().zip(&names.routes) {
                let namespace = &names.namespaces[n.group as usize];
                proptest::prop_assert_eq!(&names.text[namespace.start as usize..namespace.end as usize], route.meta.namespace.as_str());
                proptest::prop_assert_eq!(&names.text[n.name.start as usize..n.name.end as usize], route.meta.name.as_str());
                placed[n.place as usize] = Some((route.kind, &route.meta.namespace, &route.meta.name));
            }
            let placed: Vec<(RouteKind, &str, &str)> = placed.into_iter().map(Option::unwrap).collect();
            proptest::prop_assert_eq!(placed, expected);
        }
    }
}
