//! Adding rules to [`Candidates`]: a listener's fence, a rule known in full, and the matches of
//! the route being translated, which are pushed, with their route, as they are rendered, and
//! placed (given their listener block and hostname) once the route's attachment is known.

use crate::path::PathRank;

use super::{Candidate, Candidates, Made};

impl Candidates {
    /// How many candidates there are: where the matches pushed next start.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// A rule of a block named by [`Candidates::block`] (`key.listener`).
    pub(crate) fn push(&mut self, key: Candidate, made: Made) {
        debug_assert_eq!(key.fence, made.route == Made::FENCE);
        debug_assert!(self.listeners.contains(&key.listener));
        self.keys.push((key, made));
    }

    /// A rendered match of the route being translated, with its route, before its listener
    /// block and hostname are known (`key.listener` and `key.host` are given by
    /// [`Candidates::place_each`]). Each match is written once, where it is kept, rather than into
    /// a list of its own and then copied here. The matches pushed since `from` must then be
    /// placed ([`Candidates::place_each`]), or dropped with [`Candidates::truncate`], before
    /// any other rule is pushed.
    #[inline]
    pub(crate) fn push_pending(&mut self, key: Candidate, made: Made) {
        self.keys.push((key, made));
    }

    /// The matches pushed since `from` become the rules of the listener block `listener` on
    /// the route hostname `host` (both [`super::HostIds`] ids).
    #[inline]
    fn place(&mut self, from: usize, listener: u32, host: u32) {
        self.block(listener);
        for (key, _) in &mut self.keys[from..] {
            key.listener = listener;
            key.host = host;
        }
    }

    /// The matches pushed since `from` become the rules of each (listener block, route
    /// hostname) of `places` in turn (both [`super::HostIds`] ids): the first takes them where
    /// they are, each further one gets a copy ([`Candidates::place_copy`]); with none, they are
    /// dropped ([`Candidates::truncate`]).
    pub(crate) fn place_each(&mut self, from: usize, places: impl IntoIterator<Item = (u32, u32)>) {
        let to = self.len();
        let mut places = places.into_iter();
        let Some((listener, host)) = places.next() else {
            self.truncate(from);
            return;
        };
        self.place(from, listener, host);
        for (listener, host) in places {
            self.place_copy(from, to, listener, host);
        }
    }

    /// The matches at `from..to`, placed already, once more as the rules of the listener
    /// block `listener` on the route hostname `host`: a route's further (listener, hostname).
    fn place_copy(&mut self, from: usize, to: usize, listener: u32, host: u32) {
        self.block(listener);
        for i in from..to {
            let (key, made) = self.keys[i];
            self.push(Candidate { listener, host, ..key }, made);
        }
    }

    /// Drops the candidates from `from` on: the matches of a route that gets no rules.
    pub(crate) fn truncate(&mut self, from: usize) {
        self.keys.truncate(from);
    }

    /// The fence closing the block of `listener`, the id of its hostname; `service` is the id
    /// of `http_status:404`.
    pub(crate) fn push_fence(&mut self, listener: u32, service: u32) {
        let made =
            Made { service, origin: crate::ingress::NO_ORIGIN, route: Made::FENCE, rule: 0, match_index: 0 };
        let all_paths = PathRank::http(&crate::model::PathMatch::all(), None);
        let key = Candidate {
            listener,
            host: listener,
            fence: true,
            grpc: false,
            rank: all_paths,
            path_hash: 0,
            path: (0, 0),
        };
        self.block(listener);
        self.push(key, made);
    }
}
