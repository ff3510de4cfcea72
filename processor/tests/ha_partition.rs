//! Two `processor` processes on the stand-in's Lease with faults on the API: a leader cut off
//! from the API (every request of its client answered 503) steps down by its renew deadline,
//! before its lease expires, and the other takes over after expiry; an API that flaps for
//! both never yields two writers. Timings: lease 3 s, renew deadline 2 s, retry 0.5 s.
//!
//! "Two writers" is checked from the stand-in's request log alone ([`writers_check`]): in
//! arrival order, after each successful Lease create/update by client X the holder of record is
//! X (only a replica acquiring or renewing writes the Lease); every `/scale` PUT or PATCH that
//! reached the stand-in's handler must come from the holder of record at its arrival.

mod ha_support;

use std::time::{Duration, Instant};

use ha_support::*;
use k8s_standin::Fault;

#[test]
fn a_partitioned_leader_steps_down_before_its_lease_expires_and_the_other_takes_over() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let api = runtime.block_on(stand_in(&["replica-a", "replica-b"]));
    let dir = temp_dir("partition");
    let mut a = start_replica(&dir, &api, "replica-a");
    let mut b = start_replica(&dir, &api, "replica-b");
    let feeder = Feeder::start(vec![a.addr, b.addr], 250);
    assert!(
        wait_for(Duration::from_secs(10), || {
            [&a, &b]
                .iter()
                .filter(|r| r.role().as_deref() == Some("leader"))
                .count()
                == 1
        }),
        "exactly one leader"
    );
    let leader_is_a = a.role().as_deref() == Some("leader");
    let (leader, follower) = if leader_is_a {
        (&a, &b)
    } else {
        (&b, &a)
    };
    // Cut the leader off: every request of its client answers 503.
    let cut = Fault::status(503).always().user(&leader.identity);
    let partitioned = Instant::now();
    api.inject(cut.clone());
    // Its last successful renew was at most one retry period before the cut.
    let stepped_down = wait_for(RENEW_DEADLINE + Duration::from_secs(1), || {
        leader.role().as_deref() == Some("follower")
    });
    let step_down = partitioned.elapsed();
    println!("partitioned leader stepped down after {:.2} s", step_down.as_secs_f64());
    assert!(stepped_down, "{}", leader.log_text());
    assert!(
        step_down <= RENEW_DEADLINE + Duration::from_millis(300),
        "no later than renew-deadline after the last renew: {step_down:?}"
    );
    assert!(
        follower.role().as_deref() == Some("follower") || step_down < LEASE,
        "stepped down before the lease could expire"
    );
    assert!(
        wait_for(LEASE + Duration::from_secs(2), || follower.role().as_deref()
            == Some("leader")),
        "the other takes over after expiry: {}",
        follower.log_text()
    );
    let took_over = partitioned.elapsed();
    println!("the other took over after {:.2} s", took_over.as_secs_f64());
    assert!(took_over >= LEASE - RETRY, "not before the lease expired: {took_over:?}");
    api.clear_faults_matching(&cut.matching);
    // The healed replica stays a follower.
    std::thread::sleep(RETRY * 3);
    assert_eq!(leader.role().as_deref(), Some("follower"));
    drop(feeder);
    let (violations, _) = writers_check(&api.requests());
    assert!(violations.is_empty(), "{violations:?}");
    a.kill();
    b.kill();
    runtime.block_on(api.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_api_flapping_for_both_replicas_never_yields_two_writers() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let api = runtime.block_on(stand_in(&["replica-a", "replica-b"]));
    let dir = temp_dir("flapping");
    let mut a = start_replica(&dir, &api, "replica-a");
    let mut b = start_replica(&dir, &api, "replica-b");
    let feeder = Feeder::start(vec![a.addr, b.addr], 250);
    assert!(wait_for(Duration::from_secs(10), || {
        a.role().as_deref() == Some("leader") || b.role().as_deref() == Some("leader")
    }));
    // For 20 s: each replica's requests fail (503, or delayed past the renew deadline) on and
    // off, independently, a few hundred ms at a time; the load moves so scaling happens.
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = Instant::now();
    let mut second = 0;
    while start.elapsed() < Duration::from_secs(20) {
        for identity in ["replica-a", "replica-b"] {
            let fault = match next() % 4 {
                0 => Some(Fault::status(503).user(identity)),
                1 => Some(Fault::delay(RENEW_DEADLINE + Duration::from_millis(200)).user(identity)),
                _ => None,
            };
            if let Some(fault) = fault {
                let lasting = Duration::from_millis(200 + next() % 400);
                api.inject(fault.lasting(lasting));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        if start.elapsed().as_secs() / 5 != second {
            second = start.elapsed().as_secs() / 5;
            feeder.set_rps(if second % 2 == 0 { 250 } else { 550 });
        }
    }
    api.clear_faults();
    drop(feeder);
    let log = api.requests();
    let (violations, writers) = writers_check(&log);
    let faulted = log.iter().filter(|r| r.fault_injected).count();
    println!(
        "flapping: {} requests, {faulted} faulted, {} scale writes by {:?}",
        log.len(),
        writers.len(),
        {
            let mut w = writers.clone();
            w.dedup();
            w
        }
    );
    assert!(faulted > 0, "the faults reached the replicas");
    assert!(
        violations.is_empty(),
        "scale writes by a replica that was not the holder of record: {violations:?}"
    );
    a.kill();
    b.kill();
    runtime.block_on(api.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
