//! The short human summary `render` writes to stderr.

use std::fmt::Write;

use routes_core::ingress::SourceRef;
use routes_core::render::Rendered;
use routes_core::translate::Translation;
use routes_core::validate::Finding;

use crate::cli::Prepared;

pub fn render_summary(prepared: &Prepared, translation: &Translation, rendered: &Rendered) -> String {
    let mut out = String::new();
    let (mut routes, mut fences) = (0, 0);
    for rule in &translation.rules {
        match rule.source() {
            SourceRef::Route { .. } => routes += 1,
            SourceRef::ListenerFence { .. } => fences += 1,
            SourceRef::CatchAll => {}
        }
    }
    let gateways = translation.statuses.gateways.len();
    let _ = writeln!(
        out,
        "cloudflared-routes: {} ingress rules ({routes} from routes, {fences} listener fences, {} from the base config or catch-all) for {gateways} Gateway{}",
        rendered.rule_count,
        rendered.rule_count - routes - fences,
        if gateways == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "routes: {} accepted, {} rejected",
        translation.routes_accepted, translation.routes_rejected
    );
    if gateways == 0 && prepared.settings.gateways.is_empty() {
        let _ = writeln!(
            out,
            "warning: no Gateway of a GatewayClass with controllerName {:?} was found",
            prepared.settings.controller_name
        );
    }
    section(&mut out, "not rendered:", translation.rejections.iter().map(ToString::to_string));
    section(
        &mut out,
        "backends not resolved (a rule left with none answers http_status:500, or 503 for gRPC):",
        translation.unresolved_backends.iter().map(ToString::to_string),
    );
    section(
        &mut out,
        "unreachable, left out (an earlier rule serves all their traffic):",
        translation.unreachable(),
    );
    section(&mut out, "notes:", translation.notes.iter().cloned());
    for warning in prepared.loaded.warnings.iter().chain(&rendered.warnings) {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

fn section(out: &mut String, title: &str, lines: impl Iterator<Item = String>) {
    let mut lines = lines.peekable();
    if lines.peek().is_some() {
        let _ = writeln!(out, "{title}");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// A validation finding as cloudflared would word it.
pub fn finding(f: &Finding) -> String {
    match f.rule {
        Some(i) => format!("ingress[{i}]: {}", f.message),
        None => f.message.clone(),
    }
}

pub fn findings(fs: &[Finding]) -> String {
    fs.iter().map(finding).collect::<Vec<_>>().join("\n")
}
