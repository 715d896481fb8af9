//! Status as a value: what the translation says about every object it owns. Writing it (and
//! stamping `lastTransitionTime`) is the caller's business.

use std::borrow::Cow;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::ingress::RouteName;
use crate::model::{GroupKind, ParentRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// A status condition. Types and reasons are a closed set of names (Gateway API's, and ours),
/// so they are static strings; a message is built only when it says something particular.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Condition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: Cow<'static, str>,
    pub observed_generation: i64,
}

impl Condition {
    #[inline]
    pub fn new(
        type_: &'static str,
        status: ConditionStatus,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
        generation: i64,
    ) -> Self {
        Condition {
            type_,
            status,
            reason,
            message: fit_message(message.into()),
            observed_generation: generation,
        }
    }
}

impl Condition {
    /// A route's `Accepted: True`.
    #[inline]
    pub fn route_accepted(generation: i64) -> Self {
        Condition::new("Accepted", ConditionStatus::True, "Accepted", "Route accepted", generation)
    }

    /// `ResolvedRefs: True`, all references resolved (of a route, or of a Gateway).
    #[inline]
    pub fn refs_resolved(generation: i64) -> Self {
        Condition::new(
            "ResolvedRefs",
            ConditionStatus::True,
            "ResolvedRefs",
            "All references resolved",
            generation,
        )
    }
}

/// The longest condition message the API server accepts (`metav1.Condition`: 32768
/// characters). A longer one would fail the whole status write, and the object would get no
/// status at all.
pub const MAX_MESSAGE_CHARS: usize = 32768;

/// `message`, cut to [`MAX_MESSAGE_CHARS`] with a note saying so when it is longer: a route
/// with hundreds of dropped matches lists each one.
#[inline]
fn fit_message(message: Cow<'static, str>) -> Cow<'static, str> {
    // No more bytes than the limit is no more characters, and nearly every message is far
    // shorter: the characters are counted only past it.
    if message.len() <= MAX_MESSAGE_CHARS {
        return message;
    }
    cut_message(message)
}

#[cold]
fn cut_message(message: Cow<'static, str>) -> Cow<'static, str> {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message;
    }
    const CUT: &str = " … (cut at the API's limit of 32768 characters)";
    let keep = MAX_MESSAGE_CHARS - CUT.chars().count();
    let end = message.char_indices().nth(keep).map_or(message.len(), |(i, _)| i);
    Cow::Owned(format!("{}{CUT}", &message[..end]))
}

/// Status of all objects this controller owns, each list sorted by identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statuses {
    pub gateway_classes: Vec<GatewayClassStatus>,
    pub gateways: Vec<GatewayStatus>,
    pub routes: Vec<RouteStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayClassStatus {
    pub name: String,
    /// The object's [`crate::model::Meta::incarnation`]: the status of one incarnation of
    /// the name.
    pub incarnation: u64,
    pub generation: i64,
    pub conditions: Vec<Condition>,
    /// Sorted feature names (GatewayClass `status.supportedFeatures`).
    pub supported_features: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayStatus {
    pub namespace: String,
    pub name: String,
    /// The object's [`crate::model::Meta::incarnation`]: the status of one incarnation of
    /// the name.
    pub incarnation: u64,
    pub generation: i64,
    /// `Hostname` addresses (`<TunnelID>.cfargotunnel.com`), empty when the tunnel is unknown.
    pub addresses: Vec<String>,
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenerStatus {
    pub name: String,
    pub supported_kinds: Vec<GroupKind>,
    pub attached_routes: i32,
    pub conditions: Vec<Condition>,
}

/// The status of a route. There is one per route of a cluster, made on every translation and
/// kept until the next, so it is small (88 bytes, and nothing on the heap in the usual case):
/// its parent is inline (a route usually has one), an accepted route's conditions are a
/// generation ([`RouteConditions`]), and its name is ranges of the string of all the routes'
/// names ([`RouteName`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteStatus {
    /// The route's kind, namespace and name: the same value its rules name it by.
    pub route: RouteName,
    /// The object's [`crate::model::Meta::incarnation`]: the status of one incarnation of
    /// the name.
    pub incarnation: u64,
    pub generation: i64,
    /// One entry per parentRef that names a Gateway we own, in parentRef order.
    pub parents: SmallVec<[RouteParentStatus; 1]>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteParentStatus {
    /// The parentRef as written. Shared: the routes of a cluster mostly write the same few
    /// parentRefs, and the translation gives the statuses one copy of each (8 bytes in each
    /// status instead of a 104-byte copy, and no reference counts of the snapshot's strings
    /// touched per route).
    pub parent_ref: Arc<ParentRef>,
    pub conditions: RouteConditions,
}

/// The conditions of a route's entry for one parent, in order. Nearly every route is accepted
/// with nothing to say, and its two conditions are then always the same but for the
/// generation ([`RouteConditions::accepted`]): they are kept as that generation alone (16
/// bytes in place of a 152-byte list), and made when read. Any other list is kept as it is.
///
/// Read with [`RouteConditions::iter`] (the conditions, each borrowed or made); made from a
/// `Vec<Condition>` (`.into()`), which finds the accepted pair in it, so two values are equal,
/// hash and print alike exactly when their conditions do.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RouteConditions(Conditions);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Conditions {
    /// `Accepted: True` ("Route accepted") and `ResolvedRefs: True` ("All references
    /// resolved"), observed at this generation.
    Accepted(i64),
    /// Any other list.
    Listed(Box<[Condition]>),
}

impl RouteConditions {
    /// The conditions of a route accepted by a parent, with every reference resolved and every
    /// rule rendered.
    #[inline]
    pub fn accepted(generation: i64) -> Self {
        RouteConditions(Conditions::Accepted(generation))
    }

    /// The `i`th condition of [`RouteConditions::accepted`] at `generation`.
    fn accepted_nth(i: usize, generation: i64) -> Condition {
        if i == 0 {
            Condition::route_accepted(generation)
        } else {
            Condition::refs_resolved(generation)
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Conditions::Accepted(_) => 2,
            Conditions::Listed(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th condition.
    pub fn get(&self, i: usize) -> Option<Cow<'_, Condition>> {
        match &self.0 {
            Conditions::Accepted(generation) => {
                (i < 2).then(|| Cow::Owned(Self::accepted_nth(i, *generation)))
            }
            Conditions::Listed(list) => list.get(i).map(Cow::Borrowed),
        }
    }

    /// The conditions in order: borrowed, or made (the accepted pair: no allocation).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Cow<'_, Condition>> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("within the length"))
    }

    pub fn to_vec(&self) -> Vec<Condition> {
        self.iter().map(Cow::into_owned).collect()
    }
}

impl From<Vec<Condition>> for RouteConditions {
    fn from(list: Vec<Condition>) -> Self {
        if let [first, second] = list.as_slice() {
            let generation = first.observed_generation;
            if *first == Self::accepted_nth(0, generation) && *second == Self::accepted_nth(1, generation) {
                return Self::accepted(generation);
            }
        }
        RouteConditions(Conditions::Listed(list.into_boxed_slice()))
    }
}

impl std::fmt::Debug for RouteConditions {
    /// As the list of conditions.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What is known about cloudflared running the rendered config; it decides `Programmed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Programmed {
    /// Offline (`status`) or not yet verified: `Unknown`/`Pending`.
    Pending,
    /// cloudflared's `/config` shows the rendered rules.
    Yes,
    /// Verification failed; the message says why.
    No(String),
    /// No cloudflared runs the config now, though one is on its way: the cloudflared that
    /// `run --reload supervise` keeps exited on its own and is being restarted (the message
    /// says how it ended). `False`/`Pending` until a restarted one runs the config.
    Down(String),
}

impl Statuses {
    /// Set `Programmed` on every Gateway and listener that is Accepted (a listener only when its
    /// Gateway is too); the others are `Programmed: False`.
    pub fn set_programmed(&mut self, programmed: &Programmed) {
        let (status, reason, message) = match programmed {
            Programmed::Pending => (
                ConditionStatus::Unknown,
                "Pending",
                "Waiting for cloudflared to run the rendered configuration".to_string(),
            ),
            Programmed::Yes => (
                ConditionStatus::True,
                "Programmed",
                "cloudflared runs the rendered configuration".to_string(),
            ),
            Programmed::No(why) => (ConditionStatus::False, "Invalid", why.clone()),
            // Gateway API: "Possible reasons for this condition to be False are: Invalid,
            // Pending, NoResources, AddressNotAssigned" (a Listener's: Invalid, Pending).
            // Nothing is wrong with the config; the connector is being started again.
            Programmed::Down(why) => (ConditionStatus::False, "Pending", why.clone()),
        };
        let accepted = |conditions: &[Condition]| {
            conditions.iter().any(|c| c.type_ == "Accepted" && c.status == ConditionStatus::True)
        };
        // A listener of a Gateway that is not accepted renders nothing, whatever its own state.
        let set = |conditions: &mut Vec<Condition>, generation: i64, gateway_accepted: bool| {
            let condition = if gateway_accepted && accepted(conditions) {
                Condition::new("Programmed", status, reason, message.clone(), generation)
            } else {
                Condition::new("Programmed", ConditionStatus::False, "Invalid", "Not accepted", generation)
            };
            match conditions.iter_mut().find(|c| c.type_ == "Programmed") {
                Some(existing) => *existing = condition,
                None => conditions.push(condition),
            }
        };
        for gateway in &mut self.gateways {
            let gateway_accepted = accepted(&gateway.conditions);
            set(&mut gateway.conditions, gateway.generation, true);
            for listener in &mut gateway.listeners {
                set(&mut listener.conditions, gateway.generation, gateway_accepted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_past_the_api_limit_are_cut_with_a_note() {
        let short = Condition::new("Accepted", ConditionStatus::True, "Accepted", "fine", 1);
        assert_eq!(short.message, "fine");
        // Multi-byte characters: the limit counts characters, and the cut keeps them whole.
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        let cut = Condition::new("PartiallyInvalid", ConditionStatus::True, "UnsupportedValue", long, 1);
        assert_eq!(cut.message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(
            cut.message.ends_with("(cut at the API's limit of 32768 characters)"),
            "{}",
            &cut.message[..40]
        );
        let exact = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(Condition::new("A", ConditionStatus::True, "A", exact.clone(), 1).message, exact);
    }

    // Spelled out here rather than through `Condition::route_accepted` / `refs_resolved`: the
    // tests below then also pin the fixed conditions' text.
    fn accepted(generation: i64) -> Condition {
        Condition::new("Accepted", ConditionStatus::True, "Accepted", "Route accepted", generation)
    }

    fn resolved(generation: i64) -> Condition {
        Condition::new(
            "ResolvedRefs",
            ConditionStatus::True,
            "ResolvedRefs",
            "All references resolved",
            generation,
        )
    }

    #[test]
    fn an_accepted_routes_conditions_are_accepted_and_resolved() {
        let compact = RouteConditions::accepted(5);
        assert_eq!(compact.to_vec(), vec![accepted(5), resolved(5)]);
        assert_eq!(RouteConditions::from(vec![accepted(5), resolved(5)]), compact);
        assert_ne!(RouteConditions::from(vec![accepted(5), resolved(4)]), compact);
        assert_eq!(compact.len(), 2);
        assert!(compact.get(2).is_none());
    }

    /// A list of conditions drawn from the accepted pair (often whole, at a few generations)
    /// and others like them.
    fn conditions() -> impl proptest::strategy::Strategy<Value = Vec<Condition>> {
        use proptest::prelude::*;
        let one = (0usize..6, 0i64..3).prop_map(|(which, generation)| match which {
            0 => accepted(generation),
            1 => resolved(generation),
            2 => Condition::new("Accepted", ConditionStatus::True, "Accepted", "Route accepted ", generation),
            3 => {
                Condition::new("ResolvedRefs", ConditionStatus::False, "BackendNotFound", "gone", generation)
            }
            4 => Condition::new(
                "ResolvedRefs",
                ConditionStatus::True,
                "Accepted",
                "All references resolved",
                generation,
            ),
            _ => {
                Condition::new("PartiallyInvalid", ConditionStatus::True, "UnsupportedValue", "x", generation)
            }
        });
        prop_oneof![
            (0i64..3).prop_map(|g| vec![accepted(g), resolved(g)]),
            proptest::collection::vec(one, 0..4),
        ]
    }

    fn hash(value: &impl std::hash::Hash) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
    }

    proptest::proptest! {
        /// Kept compact or listed, conditions read back, compare, hash and print as the list
        /// they were made from.
        #[test]
        fn route_conditions_are_the_list_they_were_made_from(a in conditions(), b in conditions()) {
            let (x, y) = (RouteConditions::from(a.clone()), RouteConditions::from(b.clone()));
            proptest::prop_assert_eq!(x.to_vec(), a.clone());
            proptest::prop_assert_eq!(x.len(), a.len());
            proptest::prop_assert_eq!(x.is_empty(), a.is_empty());
            proptest::prop_assert!(x.get(a.len()).is_none());
            proptest::prop_assert_eq!(format!("{x:?}"), format!("{a:?}"));
            proptest::prop_assert_eq!(format!("{x:#?}"), format!("{a:#?}"));
            proptest::prop_assert_eq!(x == y, a == b);
            if a == b {
                proptest::prop_assert_eq!(hash(&x), hash(&y));
            }
            if let [first, _] = a.as_slice() {
                let g = first.observed_generation;
                let compact = a == vec![accepted(g), resolved(g)];
                proptest::prop_assert_eq!(x == RouteConditions::accepted(g), compact);
            }
        }
    }
}
