//! Two `processor` processes electing a leader on the stand-in's Lease, the same points
//! written to both: exactly one leader scales; a killed leader is replaced within the lease
//! duration (+ a retry period) by a follower whose windows are warm; a terminated leader
//! releases the Lease and hands over at once. Timings: lease 3 s, renew deadline 2 s, retry
//! 0.5 s (`ha_support`).

mod ha_support;

use std::time::{Duration, Instant};

use ha_support::*;

/// The replica that says it leads, if exactly one does.
fn sole_leader<'a>(replicas: &'a [&'a Replica]) -> Option<&'a Replica> {
    let leaders: Vec<&Replica> = replicas
        .iter()
        .copied()
        .filter(|r| r.role().as_deref() == Some("leader"))
        .collect();
    match leaders.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

fn non_standby(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records
        .iter()
        .filter(|r| r["outcome"] != "standby")
        .collect()
}

#[test]
fn one_leader_scales_and_a_killed_leader_is_replaced_within_the_lease_duration_with_warm_windows() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let api = runtime.block_on(stand_in(&["replica-a", "replica-b"]));
    let dir = temp_dir("failover");
    let mut a = start_replica(&dir, &api, "replica-a");
    let mut b = start_replica(&dir, &api, "replica-b");
    // 250 requests/s in all: ceil(250 / 100) = 3 replicas.
    let feeder = Feeder::start(vec![a.addr, b.addr], 250);

    assert!(
        wait_for(Duration::from_secs(10), || sole_leader(&[&a, &b]).is_some()),
        "exactly one leader: a {:?}, b {:?}",
        a.ready(),
        b.ready()
    );
    assert!(
        wait_for(Duration::from_secs(20), || api
            .deployment_replicas("default", "app")
            == Some(3)),
        "the leader scales app to 3: {:?}\n{}\n{}",
        api.deployment_replicas("default", "app"),
        a.log_text(),
        b.log_text()
    );
    let leader_is_a = a.role().as_deref() == Some("leader");
    let (leader, follower) = if leader_is_a {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // The follower decided too, without a call: standby records wanting 3.
    let standby: Vec<serde_json::Value> = follower
        .decisions()
        .into_iter()
        .filter(|r| r["outcome"] == "standby")
        .collect();
    assert!(
        standby.iter().any(|r| r["desired"] == 3),
        "the follower's standby decisions: {standby:?}"
    );
    assert!(
        non_standby(&follower.decisions()).is_empty(),
        "a follower makes no other decision"
    );
    assert!(
        follower.metrics().contains("outcome=\"standby\""),
        "standby decisions are counted"
    );

    // Load rises to 450 (5 replicas) and the leader is killed at once.
    feeder.set_rps(450);
    let killed = Instant::now();
    leader.kill();
    assert!(
        wait_for(LEASE + RETRY * 4, || follower.role().as_deref()
            == Some("leader")),
        "the follower takes over: {:?}\n{}",
        follower.ready(),
        follower.log_text()
    );
    let takeover = killed.elapsed();
    println!("takeover after SIGKILL: {:.2} s", takeover.as_secs_f64());
    assert!(
        takeover <= LEASE + RETRY.mul_f64(1.2) + Duration::from_millis(500),
        "within the lease duration and a retry period: {takeover:?}"
    );
    assert!(
        wait_for(Duration::from_secs(20), || api
            .deployment_replicas("default", "app")
            == Some(5)),
        "the new leader scales to 5: {:?}\n{}",
        api.deployment_replicas("default", "app"),
        follower.log_text()
    );
    // The Deployment changes when the PUT is applied; the record is kept once the answer is
    // back in the task: wait for it.
    assert!(
        wait_for(Duration::from_secs(10), || !non_standby(
            &follower.decisions()
        )
        .is_empty()),
        "the new leader records its decision"
    );
    let records = follower.decisions();
    let first = non_standby(&records)
        .first()
        .map(|r| (*r).clone())
        .unwrap_or_default();
    // Its first decision as leader read the API (current 3, set by the old leader) and asked
    // for what the points it had seen say: windows warm, never an empty or restarted average.
    assert_eq!(
        first["current"], 3,
        "first decision after takeover: {first}"
    );
    let desired = first["desired"].as_i64().unwrap_or(0);
    assert!(
        (3..=5).contains(&desired),
        "from the 250 → 450 points it saw: {first}"
    );
    let average = first["inputs"]["fields"]["avg_requests_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (250.0..=450.0).contains(&average),
        "nothing double-counted (points reach each replica once): {first}"
    );
    drop(feeder);

    let log = api.requests();
    let (violations, writers) = writers_check(&log);
    assert!(
        violations.is_empty(),
        "scale writes by a replica that did not hold the lease: {violations:?}"
    );
    let leader_id = if leader_is_a {
        "replica-a"
    } else {
        "replica-b"
    };
    let switch = writers.iter().position(|w| w != leader_id);
    assert!(
        switch.is_some_and(|at| writers[at..].iter().all(|w| w != leader_id)),
        "the writers never interleave: {writers:?}"
    );
    a.kill();
    b.kill();
    runtime.block_on(api.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terminated_leader_releases_the_lease_and_hands_over_within_a_second() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let api = runtime.block_on(stand_in(&["replica-a", "replica-b"]));
    let dir = temp_dir("handover");
    let mut a = start_replica(&dir, &api, "replica-a");
    let mut b = start_replica(&dir, &api, "replica-b");
    let feeder = Feeder::start(vec![a.addr, b.addr], 250);
    assert!(
        wait_for(Duration::from_secs(10), || sole_leader(&[&a, &b]).is_some()),
        "exactly one leader"
    );
    let leader_is_a = a.role().as_deref() == Some("leader");
    let (leader, follower) = if leader_is_a {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let stopping = Instant::now();
    leader.signal_term();
    let took_over = wait_for(Duration::from_secs(5), || {
        follower.role().as_deref() == Some("leader")
    });
    let handover = stopping.elapsed();
    leader.wait_exit();
    let stopped = stopping.elapsed();
    assert!(
        took_over,
        "the follower takes over: {}",
        follower.log_text()
    );
    println!(
        "handover after SIGTERM: {:.3} s (the old leader's process took {:.3} s to exit)",
        handover.as_secs_f64(),
        stopped.as_secs_f64()
    );
    assert!(
        leader.log_text().contains("lease released"),
        "the leader released the lease: {}",
        leader.log_text()
    );
    assert!(
        handover < Duration::from_secs(1),
        "handover within a second of SIGTERM: {handover:?}"
    );
    drop(feeder);
    let (violations, _) = writers_check(&api.requests());
    assert!(violations.is_empty(), "{violations:?}");
    a.kill();
    b.kill();
    runtime.block_on(api.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
