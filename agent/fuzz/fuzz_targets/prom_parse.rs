//! AFL++ target: every input is parsed in both formats; nothing may panic, and whatever parses
//! must render to text that parses back to the same families (text-format groups that hold no
//! sample, as Go's parser leaves them, have no text form and are exempt).

// The parser's own sources, so the instrumented build does not need the agent's dependencies.
#[allow(dead_code, unused_imports)]
#[path = "../../src/prom/mod.rs"]
mod prom;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        for format in [prom::Format::Text, prom::Format::OpenMetrics] {
            let Ok(families) = prom::parse_bytes(data, format) else {
                continue;
            };
            let empty_group = families
                .iter()
                .flat_map(|f| &f.metrics)
                .any(|m| m.series_count() == 0);
            if empty_group {
                continue;
            }
            let text = prom::render(&families, format);
            let again = match prom::parse(&text, format) {
                Ok(again) => again,
                Err(error) => panic!("rendered {format:?} does not parse: {error}\n{text}"),
            };
            assert_eq!(format!("{again:?}"), format!("{families:?}"), "{text}");
        }
    });
}
