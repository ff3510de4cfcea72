//! Properties of the tutorial pipeline over arbitrary arrivals: no panic, every aligned time
//! is emitted at most once and in increasing order, and a sum never exceeds the sum of the
//! largest rate each series could contribute.

use std::collections::BTreeMap;

use processor::line_protocol::{Precision, parse_body};
use processor::pipeline::{Effect, Graph, Settings};
use processor::tick::{VarOverrides, compile};
use proptest::prelude::*;

const SCRIPT: &str = r#"
stream
    |from()
        .measurement('requests')
        .groupBy('host', 'deployment')
        .truncate(1s)
    |derivative('counter')
        .as('rps')
        .unit(1s)
        .nonNegative()
    |groupBy('deployment')
    |sum('rps')
        .as('total')
    |influxDBOut().database('out')
"#;

const S: i64 = 1_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn aligned_times_are_emitted_once_in_order(
        writes in proptest::collection::vec(
            (0u8..4, 0i64..40, 0u32..1000, 0i64..3_000_000_000, prop::bool::ANY),
            1..120,
        )
    ) {
        let pipeline = compile(SCRIPT, &VarOverrides::new()).unwrap();
        let mut graph = Graph::new("p", &pipeline, Settings::default()).unwrap();
        let mut effects = Vec::new();
        let mut now = 0i64;
        let mut max_counter: BTreeMap<u8, u32> = BTreeMap::new();
        for (host, second, counter, advance, tick) in writes {
            now += advance;
            let entry = max_counter.entry(host).or_default();
            *entry = (*entry).max(counter);
            let body = format!(
                "requests,deployment=app,host=h{host} counter={counter} {}",
                second * S + 17
            );
            let parsed = parse_body(body.into_bytes(), "db".into(), "rp".into(), Precision::Nanoseconds, now);
            graph.write(parsed.batch.points(), now, &mut effects);
            if tick {
                graph.tick(now, &mut effects);
            }
        }
        graph.tick(now + 3600 * S, &mut effects);
        let mut last = None;
        // a rate is at most the largest counter value over one second
        let bound: f64 = max_counter.values().map(|c| f64::from(*c)).sum();
        for effect in effects {
            if let Effect::Write { line, .. } = effect {
                let mut parts = line.rsplitn(2, ' ');
                let time: i64 = parts.next().unwrap().parse().unwrap();
                let value: f64 = parts.next().unwrap().rsplit('=').next().unwrap().parse().unwrap();
                prop_assert!(last.is_none_or(|l| time > l), "time {time} after {last:?}");
                prop_assert!(value <= bound + 1e-9, "sum {value} above {bound}");
                prop_assert!(value >= 0.0);
                last = Some(time);
            }
        }
    }
}
