//! The per-output metric buffer: a ring of serialised lines that drops the **oldest** when
//! full and counts what it dropped (Telegraf's memory buffer).
//!
//! A write takes a batch from the front; if the write fails the batch goes back to the front,
//! ahead of anything that arrived meanwhile, so order is preserved; only what no longer fits is
//! dropped, oldest first.
//!
//! A scrape's lines are first [`Staged`]: they reach the buffer only once the whole page has
//! parsed (nothing of a failed scrape is emitted), and since only the newest `limit` of them
//! could stay in the buffer, the stage keeps only those, counting the older ones as dropped as
//! it goes. A scrape bigger than the buffer costs the buffer's memory, not the page's.

use std::collections::VecDeque;

/// One serialised metric: a line of line protocol ending in `\n`.
pub type Line = Box<str>;

/// A bounded FIFO of lines.
#[derive(Debug)]
pub struct Buffer {
    lines: VecDeque<Line>,
    limit: usize,
    dropped_total: u64,
    dropped_unreported: u64,
}

/// Lines taken for one write, oldest first.
#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<Line>,
}

impl Batch {
    /// The write body: the lines concatenated.
    pub fn body(&self) -> String {
        let mut body = String::with_capacity(self.lines.iter().map(|l| l.len()).sum());
        for line in &self.lines {
            body.push_str(line);
        }
        body
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

impl Buffer {
    /// A buffer of at most `limit` lines (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            lines: VecDeque::with_capacity(limit.min(1024)),
            limit,
            dropped_total: 0,
            dropped_unreported: 0,
        }
    }

    /// Appends a line, dropping the oldest one if the buffer is full.
    pub fn push(&mut self, line: Line) {
        if self.lines.len() == self.limit {
            self.lines.pop_front();
            self.count_drops(1);
        }
        self.lines.push_back(line);
    }

    /// Removes up to `max` of the oldest lines for a write.
    pub fn take_batch(&mut self, max: usize) -> Batch {
        let n = max.min(self.lines.len());
        Batch {
            lines: self.lines.drain(..n).collect(),
        }
    }

    /// Puts a batch whose write failed back at the front. If lines arrived meanwhile and
    /// everything no longer fits, the oldest are dropped.
    pub fn restore(&mut self, batch: Batch) {
        for line in batch.lines.into_iter().rev() {
            self.lines.push_front(line);
        }
        let excess = self.lines.len().saturating_sub(self.limit);
        if excess > 0 {
            self.lines.drain(..excess);
            self.count_drops(excess as u64);
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The most lines it holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Lines dropped since the buffer was made.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Lines dropped since the last call (for the "buffer overflow" warning).
    pub fn take_unreported_drops(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_unreported)
    }

    fn count_drops(&mut self, n: u64) {
        self.dropped_total += n;
        self.dropped_unreported += n;
    }
}

/// The lines of one scrape for one buffer, not yet in it: the newest `limit`, the older ones
/// counted as dropped.
#[derive(Debug)]
pub struct Staged {
    lines: VecDeque<Line>,
    limit: usize,
    dropped: u64,
}

impl Staged {
    /// A stage for a buffer of `limit` lines (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            limit: limit.max(1),
            dropped: 0,
        }
    }

    /// Adds a line, dropping (and counting) the oldest staged one if the stage is full.
    pub fn push(&mut self, line: Line) {
        if self.lines.len() == self.limit {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    /// Forgets everything staged (a scrape that failed), without counting it as dropped.
    pub fn discard(&mut self) {
        self.lines.clear();
        self.dropped = 0;
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

impl Buffer {
    /// Appends everything staged, oldest first, as if each line had been pushed: the lines the
    /// stage already dropped and those the full buffer drops now are counted. Leaves the stage
    /// empty.
    pub fn commit(&mut self, staged: &mut Staged) {
        let dropped = std::mem::take(&mut staged.dropped);
        if dropped > 0 {
            self.count_drops(dropped);
        }
        for line in staged.lines.drain(..) {
            self.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> Vec<Line> {
        range.map(|i| format!("m v={i} {i}\n").into()).collect()
    }

    fn contents(buffer: &mut Buffer) -> Vec<String> {
        buffer
            .take_batch(usize::MAX)
            .lines
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_it() {
        let mut buffer = Buffer::new(3);
        for line in lines(0..5) {
            buffer.push(line);
        }
        assert_eq!(buffer.dropped_total(), 2);
        assert_eq!(buffer.take_unreported_drops(), 2);
        assert_eq!(buffer.take_unreported_drops(), 0);
        let expected: Vec<String> = lines(2..5).into_iter().map(String::from).collect();
        assert_eq!(contents(&mut buffer), expected);
    }

    #[test]
    fn a_scrape_bigger_than_the_buffer_keeps_the_newest_and_counts_every_drop() {
        // Three lines already buffered, then a scrape of seven into a buffer of four: the four
        // newest of the scrape stay; the scrape's three oldest and the three buffered are
        // dropped, exactly as pushing the seven one by one would.
        let mut pushed = Buffer::new(4);
        let mut committed = Buffer::new(4);
        for line in lines(0..3) {
            pushed.push(line.clone());
            committed.push(line);
        }
        let mut staged = Staged::new(4);
        for line in lines(3..10) {
            pushed.push(line.clone());
            staged.push(line);
        }
        assert_eq!(staged.len(), 4);
        committed.commit(&mut staged);
        assert!(staged.is_empty());
        assert_eq!(committed.dropped_total(), 6);
        assert_eq!(committed.take_unreported_drops(), 6);
        assert_eq!(pushed.dropped_total(), committed.dropped_total());
        let expected: Vec<String> = lines(6..10).into_iter().map(String::from).collect();
        assert_eq!(contents(&mut committed), expected);
        assert_eq!(contents(&mut pushed), expected);
    }

    #[test]
    fn a_discarded_stage_leaves_the_buffer_and_its_counts_alone() {
        let mut buffer = Buffer::new(2);
        buffer.push("old\n".into());
        let mut staged = Staged::new(2);
        for line in lines(0..5) {
            staged.push(line);
        }
        staged.discard();
        buffer.commit(&mut staged);
        assert_eq!(buffer.dropped_total(), 0);
        assert_eq!(contents(&mut buffer), ["old\n"]);
    }

    #[test]
    fn batches_come_oldest_first() {
        let mut buffer = Buffer::new(10);
        for line in lines(0..5) {
            buffer.push(line);
        }
        let batch = buffer.take_batch(2);
        assert_eq!(batch.body(), "m v=0 0\nm v=1 1\n");
        assert_eq!(buffer.len(), 3);
    }

    #[test]
    fn a_failed_batch_goes_back_in_front_of_newer_lines() {
        let mut buffer = Buffer::new(10);
        for line in lines(0..4) {
            buffer.push(line);
        }
        let batch = buffer.take_batch(3);
        for line in lines(4..6) {
            buffer.push(line);
        }
        buffer.restore(batch);
        let expected: Vec<String> = lines(0..6).into_iter().map(String::from).collect();
        assert_eq!(contents(&mut buffer), expected);
        assert_eq!(buffer.dropped_total(), 0);
    }

    #[test]
    fn restoring_into_a_refilled_buffer_drops_the_oldest() {
        let mut buffer = Buffer::new(4);
        for line in lines(0..4) {
            buffer.push(line);
        }
        let batch = buffer.take_batch(2);
        for line in lines(4..6) {
            buffer.push(line);
        }
        // 0 and 1 go back in front of 2..6: six lines for four places, the two oldest dropped.
        buffer.restore(batch);
        assert_eq!(buffer.dropped_total(), 2);
        let expected: Vec<String> = lines(2..6).into_iter().map(String::from).collect();
        assert_eq!(contents(&mut buffer), expected);
    }
}
