//! A reader of the published state, whenever it looks, sees whole batches: every change of a
//! batch arrives with the batch's revision, none before it, none after.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::channel::mpsc;
use futures::stream;

use super::tests::{contents, route, service};
use super::*;

type Item = (Kind, Result<Event<DynamicObject>, watcher::Error>);
type Contents = Vec<(&'static str, String, String)>;

/// What the snapshot holds at each revision (index), as `contents` says it.
fn expected() -> Vec<Contents> {
    let c = |items: &[(&'static str, &str, &str)]| -> Contents {
        let mut all: Contents =
            items.iter().map(|(kind, key, value)| (*kind, key.to_string(), value.to_string())).collect();
        all.sort();
        all
    };
    vec![
        c(&[]),
        c(&[("HTTPRoute", "apps/web", ""), ("Service", "apps/web", "80")]),
        c(&[
            ("HTTPRoute", "apps/web", ""),
            ("Service", "apps/web", "80"),
            ("HTTPRoute", "apps/api", "api"),
            ("Service", "apps/api", "81"),
        ]),
        c(&[("HTTPRoute", "apps/api", "v2"), ("Service", "apps/api", "81")]),
        c(&[
            ("HTTPRoute", "apps/api", "v3"),
            ("HTTPRoute", "apps/new", "new"),
            ("Service", "apps/api", "81"),
            ("Service", "apps/new", "82"),
        ]),
    ]
}

/// The batches of events that make those revisions, each sent at once.
fn batches() -> Vec<Vec<Item>> {
    let svc = |name: &str, port: i32| service("apps", name, 1000 + port);
    let mut first: Vec<Item> = Kind::ALL.iter().map(|k| (*k, Ok(Event::Init))).collect();
    first.push((Kind::Service, Ok(Event::InitApply(svc("web", 80)))));
    first.push((Kind::HttpRoute, Ok(Event::InitApply(route("apps", "web", "/")))));
    first.extend(Kind::ALL.iter().map(|k| (*k, Ok(Event::InitDone))));
    vec![
        first,
        // A route and the Service it names.
        vec![
            (Kind::Service, Ok(Event::Apply(svc("api", 81)))),
            (Kind::HttpRoute, Ok(Event::Apply(route("apps", "api", "/api")))),
        ],
        vec![
            (Kind::HttpRoute, Ok(Event::Delete(route("apps", "web", "/")))),
            (Kind::Service, Ok(Event::Delete(svc("web", 80)))),
            (Kind::HttpRoute, Ok(Event::Apply(route("apps", "api", "/v2")))),
        ],
        // A re-list (swapped in whole) and another kind's change in the same batch.
        vec![
            (Kind::HttpRoute, Ok(Event::Init)),
            (Kind::HttpRoute, Ok(Event::InitApply(route("apps", "api", "/v3")))),
            (Kind::HttpRoute, Ok(Event::InitApply(route("apps", "new", "/new")))),
            (Kind::HttpRoute, Ok(Event::InitDone)),
            (Kind::Service, Ok(Event::Apply(svc("new", 82)))),
        ],
    ]
}

/// Notes what a look found wrong (the first few; the rest are counted).
fn note(wrong: &Mutex<(Vec<String>, usize)>, why: String) {
    let mut wrong = wrong.lock().unwrap();
    if wrong.0.len() < 6 {
        wrong.0.push(why);
    }
    wrong.1 += 1;
}

/// Checks one look at the published state; what was wrong, if anything.
fn check(state: &SourceState, expected: &[Contents]) -> Option<String> {
    if !state.synced {
        return None;
    }
    let seen = contents(&state.snapshot);
    let want = expected.get(state.revision as usize)?;
    (seen != *want).then(|| format!("revision {} holds {seen:?}, published as {want:?}", state.revision))
}

#[tokio::test]
async fn a_reader_never_sees_a_batch_half_applied() {
    let expected = expected();
    let (tx, mut rx) = watch::channel(SourceState::default());
    let wrong = Arc::new(Mutex::new((Vec::<String>::new(), 0usize)));

    // A reader that looks whenever the source takes the next event of a batch (the moments
    // between two events applied), as a pipeline woken by a timer or another input would.
    let (batches_tx, batches_rx) = mpsc::unbounded::<Vec<Item>>();
    let (probe, probe_wrong, probe_expected) = (rx.clone(), wrong.clone(), expected.clone());
    let events = batches_rx.flat_map(stream::iter).inspect(move |_| {
        if let Some(why) = check(&probe.borrow(), &probe_expected) {
            note(&probe_wrong, format!("between events: {why}"));
        }
    });
    let mut streams: SelectAll<KindEvents> = SelectAll::new();
    streams.push(events.boxed());

    // And one that looks all the time, from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let (spinner, spin_wrong, spin_stop, spin_expected) =
        (rx.clone(), wrong.clone(), stop.clone(), expected.clone());
    let looker = std::thread::spawn(move || {
        let mut looks = 0u64;
        while !spin_stop.load(Ordering::Relaxed) {
            if let Some(why) = check(&spinner.borrow(), &spin_expected) {
                note(&spin_wrong, format!("any time: {why}"));
            }
            looks += 1;
        }
        looks
    });

    // Never asked to discover (every kind is watched by the test's stream).
    let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let opts = KubeSourceOptions { discovery_interval: Duration::from_secs(3600), ..Default::default() };
    let task = tokio::spawn(run(client, opts, Store::default(), streams, tx));

    for (n, batch) in batches().into_iter().enumerate() {
        batches_tx.unbounded_send(batch).unwrap();
        let revision = n as u64 + 1;
        let published =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.revision >= revision))
                .await
                .expect("the batch is published")
                .unwrap()
                .clone();
        assert_eq!(published.revision, revision, "one revision per batch");
        assert_eq!(contents(&published.snapshot), expected[n + 1], "revision {revision}");
    }
    stop.store(true, Ordering::Relaxed);
    let looks = looker.join().unwrap();
    task.abort();
    let (examples, count) = &*wrong.lock().unwrap();
    assert_eq!(
        *count,
        0,
        "a reader saw a batch half applied ({looks} looks from a thread):\n{}",
        examples.join("\n")
    );
}
