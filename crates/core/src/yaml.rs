//! How YAML is read everywhere (manifests, the base config, rendered configs).
//!
//! serde-saphyr guards against hostile input with budgets whose defaults (250,000 nodes,
//! 1,024 documents) are below what real inputs reach: a rendered config of 10,000 routes has
//! some 300,000 nodes, and `kubectl get httproutes -A -o yaml` of a large cluster holds more
//! than that. cloudflared's own YAML reader has no such limits. The budget here still bounds
//! work and memory (about ten times the largest configuration we have measured), keeps the
//! nesting limit, and leaves alias limits at their defaults (the "billion laughs" guard).

/// Whether Go's yaml.v3 (cloudflared's reader) takes `c` anywhere in a file: tab, line feed,
/// carriage return, printable ASCII, U+0085, and U+00A0 on but for surrogates, U+FFFE and
/// U+FFFF. Any other character fails the whole file ("control characters are not allowed").
pub fn go_yaml_reads(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The text of the first YAML document of `text`: what Go's `yaml.NewDecoder(f).Decode`
/// reads, and so all of a config file cloudflared looks at. A document ends at a `...` line,
/// or at a `---` line after the document's content (or after its own `---`). These markers
/// are at the start of a line and followed by white space or the end of the line, and YAML
/// forbids such lines inside any scalar, so finding them needs no parsing.
pub fn first_document(text: &str) -> &str {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let (mut started, mut content) = (false, false);
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if marker(bare, "...") || (marker(bare, "---") && (started || content)) {
            return &text[..offset];
        }
        if marker(bare, "---") {
            started = true;
        } else {
            let trimmed = bare.trim_start();
            if !(trimmed.is_empty() || trimmed.starts_with('#') || (!started && bare.starts_with('%'))) {
                content = true;
            }
        }
        offset += line.len();
    }
    text
}

/// Options for `serde_saphyr::from_str_with_options` and friends.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 10_000_000,
            max_documents: 1_000_000,
            max_total_scalar_bytes: 512 * 1024 * 1024,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_document_is_what_a_go_decoder_reads() {
        for (text, first) in [
            ("a: 1\n", "a: 1\n"),
            ("a: 1\n---\nb: 2\n", "a: 1\n"),
            ("---\na: 1\n---\nb: 2\n", "---\na: 1\n"),
            ("# c\n---\na: 1\n--- \nb\n", "# c\n---\na: 1\n"),
            ("a: 1\n...\n", "a: 1\n"),
            ("%YAML 1.2\n---\na: 1\n", "%YAML 1.2\n---\na: 1\n"),
            // Not markers: indented, or followed by more than white space.
            ("a: |\n  ---\nb: ---x\n", "a: |\n  ---\nb: ---x\n"),
            ("a: 1\n----\n", "a: 1\n----\n"),
            ("--- a\n---\nb\n", "--- a\n"),
        ] {
            assert_eq!(super::first_document(text), first, "{text:?}");
        }
    }

    #[test]
    fn go_yaml_reads_what_yaml_v3_reads() {
        for c in
            ['\t', '\n', '\r', ' ', '~', '\u{85}', '\u{a0}', '\u{d7ff}', '\u{e000}', '\u{fffd}', '\u{10000}']
        {
            assert!(super::go_yaml_reads(c), "{c:?}");
        }
        for c in [
            '\0', '\u{b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{84}', '\u{86}', '\u{9f}', '\u{fffe}', '\u{ffff}',
        ] {
            assert!(!super::go_yaml_reads(c), "{c:?}");
        }
    }

    #[test]
    fn large_configs_and_exports_fit_the_budget() {
        // 40,000 rules (10,000 routes of 4 rules): about 280,000 nodes, above the default 250,000.
        let mut text = String::from("ingress:\n");
        for i in 0..40_000 {
            text.push_str(&format!(
                "  - hostname: h{i}.example.com\n    path: ^/p{i}$\n    service: http://s:80\n"
            ));
        }
        text.push_str("  - service: http_status:404\n");
        let value: serde_json::Value = serde_saphyr::from_str_with_options(&text, super::options()).unwrap();
        assert_eq!(value["ingress"].as_array().unwrap().len(), 40_001);
        // More documents than the default 1,024.
        let docs = "a: 1\n---\n".repeat(5_000);
        let values: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&docs, super::options()).unwrap();
        assert!(values.len() >= 5_000);
    }
}
