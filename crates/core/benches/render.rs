//! Render benchmark: 100, 1,000 and 10,000 HTTPRoutes (4 rules each, mixed hostnames and path
//! types) through translate + render, against serialising the already-built rule list alone.
//!
//! `cargo bench -p cloudflared-routes-core --bench render` (release profile). Each figure is
//! the median of several runs on one thread; the numbers in the README come from here.
//!
//! Environment: `BENCH_SIZES=1000,10000` (the sizes), `BENCH_RUNS=11` (runs per figure),
//! `BENCH_BREAKDOWN=1` (also time translate, render and the drop apart), `BENCH_MALLOC=default`
//! (leave glibc's heap policy unpinned: [`pin_allocator`]), `BENCH_PROFILE=translate` (only
//! translate and drop, `BENCH_RUNS` times per size, for a profiler: no table),
//! `BENCH_SHUFFLE=1` (the routes stored in a shuffled order, the same every run: see
//! [`shuffled`]), `BENCH_SHUFFLE=list` (the routes made in the order a cluster lists them:
//! see [`made_in_list_order`]), `BENCH_GRPC=1|listener|conflict` (one GRPCRoute more, on a
//! hostname of its own, on a listener of its own, or conflicting with 2,500 HTTPRoutes: see
//! [`with_a_grpc_route`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use routes_core::build::*;
use routes_core::model::Snapshot;
use routes_core::render::{render, render_rules, BaseConfig, Tunnel};
use routes_core::translate::{translate, Settings, DEFAULT_CONTROLLER_NAME};

fn snapshot(routes: usize, list_order: bool) -> Snapshot {
    let mut s = Snapshot::default().with_class(gateway_class("cf", DEFAULT_CONTROLLER_NAME)).with_gateway(
        gateway("infra", "gw", "cf")
            .listener(listener("apps").hostname("*.apps.example.com").from_all())
            .listener(listener("api").hostname("api.example.com").from_all())
            .listener(listener("any").from_all()),
    );
    for ns in 0..10 {
        let ns = format!("team-{ns}");
        for svc in 0..10 {
            s = s.with_service(service(&ns, &format!("svc-{svc}")).port(8080));
        }
    }
    let mut order: Vec<usize> = (0..routes).collect();
    if list_order {
        made_in_list_order(&mut order);
    }
    for i in order {
        let (ns, name) = namespace_and_name(i);
        let host = match i % 4 {
            0 => format!("app-{i}.apps.example.com"),
            1 => "api.example.com".to_string(),
            2 => format!("*.team-{}.apps.example.com", i % 10),
            _ => format!("site-{i}.example.org"),
        };
        let backend = |k: usize| format!("svc-{}", (i + k) % 10);
        let route = http_route(&ns, &name)
            .parent("infra", "gw")
            .hostname(&host)
            .created(i as i64)
            .rule(rule().exact(&format!("/r{i}/exact")).backend(&backend(0), 8080))
            .rule(rule().prefix(&format!("/r{i}/prefix")).backend(&backend(1), 8080))
            .rule(rule().regex(&format!("/r{i}/v[0-9]+/.*")).backend(&backend(2), 8080))
            .rule(rule().prefix(&format!("/r{i}")).backend(&backend(3), 8080));
        s = s.with_route(route);
    }
    s
}

/// `routes` in a shuffled order (Fisher-Yates, a fixed xorshift seed: the same order every
/// run). The snapshot's routes are made oldest first, so translation, which walks them oldest
/// first, reads them in the order they are in memory, each after the one before. A snapshot
/// read from manifest files holds them in file order, one from a cluster in the order the API
/// server listed them (by namespace and name), and creation time follows neither: this is that
/// case.
fn shuffled<T>(routes: &mut [T]) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..routes.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        routes.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// The routes' numbers (oldest first) in the order a cluster lists the routes: by namespace,
/// then name (`team-0/route-0`, `team-0/route-10`, `team-0/route-100`, ...). The `run` command
/// converts each object as the list brings it, so a snapshot read from a cluster holds each
/// route's rules, names, hostnames, paths and backend names in that order in memory, not only
/// its `Route` struct (as [`shuffled`] leaves them); translation walks them oldest first, and
/// creation time follows no name order.
fn made_in_list_order(order: &mut [usize]) {
    order.sort_by_cached_key(|&i| namespace_and_name(i));
}

/// The namespace and name of the route made `i`-th.
fn namespace_and_name(i: usize) -> (String, String) {
    (format!("team-{}", i % 10), format!("route-{i}"))
}

/// Reads every input value translation reads (each name, hostname, path and backend once),
/// and nothing else: the cost of touching the snapshot, which is spread over many small heap
/// objects, as a floor under any translation of it.
fn read_input(snapshot: &Snapshot) -> usize {
    use routes_core::model::RouteMatch;
    let mut sum = 0;
    for route in &snapshot.routes {
        sum += route.meta.namespace.len() + route.meta.name.len() + route.meta.created.unwrap_or(0) as usize;
        sum += route
            .parent_refs
            .iter()
            .map(|p| p.name.len() + p.namespace.as_deref().map_or(0, str::len))
            .sum::<usize>();
        sum += route.hostnames.iter().map(|h| h.as_bytes()[0] as usize).sum::<usize>();
        for rule in &route.rules {
            for m in &rule.matches {
                if let RouteMatch::Http(m) = m {
                    sum += m.path.value.as_bytes()[0] as usize;
                }
            }
            sum += rule
                .backends
                .iter()
                .map(|b| b.name.as_bytes()[0] as usize + b.port.unwrap_or(0) as usize)
                .sum::<usize>();
        }
    }
    sum
}

/// `BENCH_BREAKDOWN=1`: the medians of the three parts of a translate + render, one after
/// the other in each run: the translation, the rendering of it, and dropping the translation.
fn breakdown(runs: usize, snapshot: &Snapshot, settings: &Settings, base: &BaseConfig, tunnel: &Tunnel) {
    let (mut translating, mut rendering, mut dropping) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        let translation = black_box(translate(snapshot, settings));
        let translated = Instant::now();
        let rendered = black_box(render(&translation, base, tunnel));
        let rendered_at = Instant::now();
        drop(translation);
        let dropped = Instant::now();
        drop(rendered);
        translating.push(translated - start);
        rendering.push(rendered_at - translated);
        dropping.push(dropped - rendered_at);
    }
    println!(
        "{:>8} translate {:.2?}, render {:.2?}, drop of the translation {:.2?} (medians)",
        "",
        median(translating),
        median(rendering),
        median(dropping)
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

/// Pins glibc's heap policy for the whole run: freed memory stays in the heap (no trimming),
/// and blocks under 32 MiB come from it (no fresh mapping for each large vector). By default
/// glibc moves both thresholds with the sizes of the blocks freed, so whether a build's pattern
/// of frees crosses them decides whether every iteration gives some 18 MB back to the kernel
/// and page-faults it in again (12,000 faults, tens of milliseconds on this VM): two builds
/// doing the same work then differ by that, not by their work. Pinned, both timed operations
/// pay no faults in the steady state. `BENCH_MALLOC=default` leaves glibc's policy as it is.
/// (`run` sets its own policy, for memory: `src/run/memory.rs`.)
fn pin_allocator() {
    if std::env::var("BENCH_MALLOC").is_ok_and(|v| v == "default") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // <malloc.h>
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt takes no pointer; it is called first thing in main, before any
        // other thread exists.
        unsafe {
            mallopt(M_TRIM_THRESHOLD, c_int::MAX);
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
        }
    }
}

/// One GRPCRoute more, stored last, with both kinds of route: the translation first asks which
/// routes have a hostname that a route of the other kind may serve too (conflicts, which the
/// older route wins; only those routes are checked, walked oldest first after the others).
/// `BENCH_GRPC=1`: the GRPCRoute is the oldest, on a hostname of its own; none may conflict, so
/// this measures that question, and routes no longer stored oldest first, on the same routes.
/// `listener`: the same without `hostnames`, attached by `sectionName` to a listener of its own
/// (`grpc.example.com`, added to the Gateway), as gRPC services often are: it serves that
/// listener's hostname only. `conflict`: the newest, on `api.example.com`, which a quarter of the
/// HTTPRoutes serve: those 2,500 and the GRPCRoute are checked, oldest first, and the GRPCRoute
/// is refused (`Conflicted`), so the rules are those of the HTTPRoutes alone.
fn with_a_grpc_route(snapshot: &mut Snapshot, how: &str) {
    let route = grpc_route("team-0", "grpc").rule(rule().grpc(Some("pkg.Svc"), None).backend("svc-0", 8080));
    let route = match how {
        "listener" => {
            snapshot.gateways[0].listeners.push(listener("grpc").hostname("grpc.example.com").from_all());
            route.parent_section("infra", "gw", "grpc").created(0)
        }
        "conflict" => {
            route.parent("infra", "gw").hostname("api.example.com").created(snapshot.routes.len() as i64)
        }
        "1" => route.parent("infra", "gw").hostname("grpc.example.com").created(0),
        _ => return,
    };
    snapshot.routes.push(route);
}

fn main() {
    pin_allocator();
    let settings =
        Settings { tunnel_id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), ..Settings::default() };
    let tunnel = Tunnel {
        id: settings.tunnel_id.clone(),
        credentials_file: Some("/etc/cloudflared/creds/credentials.json".into()),
    };
    let base = BaseConfig::default();
    println!(
        "{:>8} {:>8} {:>12} {:>14} {:>14} {:>7} {:>7} {:>11}",
        "routes", "rules", "bytes", "translate+render", "serialise only", "ratio", "paired", "read input"
    );
    // BENCH_SIZES=1000 (comma-separated) limits the sizes, e.g. for a profiler run.
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    for routes in sizes {
        let order = std::env::var("BENCH_SHUFFLE").unwrap_or_default();
        let mut snapshot = snapshot(routes, order == "list");
        if order == "1" {
            shuffled(&mut snapshot.routes);
        }
        if let Ok(how) = std::env::var("BENCH_GRPC") {
            with_a_grpc_route(&mut snapshot, &how);
        }
        let runs = std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(if routes >= 10_000 { 11 } else { 31 });
        if std::env::var("BENCH_PROFILE").is_ok_and(|v| v == "translate") {
            for _ in 0..runs {
                drop(black_box(translate(&snapshot, &settings)));
            }
            continue;
        }
        let translation = translate(&snapshot, &settings);
        let text = render(&translation, &base, &tunnel).text;
        if std::env::var("BENCH_BREAKDOWN").is_ok() {
            breakdown(runs, &snapshot, &settings, &base, &tunnel);
        }
        let full = time(runs, || render(&translate(&snapshot, &settings), &base, &tunnel));
        let serialise =
            time(runs, || render_rules(&translation.rules, translation.uses_grpc, &base, &tunnel));
        // The two timed back to back, run after run, and the median of their ratios: on a
        // machine whose speed drifts (a shared VM), each pair sees the same speed, where two
        // separate medians may not.
        let paired = {
            let mut ratios: Vec<f64> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    black_box(render(&translate(&snapshot, &settings), &base, &tunnel));
                    let full = start.elapsed();
                    let start = Instant::now();
                    black_box(render_rules(&translation.rules, translation.uses_grpc, &base, &tunnel));
                    full.as_secs_f64() / start.elapsed().as_secs_f64()
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        let read = median(
            (0..runs)
                .map(|_| {
                    // The caches as a render leaves them, as before each translation above.
                    black_box(render(&translate(&snapshot, &settings), &base, &tunnel));
                    let start = Instant::now();
                    black_box(read_input(&snapshot));
                    start.elapsed()
                })
                .collect(),
        );
        println!(
            "{:>8} {:>8} {:>12} {:>14.2?} {:>14.2?} {:>6.2}x {:>6.2}x {:>11.2?}",
            routes,
            translation.rules.len(),
            text.len(),
            full,
            serialise,
            full.as_secs_f64() / serialise.as_secs_f64(),
            paired,
            read
        );
    }
}
