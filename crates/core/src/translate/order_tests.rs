//! Tests of [`super`]: the packed key, the radix sort, and `finish` against one-by-one checks.

use super::*;
use std::sync::Arc;

use crate::ingress::IngressRule;
use crate::model::{PathKind, PathMatch};

fn rank(kind: u8, len: usize) -> PathRank {
    let kind = [PathKind::Exact, PathKind::RegularExpression, PathKind::PathPrefix][kind as usize % 3];
    PathRank::http(&PathMatch { kind, value: format!("/{}", "a".repeat(len)).into() }, Some("^/$"))
}

proptest::proptest! {
    /// The packed key sorts exactly as the fields compared one by one (a fence's hostname is
    /// its listener's, as `finish` gives it: here the listener's number; its route's place 0).
    #[test]
    fn packed_keys_sort_like_the_fields(
        fields in proptest::collection::vec(
            (0u32..4, proptest::bool::ANY, 0u32..50, 0u8..3, 0usize..300, 0u32..20),
            0..200,
        )
    ) {
        let fields: Vec<_> = fields
            .into_iter()
            .map(|f| (f.0, f.1, if f.1 { f.0 } else { f.2 }, f.3, f.4, if f.1 { 0 } else { f.5 }))
            .collect();
        let max_listener = fields.iter().map(|f| f.0).max().unwrap_or(0);
        let max_host = fields.iter().map(|f| f.2).max().unwrap_or(0);
        let max_age = fields.iter().map(|f| f.5).max().unwrap_or(0);
        let longest = fields.iter().fold((0, 0), |m, f| max_parts(m, rank(f.3, f.4)));
        let packing = Packing::new(max_listener, max_host, longest, max_age, fields.len())
            .expect("small fields fit");
        let mut packed: Vec<u128> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| packing.key(f.0, f.1, f.2, rank(f.3, f.4), f.5, i))
            .collect();
        // The `u64` form, where the key fits, is the same bits.
        if packing.bits <= 64 {
            for (i, f) in fields.iter().enumerate() {
                let short: u64 = packing.key(f.0, f.1, f.2, rank(f.3, f.4), f.5, i);
                proptest::prop_assert_eq!(u128::from(short), packed[i]);
            }
        }
        packed.sort_unstable();
        let packed: Vec<usize> = packed.into_iter().map(|k| packing.index(k)).collect();
        let mut plain: Vec<(KeyFields, usize)> =
            fields.iter().enumerate().map(|(i, f)| ((f.0, f.1, f.2, rank(f.3, f.4), f.5), i)).collect();
        plain.sort_unstable();
        let plain: Vec<usize> = plain.into_iter().map(|(_, i)| i).collect();
        proptest::prop_assert_eq!(packed, plain);
    }
}

proptest::proptest! {
    /// The low bits come out in the order of the bits above them, stably (keys equal there
    /// keep their order), as a stable comparison sort gives them; with one key per index in
    /// the low bits (as `sorted` makes them) too, where the bits above are often equal.
    #[test]
    fn radix_sorted_low_is_a_stable_sort_by_the_bits_above(
        bits in 0u32..=64,
        low in 0u32..=32,
        indexed in proptest::bool::ANY,
        keys in proptest::collection::vec(proptest::num::u64::ANY, 0..700),
    ) {
        let low = low.min(bits);
        let mut keys: Vec<u64> = keys.into_iter().map(|k| k.checked_shr(64 - bits).unwrap_or(0)).collect();
        if indexed && low > 0 {
            let high = |k: u64| k.checked_shr(low).unwrap_or(0) % 5;
            let below = |i: usize| i as u64 & u64::MAX.checked_shr(64 - low).unwrap_or(0);
            keys = keys.iter().enumerate().map(|(i, k)| (high(*k) << low) | below(i)).collect();
        }
        let mut expected = keys.clone();
        expected.sort_by_key(|k| k.checked_shr(low).unwrap_or(0));
        let expected: Vec<u32> =
            expected.into_iter().map(|k| (k & u64::MAX.checked_shr(64 - low).unwrap_or(0)) as u32).collect();
        proptest::prop_assert_eq!(radix_sorted_low(keys, low, bits), expected);
    }
}

proptest::proptest! {
    /// The host ranks order the hostnames as `specificity_cmp` does.
    #[test]
    fn host_ranks_follow_specificity(names in proptest::collection::vec("(\\*\\.)?[a-c]{1,3}(\\.[a-c]{1,10}){0,2}", 0..40), none in proptest::bool::ANY) {
        let mut hostnames: Vec<Hostname> = names.iter().map(|n| Hostname::parse(n).expect("valid")).collect();
        hostnames.sort();
        hostnames.dedup();
        let mut hosts = HostIds::default();
        for h in &hostnames {
            hosts.id(Some(h));
        }
        if none {
            hosts.id(None);
        }
        let rank = host_ranks(&hosts);
        let mut expected: Vec<u32> = (0..hosts.values.len() as u32).collect();
        expected.sort_by(|a, b| specificity_cmp(hosts.values[*a as usize], hosts.values[*b as usize]));
        let mut got: Vec<u32> = (0..hosts.values.len() as u32).collect();
        got.sort_by_key(|id| rank[*id as usize]);
        proptest::prop_assert_eq!(got, expected);
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
        (Some(Hostname::Wildcard(s)), Some(Hostname::Wildcard(y))) => y == s || y.ends_with(&format!(".{s}")),
    }
}

/// (listener hostname, fence, route hostname, path rank, index) of a rule made.
type Fields<'a> = (Option<&'a Hostname>, bool, Option<&'a Hostname>, PathRank, usize);

proptest::proptest! {
    /// `finish` puts the rules in the order of the precedence compared field by field on
    /// the hostnames and paths themselves (listener block, fence last, route hostname,
    /// path, order of addition), and keeps exactly the rules that no earlier kept rule
    /// serves all the traffic of (a hostname covering theirs, and no path or the same one),
    /// checked one by one against every earlier rule: the per-run and shared lookups drop
    /// nothing reachable. Each rule left out is reported, shadowed by an earlier kept rule
    /// that serves its traffic.
    #[test]
    fn finish_orders_and_drops_exactly_the_unreachable_rules(
        made in proptest::collection::vec((0usize..3, 0usize..7, 0usize..4, proptest::bool::ANY), 0..60)
    ) {
        let names = [None, Some("a.com"), Some("x.a.com"), Some("*.a.com"), Some("y.x.a.com"), Some("*.x.a.com"), Some("b.org")];
        let hostnames: Vec<Option<Hostname>> =
            names.iter().map(|n| n.map(|n| Hostname::parse(n).expect("valid"))).collect();
        let listeners = [0usize, 3, 2];
        let paths = [None, Some("^/a$"), Some("^/a(?s:/.*)?$"), Some("^/b(?s:/.*)?$")];
        let mut hosts = HostIds::default();
        let mut candidates = Candidates::default();
        let mut services = Services::default();
        let (service, not_found) = (services.push("http://s"), services.push("http_status:404"));
        let route = |grpc: bool| {
            crate::ingress::RouteName::new(if grpc { crate::model::RouteKind::Grpc } else { crate::model::RouteKind::Http }, "ns", "r")
        };
        let mut fields: Vec<Fields> = Vec::new();
        let mut rules: Vec<(IngressRule, bool)> = Vec::new();
        // Each candidate's path its own copy in the paths string, as each match makes one.
        let mut text = String::new();
        for (i, &(l, h, p, grpc)) in made.iter().enumerate() {
            let path = SharedText::append(&mut text, paths[p].unwrap_or(""));
            let listener = hosts.id(hostnames[listeners[l]].as_ref());
            let host = hosts.id(hostnames[h].as_ref());
            let key = Candidate {
                listener,
                host,
                fence: false,
                grpc,
                rank: rank((p % 3) as u8, p),
                path_hash: paths[p].map_or(0, super::super::rules::path_hash),
                path: (path.start, path.end),
            };
            let made = Made {
                service,
                origin: NO_ORIGIN,
                route: candidates.route(&route(grpc)),
                rule: i as u32,
                match_index: 0,
            };
            let source = RuleSource::Route { route: route(grpc), rule: i as u32, match_index: 0 };
            candidates.block(listener);
            candidates.push(key, made);
            fields.push((hostnames[listeners[l]].as_ref(), false, hostnames[h].as_ref(), key.rank, i));
            let hostname = hostnames[h].as_ref().map(Hostname::as_string);
            let rule =
                IngressRule::new(hostname.as_deref(), paths[p], Arc::from("http://s"), Default::default(), source);
            rules.push((rule, grpc));
        }
        for l in [3usize, 2] {
            let id = hosts.id(hostnames[l].as_ref());
            candidates.push_fence(id, not_found);
            let all_paths = PathRank::http(&crate::model::PathMatch::all(), None);
            fields.push((hostnames[l].as_ref(), true, hostnames[l].as_ref(), all_paths, rules.len()));
            let name: Arc<str> = Arc::from(hostnames[l].as_ref().expect("a hostname").as_string());
            let fence = IngressRule::new(
                Some(&name),
                None,
                Arc::from("http_status:404"),
                Default::default(),
                RuleSource::ListenerFence { hostname: name.clone() },
            );
            rules.push((fence, false));
        }

        fields.sort_by(|a, b| {
            listener_cmp(a.0, b.0)
                .then(a.1.cmp(&b.1))
                .then(specificity_cmp(a.2, b.2))
                .then(a.3.cmp(&b.3))
                .then(a.4.cmp(&b.4))
        });
        let (mut expected, mut dropped): (Vec<IngressRule>, Vec<RuleSource>) = (Vec::new(), Vec::new());
        let mut expected_grpc = false;
        for &(_, _, host, _, i) in &fields {
            let (rule, grpc) = rules[i].clone();
            let served = expected.iter().any(|e| {
                let e_host = hostnames.iter().flatten().find(|h| Some(h.as_string().as_str()) == e.hostname());
                covers(e_host, host) && (e.path().is_none() || e.path() == rule.path())
            });
            if served {
                if matches!(rule.source, RuleSource::Route { .. }) {
                    dropped.push(rule.source);
                }
            } else {
                expected_grpc |= grpc;
                expected.push(rule);
            }
        }
        let (kept, shadowed, uses_grpc) = finish(candidates, &hosts, text, services);
        proptest::prop_assert_eq!(&kept, &expected.iter().collect::<IngressRules>());
        proptest::prop_assert_eq!(uses_grpc, expected_grpc);
        proptest::prop_assert_eq!(shadowed.iter().map(|s| s.source.clone()).collect::<Vec<_>>(), dropped);
        for s in &shadowed {
            let at = |source: &RuleSource| rules.iter().position(|(r, _)| r.source == *source).expect("made");
            let (rule, by) = (&rules[at(&s.source)].0, &rules[at(&s.by)].0);
            let host = |r: &IngressRule| hostnames.iter().flatten().find(|h| Some(h.as_string().as_str()) == r.hostname());
            proptest::prop_assert!(kept.iter().any(|k| k.source() == s.by), "{:?} shadowed by a rule left out", s);
            let rule_at = fields.iter().position(|f| f.4 == at(&s.source)).expect("ordered");
            let by_order = fields.iter().position(|f| f.4 == at(&s.by)).expect("ordered");
            proptest::prop_assert!(by_order < rule_at, "{:?} shadowed by a later rule", s);
            proptest::prop_assert!(covers(host(by), host(rule)) && (by.path().is_none() || by.path() == rule.path()), "{:?}", s);
        }
    }
}

#[test]
fn packing_refuses_what_does_not_fit_in_128_bits() {
    let long = "a".repeat(1 << 20);
    let method = crate::model::GrpcMethodMatch {
        kind: crate::model::MethodKind::Exact,
        service: Some(long.clone().into()),
        method: Some(long.into()),
    };
    let huge = max_parts((0, 0), PathRank::grpc(Some(&method), Some("^/$")));
    assert!(Packing::new(u32::MAX, u32::MAX, huge, 0, 1 << 31).is_none());
    assert!(Packing::new(3, 5000, max_parts((0, 0), rank(0, 1024)), 10_000, 40_000).is_some());
}

proptest::proptest! {
    /// A route's matches pushed pending, then placed on each (listener, hostname) in turn
    /// (the first in place, the others as copies), are the candidates pushed one by one in
    /// full; a route with none leaves nothing behind.
    #[test]
    fn placed_matches_are_the_matches_pushed_in_full(
        before in 0usize..3,
        matches in proptest::collection::vec((0u8..3, 0usize..20, 0u64..4), 0..5),
        pairs in proptest::collection::vec((0u32..3, 0u32..5), 0..4),
    ) {
        let route = RouteName::new(crate::model::RouteKind::Http, "ns", "r");
        let key = |listener, host, &(kind, len, hash): &(u8, usize, u64)| Candidate {
            listener,
            host,
            fence: false,
            grpc: false,
            rank: rank(kind, len),
            path_hash: hash,
            path: (len as u32, len as u32 + 1),
        };
        let made = |m: usize, route: u32| Made {
            service: m as u32 + 1,
            origin: if m.is_multiple_of(2) { NO_ORIGIN } else { m as u32 },
            route,
            rule: m as u32,
            match_index: m as u32 + 1,
        };
        let (mut placed, mut full) = (Candidates::default(), Candidates::default());
        for c in [&mut placed, &mut full] {
            for l in 0..before {
                c.push_fence(l as u32, 0);
            }
        }
        let from = placed.len();
        let id = placed.route(&route);
        for (m, f) in matches.iter().enumerate() {
            placed.push_pending(key(0, 0, f), made(m, id));
        }
        placed.place_each(from, pairs.iter().copied());
        let id = full.route(&route);
        for &(listener, host) in &pairs {
            full.block(listener);
            for (m, f) in matches.iter().enumerate() {
                full.push(key(listener, host, f), made(m, id));
            }
        }
        let keys = |c: &Candidates| -> Vec<String> { c.keys.iter().map(|k| format!("{k:?}")).collect() };
        proptest::prop_assert_eq!(keys(&placed), keys(&full));
        let made = |c: &Candidates| -> Vec<Made> { c.keys.iter().map(|(_, m)| *m).collect() };
        proptest::prop_assert_eq!(made(&placed), made(&full));
        proptest::prop_assert_eq!(&placed.routes, &full.routes);
        proptest::prop_assert_eq!(&placed.listeners, &full.listeners);
        // What `finish` reads of the hostnames, gathered once per place or once per candidate.
        // Matches dropped (no place) still count in the longest path parts (which only widens
        // a field of the sort key), and only there.
        let (mut got, expected) = (placed.stats.clone().for_hosts(8), full.stats.clone().for_hosts(8));
        if pairs.is_empty() {
            proptest::prop_assert!(got.longest.0 >= expected.longest.0 && got.longest.1 >= expected.longest.1);
            got.longest = expected.longest;
        }
        proptest::prop_assert_eq!(got, expected);
    }
}

proptest::proptest! {
    /// `wildcard_suffixes` gives the suffixes after each dot (the longest first) whose length
    /// is one of the lengths asked for, as a look at every byte finds them.
    #[test]
    fn wildcard_suffixes_are_those_after_a_dot_of_the_lengths_asked(
        name in "[ab.]{0,12}",
        lens in proptest::collection::btree_set(0usize..14, 0..6),
    ) {
        let lens: Vec<usize> = lens.into_iter().rev().collect();
        let expected: Vec<&str> = name
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'.')
            .map(|(i, _)| &name[i + 1..])
            .filter(|suffix| lens.contains(&suffix.len()))
            .collect();
        proptest::prop_assert_eq!(wildcard_suffixes(&name, &lens).collect::<Vec<_>>(), expected);
    }
}
