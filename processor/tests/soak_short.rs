//! The soak command (`processor/examples/soak.rs`) at a small size, so it cannot rot: the real
//! processor binary with the tutorial's task, writers on loopback, the silence after them.

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

#[test]
fn a_short_soak_delivers_every_batch_and_the_state_is_freed_after_the_silence() {
    let options = soak::Options {
        pods: 100,
        metrics: 2,
        minutes: 0.2,
        batch: 50,
        writers: 2,
        state_expiry_secs: 3,
        silence_secs: 40,
        processor: env!("CARGO_BIN_EXE_processor").into(),
    };
    let figures = soak::run(&options).expect("the soak runs");
    println!("{}", figures.render());
    assert_eq!(figures.series, 200);
    assert_eq!(figures.failed_requests, 0, "{}", figures.render());
    // 12 s of one point per second per series, give or take the last second.
    assert!(figures.points >= 200 * 11, "{}", figures.render());
    assert!(figures.rss_steady_kib > 0 && figures.cpu_seconds > 0.0);
    // The binary's allocator (jemalloc) reports what the program holds and what is resident.
    let (allocated, resident) = figures
        .allocator_at_load_end
        .expect("processor_allocator_* on /metrics");
    assert!(allocated > 0 && resident > 0, "{}", figures.render());
    assert!(figures.allocator_after_silence.is_some());
    assert_eq!(
        figures.cardinality_after_silence,
        0,
        "every node's state is freed after the silence: {}",
        figures.render()
    );
}
