//! The HTTP side of the fake: routing a request to discovery, LIST, WATCH, GET, POST, PUT or
//! a status PATCH, over the shared state.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{api_version, store, Key, Msg, Recorded, Shared, State, RESOURCES};

pub(super) async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut shutdown = shared.shutdown.subscribe();
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait_for(|down| *down) => {}
            }
        });
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(body.to_string());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(bytes).map_err(|never| match never {}).boxed())
        .expect("response")
}

fn status_error(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    full(code, &body)
}

/// What a path names.
struct Target {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type,
        body: body.clone(),
    });

    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(list) = discovery(&shared.lock(), &segments) {
        return list;
    }
    let Some(target) = parse_target(&shared.lock(), &segments) else {
        return status_error(StatusCode::NOT_FOUND, "NotFound", &format!("the server could not find {path}"));
    };
    let param =
        |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string));
    match (method, &target.name, target.status) {
        (Method::GET, None, _) if param("watch").as_deref() == Some("true") => {
            watch_events(shared, target, param("resourceVersion").unwrap_or_default())
        }
        (Method::GET, None, _) => list(&shared, &target, param("limit"), param("continue")).await,
        (Method::GET, Some(_), _) => match shared.lock().objects.get(&key(&target)) {
            Some(object) => full(StatusCode::OK, &served_as(object, &target)),
            None => status_error(StatusCode::NOT_FOUND, "NotFound", "not found"),
        },
        (Method::POST, None, false) => write(&shared, &target, body, true),
        (Method::PUT, Some(_), false) => write(&shared, &target, body, false),
        (Method::PATCH, Some(_), true) => patch_status(&shared, &target, &body),
        _ => status_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not supported by the fake"),
    }
}

fn discovery(state: &State, segments: &[&str]) -> Option<Response<Body>> {
    let (group, version) = match segments {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        ["apis"] => {
            return Some(full(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ))
        }
        _ => return None,
    };
    let group_version = api_version(group, version);
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|(g, kind, ..)| {
            *g == group && state.served.contains(&(group_version.clone(), kind.to_string()))
        })
        .map(|(_, kind, plural, namespaced, _)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced,
                   "kind": kind,
                   "verbs": ["create", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    if resources.is_empty() {
        return Some(status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    Some(full(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}),
    ))
}

fn parse_target(state: &State, segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some(name.to_string()), false),
        [plural, name, "status"] => (*plural, Some(name.to_string()), true),
        _ => return None,
    };
    let (_, kind, ..) = RESOURCES.iter().find(|(g, _, p, ..)| *g == group && *p == plural)?;
    if !state.served.contains(&(api_version(group, version), kind.to_string())) {
        return None;
    }
    Some(Target {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
        namespace,
        name,
        status,
    })
}

fn key(target: &Target) -> Key {
    (
        target.group.clone(),
        target.kind.clone(),
        target.namespace.clone().unwrap_or_default(),
        target.name.clone().unwrap_or_default(),
    )
}

/// The object as served at the requested version.
fn served_as(object: &Value, target: &Target) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(api_version(&target.group, &target.version));
    object
}

fn matches(target: &Target, group: &str, kind: &str, object: &Value) -> bool {
    group == target.group
        && kind == target.kind
        && target.namespace.as_deref().is_none_or(|ns| object["metadata"]["namespace"] == ns)
}

/// A LIST, in pages of `limit` items when asked (kube's watcher asks for 500). The continue
/// token is `<resourceVersion>-<offset>`: every page reports the first page's resourceVersion,
/// so the watch that follows replays what changed meanwhile; later pages are cut from the
/// current objects (an API server serves them from a snapshot at that resourceVersion).
async fn list(
    shared: &Shared,
    target: &Target,
    limit: Option<String>,
    token: Option<String>,
) -> Response<Body> {
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|held| !held.contains(&target.kind)).await;
    let state = shared.lock();
    let (rv, offset) = token
        .as_deref()
        .and_then(|t| t.split_once('-'))
        .and_then(|(rv, offset)| Some((rv.parse::<u64>().ok()?, offset.parse::<usize>().ok()?)))
        .unwrap_or((state.rv, 0));
    let limit = limit.and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let matching = state.objects.iter().filter(|((g, k, ..), o)| matches(target, g, k, o));
    let items: Vec<Value> =
        matching.clone().skip(offset).take(limit).map(|(_, o)| served_as(o, target)).collect();
    let remaining = matching.count().saturating_sub(offset + items.len());
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0 {
        metadata["continue"] = json!(format!("{rv}-{}", offset + items.len()));
        metadata["remainingItemCount"] = json!(remaining);
    }
    full(
        StatusCode::OK,
        &json!({"kind": format!("{}List", target.kind),
                "apiVersion": api_version(&target.group, &target.version),
                "metadata": metadata, "items": items}),
    )
}

fn event_line(kind_of_event: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": kind_of_event, "object": object})))
}

fn expired_line() -> Bytes {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version", "reason": "Expired", "code": 410});
    event_line("ERROR", &status)
}

fn watch_events(shared: Arc<Shared>, target: Target, from: String) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let mut expired = false;
    let subscription = {
        let mut state = shared.lock();
        match from.parse::<u64>() {
            // "Start at most recent": the current objects as ADDED, then changes.
            Err(_) | Ok(0) => {
                for ((g, k, ..), object) in &state.objects {
                    if matches(&target, g, k, object) {
                        first.push(event_line("ADDED", &served_as(object, &target)));
                    }
                }
            }
            Ok(rv) if rv < state.oldest => expired = true,
            Ok(rv) => {
                for change in state.history.iter().filter(|c| c.rv > rv) {
                    if matches(&target, &change.group, &change.kind, &change.object) {
                        first.push(event_line(change.kind_of_event, &served_as(&change.object, &target)));
                    }
                }
            }
        }
        let bookmark = json!({"kind": target.kind, "apiVersion": api_version(&target.group, &target.version),
                              "metadata": {"resourceVersion": state.rv.to_string()}});
        first.push(event_line("BOOKMARK", &bookmark));
        if !expired {
            *state.watching.entry(target.kind.clone()).or_default() += 1;
        }
        // Subscribed under the lock: no change falls between the replay and the live events.
        shared.events.subscribe()
    };
    tokio::spawn(async move {
        if expired {
            let _ = tx.send(Ok(Frame::data(expired_line()))).await;
            return;
        }
        let _watching = Watching { shared: shared.clone(), kind: target.kind.clone() };
        for line in first {
            if tx.send(Ok(Frame::data(line))).await.is_err() {
                return;
            }
        }
        let mut subscription = subscription;
        loop {
            let msg = tokio::select! {
                msg = subscription.recv() => msg,
                _ = tx.closed() => return,
            };
            let line = match msg {
                Ok(Msg::Change(c)) if matches(&target, &c.group, &c.kind, &c.object) => {
                    event_line(c.kind_of_event, &served_as(&c.object, &target))
                }
                Ok(Msg::Change(_)) => continue,
                Ok(Msg::Expire) => {
                    let _ = tx.send(Ok(Frame::data(expired_line()))).await;
                    return;
                }
                // A body error makes hyper abort the connection mid-stream.
                Ok(Msg::Drop) | Err(_) => {
                    let _ = tx.send(Err(std::io::Error::other("connection dropped by the test"))).await;
                    return;
                }
            };
            if tx.send(Ok(Frame::data(line))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(ChannelBody(rx).boxed())
        .expect("response")
}

/// Counts an open watch of a kind while it lives.
struct Watching {
    shared: Arc<Shared>,
    kind: String,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().watching.get_mut(&self.kind) {
            *n -= 1;
        }
    }
}

/// A streaming body fed by a channel.
struct ChannelBody(mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.get_mut().0.poll_recv(cx)
    }
}

/// POST (create) or PUT (replace, with the body's resourceVersion as a precondition).
fn write(shared: &Shared, target: &Target, mut body: Value, create: bool) -> Response<Body> {
    let mut state = shared.lock();
    if let Some(ns) = &target.namespace {
        body["metadata"]["namespace"] = json!(ns);
    }
    let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let key = (target.group.clone(), target.kind.clone(), target.namespace.clone().unwrap_or_default(), name);
    let old = state.objects.get(&key).cloned();
    match (&old, create) {
        (Some(_), true) => return status_error(StatusCode::CONFLICT, "AlreadyExists", "already exists"),
        (None, false) => return status_error(StatusCode::NOT_FOUND, "NotFound", "not found"),
        (Some(old), false) => {
            let precondition = &body["metadata"]["resourceVersion"];
            if !precondition.is_null() && *precondition != old["metadata"]["resourceVersion"] {
                return status_error(StatusCode::CONFLICT, "Conflict", "the object has been modified");
            }
        }
        (None, true) => {}
    }
    body["apiVersion"] = json!(api_version(&target.group, &target.version));
    body["kind"] = json!(target.kind);
    let event = if create { "ADDED" } else { "MODIFIED" };
    let stored = store(shared, &mut state, key, body, event);
    full(if create { StatusCode::CREATED } else { StatusCode::OK }, &served_as(&stored, target))
}

fn patch_status(shared: &Shared, target: &Target, body: &Value) -> Response<Body> {
    let mut state = shared.lock();
    let key = key(target);
    let Some(mut object) = state.objects.get(&key).cloned() else {
        return status_error(StatusCode::NOT_FOUND, "NotFound", "not found");
    };
    let precondition = &body["metadata"]["resourceVersion"];
    if state.conflicts > 0
        || (!precondition.is_null() && *precondition != object["metadata"]["resourceVersion"])
    {
        state.conflicts = state.conflicts.saturating_sub(1);
        return status_error(StatusCode::CONFLICT, "Conflict", "the object has been modified");
    }
    if let Some(status) = body.get("status") {
        merge_patch(&mut object["status"], status);
    }
    let stored = store(shared, &mut state, key, object, "MODIFIED");
    full(StatusCode::OK, &served_as(&stored, target))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("object");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}
