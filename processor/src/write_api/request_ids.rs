//! Request ids shaped like InfluxDB's (`Request-Id`, `X-Request-Id`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Request ids shaped like InfluxDB's (a version-1 UUID: time, clock sequence, node).
pub(super) struct RequestIds {
    node: u64,
    sequence: AtomicU64,
}

impl RequestIds {
    pub(super) fn new() -> Self {
        let pid = u64::from(std::process::id());
        let seed = crate::clock::wall_ns().unsigned_abs();
        // A locally administered, multicast-flagged node id, as RFC 4122 asks of random nodes.
        let node = ((seed ^ (pid << 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF)
            | 0x0100_0000_0000;
        Self {
            node,
            sequence: AtomicU64::new(seed),
        }
    }

    pub(super) fn next(&self, now_ns: i64) -> String {
        // 100-ns intervals since 1582-10-15, plus a sequence so ids in one tick differ.
        const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let ticks = (now_ns.max(0) as u64 / 100)
            .wrapping_add(GREGORIAN_OFFSET)
            .wrapping_add(sequence & 0xFF);
        let time_low = ticks & 0xFFFF_FFFF;
        let time_mid = (ticks >> 32) & 0xFFFF;
        let time_high = ((ticks >> 48) & 0x0FFF) | 0x1000;
        let clock_seq = ((sequence >> 8) & 0x3FFF) | 0x8000;
        format!(
            "{time_low:08x}-{time_mid:04x}-{time_high:04x}-{clock_seq:04x}-{:012x}",
            self.node
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_1_uuids_and_differ() {
        let ids = RequestIds::new();
        let (a, b) = (
            ids.next(1_700_000_000_000_000_000),
            ids.next(1_700_000_000_000_000_000),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'1', "{a}");
    }
}
