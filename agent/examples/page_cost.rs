//! Converts one exposition page to line protocol N times, for instruction counts that do not
//! depend on the machine's load:
//!
//! ```sh
//! cargo build --release -p agent --example page_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/page_cost ../shared/samples/node_exporter_metrics.txt stream 11
//! ```
//!
//! Modes: `stream` (what the agent does: `convert::convert_streaming`) and `whole`
//! (`prom::parse_bytes` then `convert::convert`). The cost of one page is the difference between
//! the counts of 11 and 1 iterations, divided by 10.

use agent::convert::{self, Mapping};
use agent::line_protocol::{self, Options};
use agent::prom::{self, Format, Streamed};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(mode)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: page_cost PAGE stream|whole [ITERATIONS]");
    };
    let iterations: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let page = std::fs::read(&path)?;
    let mapping = Mapping {
        metric_version: 1,
        ignore_timestamp: false,
    };
    let mut line = String::with_capacity(256);
    let mut total = 0;
    for _ in 0..iterations {
        let mut lines: Vec<Box<str>> = Vec::with_capacity(512);
        let mut emit = |metric: &mut agent::metric::Metric<'_>| {
            line.clear();
            if line_protocol::write_metric(&mut line, metric, Options::default()).is_ok() {
                lines.push(line.as_str().into());
            }
        };
        match mode.as_str() {
            "stream" => {
                let ended = convert::convert_streaming(&page, Format::Text, mapping, 1, &mut emit)?;
                anyhow::ensure!(ended == Streamed::Complete, "the page did not stream");
            }
            "whole" => {
                let families = prom::parse_bytes(&page, Format::Text)?;
                convert::convert(&families, Format::Text, mapping, 1, &mut emit);
            }
            other => anyhow::bail!("unknown mode {other:?}"),
        }
        total += lines.len();
    }
    println!("{total} lines");
    Ok(())
}
