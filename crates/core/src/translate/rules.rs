//! A route's rules → what each surviving match renders to, independent of hostnames.
//!
//! cloudflared rules know a hostname and a path and nothing else. A match that also needs a
//! header, a query parameter or a method, and a rule with a filter other than a URLRewrite of
//! the hostname, cannot be expressed; rendering their path alone would send traffic the user
//! did not route there. So they are dropped and reported, never widened.

use std::sync::Arc;

use crate::hostname::Hostname;
use crate::ingress::{OriginRequest, RouteName, SharedText};
use crate::model::{Filter, HttpMatch, Route, RouteKind, RouteMatch, RouteRule, Text};
use crate::path::{grpc_path, http_path_append, PathRank};

use super::backends::{self, Resolver, UnresolvedRef};
use super::order::{Candidate, Candidates, Made};
use super::{Reason, Rejection, Settings};

/// Everything one route renders to, before hostnames and order. One value is reused from
/// route to route ([`route_out`] clears it).
#[derive(Default)]
pub(crate) struct RouteOut {
    /// Where the route's rendered matches are in the [`Candidates`] [`route_out`] pushes them
    /// to, in rule and match order, not yet placed ([`Candidates::push_pending`]).
    pub matches: std::ops::Range<usize>,
    /// Dropped matches and rules.
    pub rejections: Vec<Rejection>,
    /// Rules that rendered at least one match.
    pub rules_kept: usize,
    pub unresolved: Vec<UnresolvedRef>,
    /// Notes for the summary (weights collapsed).
    pub notes: Vec<String>,
}

/// What `route`'s rules render to, into `out` (cleared first); each rendered match is pushed
/// to `candidates`, pending ([`Candidates::push_pending`]): a match is written once, not into
/// a list of its own first. Their paths are added to `paths`, the translation's string of
/// every path, one after the other (one string for the rules' paths,
/// [`crate::ingress::IngressRule::path`], not one heap object per rule), where
/// [`Candidate::path`] says. `group` is the route's (kind, namespace) group
/// ([`super::status::RouteNames::group`]): its backendRefs' [`backends::Scope`]. The settings
/// are the resolver's. Not inlined: called once per route, and a profile then shows its cost.
#[inline(never)]
pub(crate) fn route_out<'a>(
    route: &'a Route,
    id: &RouteName,
    group: u32,
    resolver: &mut Resolver<'a>,
    out: &mut RouteOut,
    candidates: &mut Candidates,
    paths: &mut String,
) {
    let from = candidates.len();
    out.rejections.clear();
    out.rules_kept = 0;
    out.unresolved.clear();
    out.notes.clear();
    touch(route);
    let grpc = route.kind == RouteKind::Grpc;
    let scope = backends::Scope::of_group(group);
    let settings = resolver.settings();
    // The route's place in the candidates' list of routes, given at its first match: a route
    // with none is not in it.
    let mut route_id = None;
    for (r, rule) in route.rules.iter().enumerate() {
        let selection = resolver.select(scope, route, &rule.backends, |b, why| {
            out.unresolved
                .push(UnresolvedRef { field: format!("spec.rules[{r}].backendRefs[{b}]"), why: why.clone() })
        });
        let split_collapsed = selection.split_collapsed;
        match rule_target(route, r, rule, &selection, settings, candidates) {
            Err((field, message)) => out.rejections.push(rejection(route, field, message)),
            Ok((service, origin)) => {
                if split_collapsed {
                    out.notes.push(collapsed(route, r, resolver.service(service)));
                }
                let before = candidates.len();
                // The rule's matches share its service and keys, as ids.
                for (m, route_match) in rule.matches.iter().enumerate() {
                    match match_path(route_match, paths) {
                        Ok((path, rank, path_hash)) => {
                            // The listener block and hostname are given by `Candidates::place`.
                            let key = Candidate {
                                listener: 0,
                                host: 0,
                                fence: false,
                                grpc,
                                rank,
                                path_hash,
                                path: path.map_or((0, 0), |p| (p.start, p.end)),
                            };
                            let made = Made {
                                service,
                                origin,
                                route: *route_id.get_or_insert_with(|| candidates.route(id)),
                                rule: r as u32,
                                match_index: m as u32,
                            };
                            candidates.push_pending(key, made);
                        }
                        Err((field, message)) => out.rejections.push(rejection(
                            route,
                            format!("spec.rules[{r}].matches[{m}]{field}"),
                            message,
                        )),
                    }
                }
                if candidates.len() > before {
                    out.rules_kept += 1;
                }
            }
        }
    }
    out.matches = from..candidates.len();
}

/// A dropped rule or match of `route`. Out of line, as [`collapsed`]: the only uses of the
/// route's name in [`route_out`]'s loop, which the compiler otherwise decodes (its namespace
/// and name, compact strings) before the loop of every route, and keeps on the stack.
#[cold]
#[inline(never)]
fn rejection(route: &Route, field: String, message: String) -> Rejection {
    Rejection { object: super::object_name(route), field, reason: Reason::UnsupportedValue, message }
}

/// The note for rule `r` of `route`, whose weighted backends collapsed onto `service`.
#[cold]
#[inline(never)]
fn collapsed(route: &Route, r: usize, service: &str) -> String {
    format!(
        "{} spec.rules[{r}]: weighted backends cannot be split by cloudflared; {service} takes all traffic",
        super::object_name(route),
    )
}

/// Reads first what the loop below reads first of each rule (the rule, its first backend's
/// name, its first path), each load independent of the others: the cache misses of a route
/// not read since the snapshot was made then overlap instead of coming one by one. Measured
/// at 10,000 routes: `route_out` takes about 30% less time, for about 60 instructions a route.
/// A string is read where its bytes are: its own last byte, which says whether it holds them
/// inline (a name or path of at most 24 bytes, most of them), or the first byte of its heap
/// buffer; not its length and start, which take a dozen instructions to decode.
fn touch(route: &Route) {
    let first_byte = |s: &Text| match s.is_heap_allocated() {
        true => s.as_bytes().first().map_or(0, |c| usize::from(*c)),
        false => 1,
    };
    let mut sum = 0usize;
    for rule in &route.rules {
        sum = sum.wrapping_add(usize::from(rule.extras.is_some()));
        if let Some(backend) = rule.backends.first() {
            sum = sum.wrapping_add(first_byte(&backend.name));
        }
        if let Some(RouteMatch::Http(m)) = rule.matches.first() {
            sum = sum.wrapping_add(first_byte(&m.path.value));
        }
    }
    std::hint::black_box(sum);
}

/// The hash [`super::order`] compares paths by (`order_tests` takes it from here).
pub(super) use crate::path::path_hash;

/// The service (its id among the resolver's services) and originRequest keys (their
/// [`Made::origin`], given by `candidates`) a rule renders, or the field that makes it
/// inexpressible.
fn rule_target(
    route: &Route,
    r: usize,
    rule: &RouteRule,
    selection: &backends::Selection<'_>,
    settings: &Settings,
    candidates: &mut Candidates,
) -> Result<(u32, u32), (String, String)> {
    // Most rules have no extras: nothing to refuse there, no Host header to write.
    let host_header = if rule.extras.is_some() { extras_host_header(r, rule)? } else { None };
    if let Some(b) = selection.filtered {
        return Err((
            format!("spec.rules[{r}].backendRefs[{b}].filters"),
            "backend filters cannot be expressed by cloudflared ingress rules; the rule is not rendered"
                .into(),
        ));
    }
    let grpc = route.kind == RouteKind::Grpc;
    let Some(origin) = selection.origin else {
        // gRPC clients read 503 as UNAVAILABLE.
        let status = if grpc { backends::UNAVAILABLE } else { backends::SERVER_ERROR };
        let keys = OriginRequest { http_host_header: host_header, ..OriginRequest::default() };
        return Ok((status, candidates.origin_request(keys)));
    };
    if host_header.is_none() && origin.server_name.is_none() && !grpc {
        // No key at all, the usual HTTP rule: no `OriginRequest` made to be found empty.
        return Ok((origin.url, crate::ingress::NO_ORIGIN));
    }
    let keys = OriginRequest {
        http_host_header: host_header,
        origin_server_name: origin.server_name.clone(),
        http2_origin: grpc,
        no_tls_verify: grpc && origin.server_name.is_none() && settings.grpc_no_tls_verify(),
    };
    Ok((origin.url, candidates.origin_request(keys)))
}

/// What a rule's extras ask of its target: the Host header a URLRewrite sets, or the field
/// that makes the rule inexpressible (an unsupported field, a filter other than a URLRewrite
/// of the hostname).
fn extras_host_header(r: usize, rule: &RouteRule) -> Result<Option<Arc<str>>, (String, String)> {
    if let Some(field) = rule.unsupported_fields().first() {
        return Err((
            format!("spec.rules[{r}].{field}"),
            format!("{field} cannot be enforced by cloudflared ingress rules; the rule is not rendered"),
        ));
    }
    let mut host_header = None;
    for (f, filter) in rule.filters().iter().enumerate() {
        let field = format!("spec.rules[{r}].filters[{f}]");
        match filter {
            Filter::UrlRewrite { hostname: Some(host), rewrites_path: false } => match Hostname::parse(host) {
                Ok(Hostname::Exact(host)) => host_header = Some(Arc::from(host)),
                Ok(Hostname::Wildcard(_)) => {
                    return Err((format!("{field}.urlRewrite.hostname"), "a rewritten hostname cannot be a wildcard".into()))
                }
                Err(e) => return Err((format!("{field}.urlRewrite.hostname"), e.to_string())),
            },
            Filter::UrlRewrite { rewrites_path: true, .. } => {
                return Err((
                    format!("{field}.urlRewrite.path"),
                    "cloudflared cannot rewrite paths (only the Host header, through httpHostHeader); the rule is not rendered".into(),
                ))
            }
            Filter::UrlRewrite { hostname: None, .. } => {}
            Filter::Other(kind) => {
                return Err((
                    field,
                    format!("filter {kind} cannot be expressed by cloudflared ingress rules; the rule is not rendered"),
                ))
            }
        }
    }
    Ok(host_header)
}

/// Where a match's rendered path is in the paths string (none: every path), its rank and its
/// [`path_hash`] (0 without a path).
type MatchPath = (Option<std::ops::Range<u32>>, PathRank, u64);

/// The path regex (pushed on `paths`) and rank of one match, or (field suffix, why) when it
/// cannot be expressed.
fn match_path(route_match: &RouteMatch, paths: &mut String) -> Result<MatchPath, (String, String)> {
    match route_match {
        RouteMatch::Http(m) => {
            unexpressible_http(m)?;
            http_path_append(&m.path, paths).map_err(|e| (".path".to_string(), e.to_string()))
        }
        RouteMatch::Grpc(m) => {
            if m.headers > 0 {
                return Err((".headers".into(), not_expressible("header")));
            }
            let path = grpc_path(m.method.as_ref()).map_err(|e| (".method".to_string(), e.to_string()))?;
            let rank = PathRank::grpc(m.method.as_ref(), path.as_deref());
            let hash = path.as_ref().map_or(0, path_hash);
            Ok((path.map(|p| SharedText::append(paths, &p)), rank, hash))
        }
    }
}

fn unexpressible_http(m: &HttpMatch) -> Result<(), (String, String)> {
    if m.headers > 0 {
        return Err((".headers".into(), not_expressible("header")));
    }
    if m.query_params > 0 {
        return Err((".queryParams".into(), not_expressible("query parameter")));
    }
    if let Some(method) = &m.method {
        return Err((".method".into(), not_expressible(&format!("method ({method})"))));
    }
    Ok(())
}

fn not_expressible(what: &str) -> String {
    format!(
        "cloudflared cannot match on {what}; the match is not rendered, because its path alone would \
         also catch requests it excludes"
    )
}
