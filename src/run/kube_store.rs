//! The kinds' state and the snapshot they publish: each watch event read into a [`Change`],
//! then objects put, replaced and removed in place (copied only while a render still holds the
//! snapshot), a kind's (re-)list swapped in whole.

use super::*;

/// What is known of one kind; its objects themselves are in the published snapshot.
#[derive(Default)]
pub(super) struct KindState {
    /// Objects that could not be read, by `namespace/name`: why.
    pub(super) unreadable: BTreeMap<String, String>,
    /// A (re-)list in progress: swapped in whole at its end, so that a half-listed kind is never
    /// published (a 410 re-list must not look like a mass deletion).
    pub(super) relist: Option<(BTreeMap<String, Object>, BTreeMap<String, String>)>,
    /// The first list before the source is synced: nothing is published until every kind has
    /// listed, so its objects go straight into the snapshot instead of `relist`.
    listing_directly: bool,
    /// The first list completed.
    listed: bool,
    /// Optional kind the API server does not serve (yet).
    pub(super) missing: bool,
    /// The watch running for this kind, if any (a kind found late is not watched twice while
    /// it lists).
    pub(super) watch: Option<Watched>,
    /// Its watched version answered 404 (the CRD stopped serving it, or was removed): asked
    /// again at the next discovery.
    pub(super) lost: bool,
}

/// A kind's running watch: the version it reads, and how to stop it.
pub(super) struct Watched {
    pub(super) api_version: String,
    pub(super) abort: futures::stream::AbortHandle,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// What one watch event changes, read and converted before it is applied ([`Store::read`]).
pub(super) enum Change {
    Init,
    /// An object of a list, by `namespace/name`: converted, or why it cannot be read.
    InitApply(String, Result<Object, String>),
    InitDone,
    Apply(String, Result<Object, String>),
    Delete(String),
}

/// The vectors of a [`Snapshot`], by index: where each kind's objects are (both route kinds
/// share `routes`).
const VECTORS: usize = 7;

impl Kind {
    fn vector(self) -> usize {
        match self {
            Kind::GatewayClass => 0,
            Kind::Gateway => 1,
            Kind::HttpRoute | Kind::GrpcRoute => 2,
            Kind::ReferenceGrant => 3,
            Kind::BackendTlsPolicy => 4,
            Kind::Service => 5,
            Kind::Namespace => 6,
        }
    }

    fn route_kind(self) -> Option<model::RouteKind> {
        match self {
            Kind::HttpRoute => Some(model::RouteKind::Http),
            Kind::GrpcRoute => Some(model::RouteKind::Grpc),
            _ => None,
        }
    }
}

/// Whether `object` is what `snapshot` holds at `pos` of the object's vector.
fn same_at(snapshot: &Snapshot, pos: usize, object: &Object) -> bool {
    match object {
        Object::GatewayClass(o) => snapshot.gateway_classes.get(pos) == Some(o),
        Object::Gateway(o) => snapshot.gateways.get(pos) == Some(o),
        Object::Route(o) => snapshot.routes.get(pos) == Some(o),
        Object::ReferenceGrant(o) => snapshot.reference_grants.get(pos) == Some(o),
        Object::BackendTlsPolicy(o) => snapshot.backend_tls_policies.get(pos) == Some(o),
        Object::Service(o) => snapshot.services.get(pos) == Some(o),
        Object::Namespace(o) => snapshot.namespaces.get(pos) == Some(o),
    }
}

/// Room for `more` objects in vector `vector`.
fn reserve_exact(snapshot: &mut Snapshot, vector: usize, more: usize) {
    match vector {
        0 => snapshot.gateway_classes.reserve_exact(more),
        1 => snapshot.gateways.reserve_exact(more),
        2 => snapshot.routes.reserve_exact(more),
        3 => snapshot.reference_grants.reserve_exact(more),
        4 => snapshot.backend_tls_policies.reserve_exact(more),
        5 => snapshot.services.reserve_exact(more),
        _ => snapshot.namespaces.reserve_exact(more),
    }
}

/// Removes what is at `pos` of vector `vector`, moving the last object there.
fn swap_remove(snapshot: &mut Snapshot, vector: usize, pos: usize) {
    match vector {
        0 => drop(snapshot.gateway_classes.swap_remove(pos)),
        1 => drop(snapshot.gateways.swap_remove(pos)),
        2 => drop(snapshot.routes.swap_remove(pos)),
        3 => drop(snapshot.reference_grants.swap_remove(pos)),
        4 => drop(snapshot.backend_tls_policies.swap_remove(pos)),
        5 => drop(snapshot.services.swap_remove(pos)),
        _ => drop(snapshot.namespaces.swap_remove(pos)),
    }
}

/// Where every object is in the snapshot.
#[derive(Default)]
struct Positions {
    /// Per kind: `namespace/name` → position in the kind's vector.
    by_key: [HashMap<Arc<str>, usize>; Kind::ALL.len()],
    /// Per vector: the kind and key of the object at each position.
    at: [Vec<(Kind, Arc<str>)>; VECTORS],
}

impl Positions {
    fn get(&self, kind: Kind, key: &str) -> Option<usize> {
        self.by_key[kind as usize].get(key).copied()
    }

    fn insert(&mut self, snapshot: &mut Snapshot, kind: Kind, key: &str, object: Object) {
        let pos = self.get(kind, key);
        let at = object.put_at(snapshot, pos);
        if pos.is_none() {
            let key: Arc<str> = key.into();
            self.by_key[kind as usize].insert(key.clone(), at);
            self.at[kind.vector()].push((kind, key));
        }
    }

    /// Removes the object; false when there was none.
    fn remove(&mut self, snapshot: &mut Snapshot, kind: Kind, key: &str) -> bool {
        let Some(pos) = self.by_key[kind as usize].remove(key) else { return false };
        let vector = kind.vector();
        swap_remove(snapshot, vector, pos);
        self.at[vector].swap_remove(pos);
        if let Some((moved_kind, moved_key)) = self.at[vector].get(pos) {
            self.by_key[*moved_kind as usize].insert(moved_key.clone(), pos);
        }
        true
    }
}

/// The source's bookkeeping. The objects are in the published [`SourceState`]'s snapshot and
/// only there: [`Store::apply`] changes it in place (`Arc::make_mut`), which copies it only
/// while a render still holds the previous one, instead of building a new snapshot (a copy of
/// every object) for every change. `run` calls it only under the channel's lock, for a whole
/// batch and its revision at once (`kube::commit`), so no reader sees a batch half applied.
#[derive(Default)]
pub(super) struct Store {
    pub(super) kinds: [KindState; Kind::ALL.len()],
    positions: Positions,
    pub(super) synced: bool,
    pub(super) revision: u64,
    /// Where the routes holding status entries of ours are noted, for the status writer.
    pub(super) owned_routes: Option<OwnedRoutes>,
}

impl Store {
    pub(super) fn kind_mut(&mut self, kind: Kind) -> &mut KindState {
        &mut self.kinds[kind as usize]
    }

    /// Reads one watch event into the [`Change`] it makes, without touching the snapshot:
    /// the conversion (the costly part) runs before the batch is applied under the channel's
    /// lock ([`Store::apply`]). Calls the hook, and notes the routes holding our status
    /// entries (before `read_object` drops the status).
    pub(super) fn read(&self, kind: Kind, event: Event<DynamicObject>, hook: Option<&EventHook>) -> Change {
        if let (Some(hook), Event::Apply(_) | Event::InitApply(_) | Event::Delete(_)) = (hook, &event) {
            hook(kind.name());
        }
        // Readable or not, the route's status is there.
        if let (Some(owned), Some(route_kind)) = (&self.owned_routes, kind.route_kind()) {
            owned.observe(route_kind, &event);
        }
        match event {
            Event::Init => Change::Init,
            Event::InitApply(object) => {
                let (key, read) = read_object(kind, object);
                Change::InitApply(key, read)
            }
            Event::InitDone => Change::InitDone,
            Event::Apply(object) => {
                let (key, read) = read_object(kind, object);
                Change::Apply(key, read)
            }
            Event::Delete(object) => Change::Delete(object_key(&object)),
        }
    }

    /// Reads and applies one watch event (what `run` does in two steps); true when the
    /// published state changes.
    #[cfg(test)]
    pub(super) fn apply_event(
        &mut self,
        snapshot: &mut Arc<Snapshot>,
        kind: Kind,
        event: Event<DynamicObject>,
        hook: Option<&EventHook>,
    ) -> bool {
        let change = self.read(kind, event, hook);
        self.apply(snapshot, kind, change)
    }

    /// Applies one change of `kind` to `snapshot`; true when the published state changes.
    pub(super) fn apply(&mut self, snapshot: &mut Arc<Snapshot>, kind: Kind, change: Change) -> bool {
        let state = &mut self.kinds[kind as usize];
        let positions = &mut self.positions;
        match change {
            Change::Init if !self.synced && !state.listed => {
                // (Again, after a failed first list: what it had read goes.)
                state.listing_directly = true;
                state.unreadable.clear();
                let old: Vec<Arc<str>> = positions.by_key[kind as usize].keys().cloned().collect();
                for key in old {
                    positions.remove(Arc::make_mut(snapshot), kind, &key);
                }
                false
            }
            Change::Init => {
                state.relist = Some(Default::default());
                false
            }
            Change::InitApply(key, read) if state.listing_directly => {
                match read {
                    Ok(object) => positions.insert(Arc::make_mut(snapshot), kind, &key, object),
                    Err(why) => {
                        state.unreadable.insert(key, why);
                    }
                }
                false
            }
            Change::InitDone if state.listing_directly => {
                state.listing_directly = false;
                state.listed = true;
                state.missing = false;
                true
            }
            Change::InitApply(key, read) => {
                let (objects, unreadable) = state.relist.get_or_insert_with(Default::default);
                match read {
                    Ok(object) => {
                        objects.insert(key, object);
                    }
                    Err(why) => {
                        unreadable.insert(key, why);
                    }
                }
                false
            }
            Change::InitDone => {
                let (objects, unreadable) = state.relist.take().unwrap_or_default();
                let same_objects = positions.by_key[kind as usize].len() == objects.len()
                    && objects.iter().all(|(key, object)| {
                        positions.get(kind, key).is_some_and(|pos| same_at(snapshot, pos, object))
                    });
                if !same_objects {
                    let snapshot = Arc::make_mut(snapshot);
                    let old: Vec<Arc<str>> = positions.by_key[kind as usize].keys().cloned().collect();
                    for key in old {
                        positions.remove(snapshot, kind, &key);
                    }
                    // A first list of thousands of objects: no spare room for as many again.
                    reserve_exact(snapshot, kind.vector(), objects.len());
                    for (key, object) in objects {
                        positions.insert(snapshot, kind, &key, object);
                    }
                }
                let changed =
                    !state.listed || state.missing || !same_objects || unreadable != state.unreadable;
                state.unreadable = unreadable;
                state.listed = true;
                state.missing = false;
                changed
            }
            Change::Apply(key, read) => {
                match read {
                    Ok(object) => {
                        let was_unreadable = state.unreadable.remove(&key).is_some();
                        let same =
                            positions.get(kind, &key).is_some_and(|pos| same_at(snapshot, pos, &object));
                        if !same {
                            positions.insert(Arc::make_mut(snapshot), kind, &key, object);
                        }
                        was_unreadable || !same
                    }
                    Err(why) => {
                        // Kept out of the snapshot (SourceState): serving the older version
                        // would route traffic the user has changed.
                        let removed = positions.get(kind, &key).is_some()
                            && positions.remove(Arc::make_mut(snapshot), kind, &key);
                        let old = state.unreadable.insert(key, why.clone());
                        removed || old.as_ref() != Some(&why)
                    }
                }
            }
            Change::Delete(key) => {
                let removed = positions.get(kind, &key).is_some()
                    && positions.remove(Arc::make_mut(snapshot), kind, &key);
                state.unreadable.remove(&key).is_some() || removed
            }
        }
    }

    /// An optional kind no longer served at all (its CRD was removed): its objects go, and it
    /// is `missing` again, asked for at every discovery. True when the snapshot changed.
    pub(super) fn forget(&mut self, snapshot: &mut Arc<Snapshot>, kind: Kind) -> bool {
        let state = &mut self.kinds[kind as usize];
        state.watch = None;
        state.lost = false;
        state.relist = None;
        state.listing_directly = false;
        let had_unreadable = !std::mem::take(&mut state.unreadable).is_empty();
        let was_missing = std::mem::replace(&mut state.missing, true);
        let keys: Vec<Arc<str>> = self.positions.by_key[kind as usize].keys().cloned().collect();
        for key in &keys {
            self.positions.remove(Arc::make_mut(snapshot), kind, key);
        }
        !keys.is_empty() || had_unreadable || !was_missing
    }

    /// Every watched kind has completed its first list (a missing optional kind counts as
    /// listed: it has no objects). Once true it stays true: a kind found later, or re-listed,
    /// is swapped in whole when its list completes.
    pub(super) fn check_synced(&mut self) -> bool {
        self.synced = self.synced || self.kinds.iter().all(|k| k.listed || k.missing);
        self.synced
    }

    pub(super) fn warnings(&self, discovery_interval: Duration) -> Vec<String> {
        let mut warnings = Vec::new();
        for (kind, state) in Kind::ALL.iter().zip(&self.kinds) {
            if state.missing {
                warnings.push(format!(
                    "{}: not served by the API server (is its CRD installed?); ignored, asking again \
                     every {}s",
                    kind.name(),
                    discovery_interval.as_secs_f64()
                ));
            }
            for (key, why) in &state.unreadable {
                warnings.push(format!("{} {key} skipped: {why}", kind.name()));
            }
        }
        warnings
    }
}
