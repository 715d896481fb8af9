//! The order the translation takes the routes in: oldest first ([`oldest_first`]), or as
//! stored with the routes that may conflict last ([`walk_order`]), each with its place oldest
//! first.

use crate::model::Route;

/// The places in `routes` by creation time (unknown last), then `namespace/name`, then kind.
///
/// Sorted on integers (no route read by a comparison), and only routes created in the same
/// second are compared by name. The times, relative to the oldest, and the place usually fit
/// one 64-bit key (the routes of a cluster span a few years: some 26 bits, and the place 14 at
/// 10,000 routes), sorted by a few radix passes where a comparison sort took about 150
/// instructions per route when the routes are not stored oldest first (a cluster lists them
/// by namespace and name); times too far apart for that are sorted as 128-bit keys.
/// Also says whether that is the order they are stored in, when it is found without sorting.
fn oldest_first(routes: &[Route]) -> (Vec<u32>, bool) {
    // Order-preserving: the sign bit flipped; `None` (unknown) is past every known time.
    let times: Vec<Option<u64>> = routes.iter().map(|r| r.meta.created.map(|t| t as u64 ^ 1 << 63)).collect();
    // Stored oldest first, no two of the same time (as when decoded from a list made so):
    // the order is the stored one.
    if times.windows(2).all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a < b)) {
        return ((0..routes.len() as u32).collect(), true);
    }
    let (min, max) = times.iter().flatten().fold((u64::MAX, 0), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    // The relative time of an unknown one: one past the newest (none when that overflows).
    let unknown = if min > max { Some(0) } else { (max - min).checked_add(1) };
    let index_bits = u64::BITS - (routes.len().max(1) as u64 - 1).leading_zeros();
    let packed = unknown.filter(|u| u64::BITS - u.leading_zeros() + index_bits <= u64::BITS);
    let mut sorted: Vec<u32> = match packed {
        Some(unknown) => {
            let keys: Vec<u64> = times
                .iter()
                .enumerate()
                .map(|(i, t)| t.map_or(unknown, |t| t - min) << index_bits | i as u64)
                .collect();
            if keys.windows(2).all(|w| w[0] < w[1]) {
                (0..routes.len() as u32).collect()
            } else {
                let bits = index_bits + u64::BITS - unknown.leading_zeros();
                super::order::radix_sorted_low(keys, index_bits, bits)
            }
        }
        None => {
            let mut keys: Vec<u128> = times
                .iter()
                .enumerate()
                .map(|(i, t)| t.map_or(1 << 96, |t| u128::from(t) << 32) | i as u128)
                .collect();
            keys.sort_unstable();
            keys.iter().map(|k| *k as u32).collect()
        }
    };
    // Runs of one time, found on the times (the routes are not read again for it).
    for same_time in sorted.chunk_by_mut(|a, b| times[*a as usize] == times[*b as usize]) {
        if same_time.len() > 1 {
            same_time.sort_unstable_by(|a, b| {
                let (a, b) = (&routes[*a as usize], &routes[*b as usize]);
                a.meta.key_cmp(&b.meta).then(a.kind.cmp(&b.kind))
            });
        }
    }
    (sorted, false)
}

/// The order [`super::translate`] takes `routes` in, each with its place oldest first
/// ([`oldest_first`]), and where in that order the routes that may conflict begin
/// (`may_conflict`: [`super::claims::may_conflict`]). Those are taken last, oldest first: a conflict
/// goes to the older route, so each one's outcome depends on the older ones'. The others'
/// outcomes depend on no other route's, and the candidates carry their route's place for the
/// ties of precedence ([`super::order::Candidates::age`]): they are taken first, in the order they are
/// stored, which is the order their data lies in memory when they were decoded as listed (a
/// cluster's list, a file), where the order of age reads them at random. When none may
/// conflict and the routes are stored oldest first but for a few (one out of place breaks the
/// order twice; two breaks and one per 64 routes are allowed), they are taken oldest first:
/// memory is read in order all the same, and the places then follow the order the candidates
/// are made in, so the sort key needs no bits for them.
pub(super) fn walk_order<'r>(
    routes: &'r [Route],
    may_conflict: &[bool],
) -> (Vec<&'r Route>, Vec<u32>, usize) {
    let (by_age, as_stored) = oldest_first(routes);
    let checked_from = may_conflict.iter().filter(|m| !**m).count();
    let nearly_oldest_first = || {
        // Counted up to one past the most allowed: in a cluster's list order, a few routes in.
        let allowed = 2 + routes.len() / 64;
        as_stored || by_age.windows(2).filter(|w| w[1] != w[0] + 1).take(allowed + 1).count() <= allowed
    };
    if checked_from == 0 || (checked_from == routes.len() && nearly_oldest_first()) {
        // All of them oldest first: the walk's place is the age.
        let walk = by_age.iter().map(|i| &routes[*i as usize]).collect();
        return (walk, (0..routes.len() as u32).collect(), checked_from);
    }
    let mut ages = vec![0u32; routes.len()];
    for (age, i) in by_age.iter().enumerate() {
        ages[*i as usize] = age as u32;
    }
    if checked_from == routes.len() {
        return (routes.iter().collect(), ages, checked_from);
    }
    let later = by_age.iter().map(|i| *i as usize).filter(|i| may_conflict[*i]);
    let order: Vec<usize> = (0..routes.len()).filter(|i| !may_conflict[*i]).chain(later).collect();
    (order.iter().map(|i| &routes[*i]).collect(), order.iter().map(|i| ages[*i]).collect(), checked_from)
}

#[cfg(test)]
mod tests {
    use crate::build::{grpc_route, http_route};
    use crate::model::Route;

    proptest::proptest! {
        /// The same order as comparing the routes themselves: time (unknown last, times of
        /// either sign), then `namespace/name`, then kind. With the extremes, the times are too
        /// far apart for a 64-bit key (sorted as 128-bit keys); without, radix-sorted (or found
        /// in order already).
        #[test]
        fn oldest_first_is_the_order_of_the_routes(
            routes in proptest::collection::vec(
                (proptest::option::of(-3i64..3), proptest::bool::ANY, "(a|a-b|ab)", "(r|r/x|s)"),
                0..40,
            ),
            extremes in proptest::bool::ANY,
            sorted in proptest::bool::ANY,
            may_conflict in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let routes: Vec<Route> = routes
                .into_iter()
                .map(|(created, grpc, ns, name)| {
                    let mut r = if grpc { grpc_route(&ns, &name) } else { http_route(&ns, &name) };
                    r.meta.created = created.map(|t| match t {
                        2 if extremes => i64::MAX,
                        -2 if extremes => i64::MIN,
                        t => t * 1_000_000,
                    });
                    r
                })
                .collect();
            let mut routes = routes;
            if sorted {
                routes.sort_by_key(|r| (r.meta.created.is_none(), r.meta.created));
            }
            let mut expected: Vec<&Route> = routes.iter().collect();
            expected.sort_by(|a, b| {
                (a.meta.created.is_none(), a.meta.created)
                    .cmp(&(b.meta.created.is_none(), b.meta.created))
                    .then_with(|| a.meta.key_cmp(&b.meta))
                    .then(a.kind.cmp(&b.kind))
            });
            let got: Vec<&Route> = super::oldest_first(&routes).0.into_iter().map(|i| &routes[i as usize]).collect();
            let key = |r: &&Route| (r.meta.created, r.meta.key(), r.kind);
            proptest::prop_assert_eq!(got.iter().map(key).collect::<Vec<_>>(), expected.iter().map(key).collect::<Vec<_>>());

            // The walk: all oldest first, or the routes that cannot conflict as stored, then
            // those that may, oldest first; with none that may, stored oldest first, as stored.
            // Each route with its place oldest first and whether it is checked (the last ones).
            // None, some or all may conflict.
            let some: Vec<bool> = routes.iter().zip(&may_conflict).map(|(_, m)| *m).collect();
            for may in [vec![false; routes.len()], some, vec![true; routes.len()]] {
                let (walk, ages, checked_from) = super::walk_order(&routes, &may);
                let place = |r: &Route| routes.iter().position(|x| std::ptr::eq(x, r)).unwrap();
                proptest::prop_assert!(walk.iter().enumerate().all(|(k, w)| may[place(w)] == (k >= checked_from)));
                let by_age = walk.iter().zip(&got).all(|(w, g)| std::ptr::eq(*w, *g));
                if !by_age {
                    let stored: Vec<&Route> = routes.iter().zip(&may).filter(|(_, m)| !**m).map(|(r, _)| r).collect();
                    let later: Vec<&Route> = got.iter().copied().filter(|r| may[place(r)]).collect();
                    let expected = stored.into_iter().chain(later);
                    proptest::prop_assert!(walk.iter().zip(expected).all(|(w, e)| std::ptr::eq(*w, e)));
                }
                if got.iter().zip(&routes).all(|(g, r)| std::ptr::eq(*g, r)) && !may.contains(&true) {
                    proptest::prop_assert!(by_age, "none checked, stored oldest first: as stored");
                }
                let mut by_age: Vec<(u32, &Route)> = ages.iter().copied().zip(walk).collect();
                by_age.sort_by_key(|(age, _)| *age);
                proptest::prop_assert!(by_age.iter().enumerate().all(|(i, (age, _))| *age == i as u32));
                proptest::prop_assert!(by_age.iter().zip(&got).all(|((_, w), g)| std::ptr::eq(*w, *g)));
            }
        }
    }
}
