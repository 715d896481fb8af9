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

/// The status of a route. There is one per route of a cluster, made on every translation, so
/// its lists are inline (a route usually has one parent and two conditions; a third,
/// `PartiallyInvalid`, moves them to the heap) and its name is shared with the rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteStatus {
    /// The route's kind, namespace and name: the same value its rules name it by.
    pub route: Arc<RouteName>,
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
    pub conditions: SmallVec<[Condition; 2]>,
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
}
