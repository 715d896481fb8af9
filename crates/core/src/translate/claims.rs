//! Which hostnames HTTPRoutes and GRPCRoutes already serve on each listener hostname block, so
//! that the younger of two routes of different kinds overlapping on a hostname can be refused
//! without comparing every pair of routes.

use std::collections::{BTreeMap, HashMap};

use crate::hostname::Hostname;
use crate::model::RouteKind;

/// The hostnames one kind of route serves on one block, indexed for overlap queries.
#[derive(Default)]
struct KindIndex {
    /// A route without hostname (every host), and who owns it.
    all: Option<String>,
    exact: HashMap<String, String>,
    /// `*.suffix` by suffix.
    wildcard: HashMap<String, String>,
    /// Every claimed hostname by its labels reversed (`a.example.com` → `com.example.a`,
    /// `*.example.com` → `com.example.*`), to find those under a wildcard with a range query.
    reversed: BTreeMap<String, String>,
}

fn reversed(h: &Hostname) -> String {
    match h {
        Hostname::Exact(name) => name.rsplit('.').collect::<Vec<_>>().join("."),
        Hostname::Wildcard(suffix) => format!("{}.*", suffix.rsplit('.').collect::<Vec<_>>().join(".")),
    }
}

/// Suffixes of `name` after each dot: `a.b.c` → `b.c`, `c`.
fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.').map(move |(i, _)| &name[i + 1..])
}

impl KindIndex {
    fn insert(&mut self, host: Option<&Hostname>, owner: &str) {
        let Some(host) = host else {
            self.all.get_or_insert_with(|| owner.to_string());
            return;
        };
        match host {
            Hostname::Exact(name) => self.exact.entry(name.clone()).or_insert_with(|| owner.to_string()),
            Hostname::Wildcard(suffix) => {
                self.wildcard.entry(suffix.clone()).or_insert_with(|| owner.to_string())
            }
        };
        self.reversed.entry(reversed(host)).or_insert_with(|| owner.to_string());
    }

    /// An owner of a hostname some request could match together with `host`, if any.
    fn overlapping(&self, host: Option<&Hostname>) -> Option<(&str, String)> {
        if let Some(owner) = &self.all {
            return Some((owner, "every host".to_string()));
        }
        let host = match host {
            None => {
                return self
                    .reversed
                    .iter()
                    .next()
                    .map(|(_, owner)| (owner.as_str(), "a hostname".to_string()));
            }
            Some(h) => h,
        };
        let name = match host {
            Hostname::Exact(name) => {
                if let Some(owner) = self.exact.get(name) {
                    return Some((owner, name.clone()));
                }
                name
            }
            Hostname::Wildcard(suffix) => {
                // Anything claimed under `*.suffix` (exact names and narrower wildcards).
                let prefix = format!("{}.", reversed(&Hostname::Exact(suffix.clone())));
                if let Some((key, owner)) = self.reversed.range(prefix.clone()..).next() {
                    if key.starts_with(&prefix) {
                        return Some((owner, key.rsplit('.').collect::<Vec<_>>().join(".")));
                    }
                }
                if let Some(owner) = self.wildcard.get(suffix) {
                    return Some((owner, host.as_string()));
                }
                suffix
            }
        };
        suffixes(name).find_map(|s| self.wildcard.get(s).map(|owner| (owner.as_str(), format!("*.{s}"))))
    }

    fn is_empty(&self) -> bool {
        self.all.is_none() && self.reversed.is_empty()
    }
}

/// Claims per listener hostname block and route kind.
#[derive(Default)]
pub(crate) struct Claims {
    blocks: BTreeMap<(Option<Hostname>, RouteKind), KindIndex>,
}

impl Claims {
    pub(crate) fn claim(
        &mut self,
        block: Option<&Hostname>,
        kind: RouteKind,
        host: Option<&Hostname>,
        owner: &str,
    ) {
        self.blocks.entry((block.cloned(), kind)).or_default().insert(host, owner);
    }

    /// Why `kind` may not serve `host` on `block`: a route of the other kind got there first.
    pub(crate) fn conflict(
        &self,
        block: Option<&Hostname>,
        kind: RouteKind,
        host: Option<&Hostname>,
    ) -> Option<String> {
        let other = match kind {
            RouteKind::Http => RouteKind::Grpc,
            RouteKind::Grpc => RouteKind::Http,
        };
        let index = self.blocks.get(&(block.cloned(), other)).filter(|i| !i.is_empty())?;
        index.overlapping(host).map(|(owner, taken)| {
            format!(
                "{owner} already serves {taken} on this listener hostname; an HTTPRoute and a GRPCRoute cannot share a hostname"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut claims = Claims::default();
            claims.claim(None, RouteKind::Http, claimed.and_then(h).as_ref(), "HTTPRoute ns/old");
            let got = claims.conflict(None, RouteKind::Grpc, asked.and_then(h).as_ref());
            assert_eq!(got.is_some(), *conflict, "{name}: {got:?}");
            assert!(
                claims.conflict(None, RouteKind::Http, asked.and_then(h).as_ref()).is_none(),
                "{name}: same kind never conflicts"
            );
            assert!(
                claims
                    .conflict(h("other.block").as_ref(), RouteKind::Grpc, asked.and_then(h).as_ref())
                    .is_none(),
                "{name}: other block"
            );
        }
    }
}
