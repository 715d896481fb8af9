//! The routes' hostnames, each distinct one parsed once per translation.

use rustc_hash::FxHashMap;

use crate::hostname::{short_eq, Hostname};
use crate::ingress::SharedText;
use crate::model::Route;

/// Every distinct hostname the routes write, parsed ([`Hostname::parse`]) the first time it is
/// met and kept once: routes often share a hostname (the routes of one site, split by path),
/// and each of them then costs a look-up instead of a parse and a `String`. The routes hold
/// their hostnames as places in [`RouteHosts::parsed`], which [`HostIds`] turns
/// into ids without hashing them again.
#[derive(Default)]
pub(crate) struct RouteHosts<'s> {
    /// Each hostname parsed, by its text as written.
    places: FxHashMap<Short<'s>, u32>,
    /// Each distinct hostname, in the order first met.
    pub parsed: Vec<Hostname>,
    /// Every route's hostnames as places in [`RouteHosts::parsed`], one route's after the
    /// other's ([`HostPlaces`] says where).
    routes: Vec<u32>,
    /// The refused hostnames: the index of the first a route writes, and why.
    refused: Vec<(usize, String)>,
}

/// A text as a key of a table, compared by [`short_eq`]: namespaces and most hostnames have at
/// most 32 bytes (a table's hit compares the key once). Hashes as the text.
#[derive(Clone, Copy, Hash)]
pub(crate) struct Short<'s>(pub &'s str);

impl PartialEq for Short<'_> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        short_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Short<'_> {}

/// Where a route's hostnames are among [`RouteHosts`]' places, and so in [`RouteHosts::all`]
/// (from, to), or the place of the first the schema refuses among its refusals
/// ([`RouteHosts::refused`]).
///
/// Twelve bytes, no list of its own: the places are written once, at the end of one list, and
/// not read back right away. (A `SmallVec` of them, moved into the caller's list, was read back
/// with one wide load at once; written place by place, that load could not take the places
/// from the stores still pending and waited for them to reach the cache, behind the store of
/// the hash table's entry, which misses: the slowest line of `translate` at 10,000 routes.)
pub(crate) type HostPlaces = Result<(u32, u32), u32>;

impl<'s> RouteHosts<'s> {
    /// Room for `n` distinct hostnames: the table of texts then never grows.
    pub fn with_capacity(n: usize) -> Self {
        RouteHosts {
            places: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            parsed: Vec::with_capacity(n),
            routes: Vec::with_capacity(n),
            refused: Vec::new(),
        }
    }

    /// `route`'s hostnames, each parsed unless it was met before, or the first refused (a
    /// refused hostname is not kept: it rejects its route, and is parsed again, to say why,
    /// for another).
    pub fn parse(&mut self, route: &'s Route) -> HostPlaces {
        let from = self.routes.len();
        for (i, h) in route.hostnames.iter().enumerate() {
            let place = match self.places.entry(Short(h.as_str())) {
                std::collections::hash_map::Entry::Occupied(known) => *known.get(),
                std::collections::hash_map::Entry::Vacant(new) => match Hostname::parse(h) {
                    Ok(parsed) => {
                        self.parsed.push(parsed);
                        let place = self.parsed.len() as u32 - 1;
                        new.insert(place);
                        place
                    }
                    Err(e) => {
                        self.routes.truncate(from);
                        self.refused.push((i, e.to_string()));
                        return Err(self.refused.len() as u32 - 1);
                    }
                },
            };
            self.routes.push(place);
        }
        Ok((from as u32, self.routes.len() as u32))
    }

    /// The hostnames of every route [`RouteHosts::parse`] took, one route's after the other's,
    /// as references: a route's are the range of its places (`HostPlaces`), borrowed as they
    /// are rather than gathered route by route.
    pub fn all(&self) -> Vec<&Hostname> {
        self.routes.iter().map(|p| &self.parsed[*p as usize]).collect()
    }

    /// The index of the first hostname a route wrote that [`RouteHosts::parse`] refused, and
    /// why.
    pub fn refused(&self, refused: u32) -> &(usize, String) {
        &self.refused[refused as usize]
    }
}

/// The place of `h` in `slice` when it is one of its elements (at the same address), found
/// from the addresses alone: how [`HostIds`] knows a route's hostname without
/// hashing it.
pub(crate) fn place_in(slice: &[Hostname], h: &Hostname) -> Option<usize> {
    let offset = (std::ptr::from_ref(h) as usize).wrapping_sub(slice.as_ptr() as usize);
    let place = offset / std::mem::size_of::<Hostname>();
    slice.get(place).filter(|at| std::ptr::eq(*at, h)).map(|_| place)
}

/// Hostnames (of listener blocks and of routes) as small ids: ordering and the reachability
/// check then index vectors instead of hashing and comparing strings for every rule. Each
/// distinct hostname is also written once, into one string for all of them, which
/// [`super::order::finish`] adds to the string of the paths: the rules' hostnames are ranges
/// of it, no heap object each.
#[derive(Default)]
pub(crate) struct HostIds<'a> {
    ids: FxHashMap<Option<&'a Hostname>, u32>,
    pub(super) values: Vec<Option<&'a Hostname>>,
    /// Where each hostname's text is in `text` (`None`: every host).
    pub(super) ranges: Vec<Option<(u32, u32)>>,
    pub(super) text: String,
    /// The hostname last asked for, by address, and its id: a route's attachments name the
    /// same parsed hostname once per listener, which then costs no hashing.
    last: Option<(Option<&'a Hostname>, u32)>,
    /// The routes' hostnames ([`RouteHosts::parsed`]) and their ids, by place:
    /// a hostname of these is known by its address, without hashing it.
    routes: &'a [Hostname],
    route_ids: Vec<u32>,
    /// Whether the routes' hostnames are in `ids` too ([`HostIds::add_routes`] leaves them
    /// out; a look-up by value that misses puts them in first).
    routes_indexed: bool,
}

impl<'a> HostIds<'a> {
    /// Room for `n` hostnames.
    pub(crate) fn with_capacity(n: usize) -> Self {
        HostIds {
            ids: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            values: Vec::with_capacity(n),
            ranges: Vec::with_capacity(n),
            text: String::with_capacity(n * 24),
            last: None,
            routes: &[],
            route_ids: Vec::new(),
            routes_indexed: true,
        }
    }

    /// Gives each of `routes` (distinct hostnames) its id, once: [`HostIds::id`] then finds
    /// those by address. A hostname equal to one given an id before (a listener's) takes that
    /// id; the others get new ids without being hashed into the table: the hostnames given ids
    /// before are few, and compared directly when there are at most [`HostIds::FEW`]. The
    /// table gets the routes' hostnames only if a look-up by value misses
    /// ([`HostIds::id_by_value`]).
    pub(crate) fn add_routes(&mut self, routes: &'a [Hostname]) {
        let before = self.values.len();
        self.route_ids = Vec::with_capacity(routes.len());
        for h in routes {
            let known = if before <= Self::FEW {
                self.values[..before].iter().position(|v| *v == Some(h)).map(|id| id as u32)
            } else {
                self.ids.get(&Some(h)).copied()
            };
            let id = match known {
                Some(id) => id,
                None => self.new_id(Some(h)),
            };
            self.route_ids.push(id);
        }
        self.routes = routes;
        self.routes_indexed = false;
    }

    /// At most this many hostnames with ids (the listeners'), [`HostIds::add_routes`] compares
    /// each route's hostname with them rather than hashing it.
    const FEW: usize = 8;

    /// The id of `h`. Inline, for the routes' hostnames found by address (every attachment
    /// asks for one); the others are looked up by [`HostIds::id_by_value`].
    #[inline]
    pub(crate) fn id(&mut self, h: Option<&'a Hostname>) -> u32 {
        if let Some(place) = h.and_then(|h| place_in(self.routes, h)) {
            return self.route_ids[place];
        }
        self.id_by_value(h)
    }

    /// [`HostIds::id`] of a hostname that is not one of the routes' (or asked for before
    /// [`HostIds::add_routes`]): by address when it was the last asked for, else by value,
    /// given the next id when it is new.
    #[inline(never)]
    fn id_by_value(&mut self, h: Option<&'a Hostname>) -> u32 {
        if let Some((last, id)) = self.last {
            // The same address is the same hostname (and `None` is `None`).
            if last.map(std::ptr::from_ref) == h.map(std::ptr::from_ref) {
                return id;
            }
        }
        if !self.routes_indexed && !self.ids.contains_key(&h) {
            // A hostname equal to a route's, elsewhere in memory, has the route's id.
            self.routes_indexed = true;
            for (route, id) in self.routes.iter().zip(&self.route_ids) {
                self.ids.insert(Some(route), *id);
            }
        }
        let id = match self.ids.get(&h) {
            Some(id) => *id,
            None => {
                let id = self.new_id(h);
                self.ids.insert(h, id);
                id
            }
        };
        self.last = Some((h, id));
        id
    }

    /// The next id, for `h`, with its text (not put in the table: the callers do, or say why
    /// not).
    fn new_id(&mut self, h: Option<&'a Hostname>) -> u32 {
        self.values.push(h);
        self.ranges.push(h.map(|h| {
            let range = match h {
                Hostname::Exact(name) => SharedText::append(&mut self.text, name),
                Hostname::Wildcard(_) => SharedText::append(&mut self.text, &h.as_string()),
            };
            (range.start, range.end)
        }));
        (self.values.len() - 1) as u32
    }

    /// The `hostname:` of rules with the hostname `id` (lower case; `None`: every host).
    #[cfg(test)]
    pub(crate) fn text(&self, id: u32) -> Option<&str> {
        self.ranges[id as usize].map(|(start, end)| &self.text[start as usize..end as usize])
    }
}

#[cfg(test)]
mod tests {
    use crate::build::http_route;
    use crate::hostname::Hostname;
    use crate::model::Route;
    use crate::translate::order::HostIds;

    proptest::proptest! {
        /// [`super::Short`] texts are equal exactly when the texts are: every length to past
        /// the 32 bytes compared by loads, texts of one length differing in any one byte
        /// (first, last, middle, where loads overlap) or in none.
        #[test]
        fn short_texts_compare_as_the_texts(
            a in "[ab]{0,40}",
            flip in proptest::option::of(0usize..40),
        ) {
            let mut b = a.clone().into_bytes();
            if let Some(i) = flip.filter(|i| *i < b.len()) {
                b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            }
            let b = String::from_utf8(b).expect("ascii");
            proptest::prop_assert_eq!(super::Short(&a) == super::Short(&b), a == b);
            let shorter = &a[..a.len().saturating_sub(1)];
            proptest::prop_assert_eq!(super::Short(&a) == super::Short(shorter), a == shorter);
        }

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
            let all = hosts.all();
            for (route, places) in routes.iter().zip(&places) {
                let expected: Result<Vec<Hostname>, (usize, String)> = route
                    .hostnames
                    .iter()
                    .enumerate()
                    .map(|(i, h)| Hostname::parse(h).map_err(|e| (i, e.to_string())))
                    .collect();
                let got = places
                    .map(|(from, to)| all[from as usize..to as usize].iter().map(|h| (*h).clone()).collect::<Vec<_>>())
                    .map_err(|r| hosts.refused(r).clone());
                proptest::prop_assert_eq!(got, expected);
            }
            let mut distinct = hosts.parsed.clone();
            distinct.sort();
            distinct.dedup();
            proptest::prop_assert_eq!(distinct.len(), hosts.parsed.len());
        }

        /// [`HostIds`] gives the routes' hostnames, found by address, the ids it gives equal
        /// hostnames found by hashing (copies elsewhere in memory, listener hostnames equal to
        /// some of them, up to [`HostIds::FEW`] listener hostnames or more): one id per
        /// distinct hostname, whose text is the hostname's.
        #[test]
        fn route_hostnames_by_address_have_the_ids_of_their_values(
            texts in proptest::collection::vec("(a\\.example\\.com|\\*\\.example\\.com|b\\.example\\.com|c\\.org|d\\.org)", 0..8),
            listeners in proptest::collection::vec(proptest::option::of("(a\\.example\\.com|\\*\\.example\\.com|[e-p]\\.net)"), 0..24),
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
