//! The routes' hostnames, each distinct one parsed once per translation.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::hostname::Hostname;
use crate::model::Route;

/// Every distinct hostname the routes write, parsed ([`Hostname::parse`]) the first time it is
/// met and kept once: routes often share a hostname (the routes of one site, split by path),
/// and each of them then costs a look-up instead of a parse and a `String`. The routes hold
/// their hostnames as places in [`RouteHosts::parsed`], which [`super::order::HostIds`] turns
/// into ids without hashing them again.
#[derive(Default)]
pub(crate) struct RouteHosts<'s> {
    /// Each hostname parsed, by its text as written.
    places: FxHashMap<&'s str, u32>,
    /// Each distinct hostname, in the order first met.
    pub parsed: Vec<Hostname>,
}

/// A route's hostnames as places in [`RouteHosts::parsed`], or the index of the first the
/// schema refuses and why.
pub(crate) type HostPlaces = Result<SmallVec<[u32; 2]>, (usize, String)>;

impl<'s> RouteHosts<'s> {
    /// Room for `n` distinct hostnames: the table of texts then never grows.
    pub fn with_capacity(n: usize) -> Self {
        RouteHosts {
            places: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            parsed: Vec::with_capacity(n),
        }
    }

    /// `route`'s hostnames, each parsed unless it was met before, or the first refused (a
    /// refused hostname is not kept: it rejects its route, and is parsed again, to say why,
    /// for another).
    pub fn parse(&mut self, route: &'s Route) -> HostPlaces {
        let mut places = SmallVec::new();
        for (i, h) in route.hostnames.iter().enumerate() {
            let place = match self.places.entry(h.as_str()) {
                std::collections::hash_map::Entry::Occupied(known) => *known.get(),
                std::collections::hash_map::Entry::Vacant(new) => {
                    self.parsed.push(Hostname::parse(h).map_err(|e| (i, e.to_string()))?);
                    *new.insert(self.parsed.len() as u32 - 1)
                }
            };
            places.push(place);
        }
        Ok(places)
    }
}

/// The place of `h` in `slice` when it is one of its elements (at the same address), found
/// from the addresses alone: how [`super::order::HostIds`] knows a route's hostname without
/// hashing it.
pub(crate) fn place_in(slice: &[Hostname], h: &Hostname) -> Option<usize> {
    let offset = (std::ptr::from_ref(h) as usize).wrapping_sub(slice.as_ptr() as usize);
    let place = offset / std::mem::size_of::<Hostname>();
    slice.get(place).filter(|at| std::ptr::eq(*at, h)).map(|_| place)
}

#[cfg(test)]
mod tests {
    use crate::build::http_route;
    use crate::hostname::Hostname;
    use crate::model::Route;
    use crate::translate::order::HostIds;

    proptest::proptest! {
        /// Each route's places name its hostnames as [`Hostname::parse`] parses them, or the
        /// first it refuses, as parsing each in turn does; a text met again is not parsed
        /// again.
        #[test]
        fn places_are_the_parsed_hostnames(
            routes in proptest::collection::vec(
                proptest::collection::vec("(a\\.example\\.com|\\*\\.example\\.com|B\\.example\\.com|a:80|c\\.org)", 0..4),
                0..20,
            ),
        ) {
            let routes: Vec<Route> = routes
                .iter()
                .enumerate()
                .map(|(n, hostnames)| {
                    hostnames.iter().fold(http_route("ns", &format!("r{n}")), |r, h| r.hostname(h))
                })
                .collect();
            let mut hosts = super::RouteHosts::default();
            let places: Vec<super::HostPlaces> = routes.iter().map(|r| hosts.parse(r)).collect();
            for (route, places) in routes.iter().zip(&places) {
                let expected: Result<Vec<Hostname>, (usize, String)> = route
                    .hostnames
                    .iter()
                    .enumerate()
                    .map(|(i, h)| Hostname::parse(h).map_err(|e| (i, e.to_string())))
                    .collect();
                let got = places
                    .as_ref()
                    .map(|p| p.iter().map(|p| hosts.parsed[*p as usize].clone()).collect::<Vec<_>>())
                    .map_err(Clone::clone);
                proptest::prop_assert_eq!(got, expected);
            }
            let mut distinct = hosts.parsed.clone();
            distinct.sort();
            distinct.dedup();
            proptest::prop_assert_eq!(distinct.len(), hosts.parsed.len());
        }

        /// [`HostIds`] gives the routes' hostnames, found by address, the ids it gives equal
        /// hostnames found by hashing (copies elsewhere in memory, listener hostnames equal to
        /// some of them): one id per distinct hostname, whose text is the hostname's.
        #[test]
        fn route_hostnames_by_address_have_the_ids_of_their_values(
            texts in proptest::collection::vec("(a\\.example\\.com|\\*\\.example\\.com|b\\.example\\.com|c\\.org|d\\.org)", 0..8),
            listeners in proptest::collection::vec(proptest::option::of("(a\\.example\\.com|\\*\\.example\\.com|e\\.net)"), 0..4),
        ) {
            let route = texts.iter().fold(http_route("ns", "r"), |r, h| r.hostname(h));
            let mut hosts = super::RouteHosts::with_capacity(1);
            hosts.parse(&route).expect("valid hostnames");
            let listeners: Vec<Option<Hostname>> =
                listeners.iter().map(|l| l.as_deref().map(|l| Hostname::parse(l).unwrap())).collect();
            let copies: Vec<Hostname> = hosts.parsed.clone();
            let mut ids = HostIds::with_capacity(16);
            let listener_ids: Vec<u32> = listeners.iter().map(|l| ids.id(l.as_ref())).collect();
            ids.add_routes(&hosts.parsed);
            let by_address: Vec<u32> = hosts.parsed.iter().map(|h| ids.id(Some(h))).collect();
            let by_value: Vec<u32> = copies.iter().map(|h| ids.id(Some(h))).collect();
            proptest::prop_assert_eq!(&by_address, &by_value);
            let all: Vec<(Option<&Hostname>, u32)> = listeners
                .iter()
                .map(Option::as_ref)
                .zip(listener_ids)
                .chain(hosts.parsed.iter().map(Some).zip(by_address))
                .collect();
            for (h, id) in &all {
                proptest::prop_assert_eq!(ids.text(*id).map(str::to_string), h.map(Hostname::as_string));
                for (other, other_id) in &all {
                    proptest::prop_assert_eq!(h == other, id == other_id);
                }
            }
        }
    }
}
