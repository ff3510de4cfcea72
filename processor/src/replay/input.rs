//! A replay's input: recorded line protocol (one or more files, in the order given) parsed into
//! points that keep their file and line, the lines that could not be used, and the order in
//! which the points are fed (the files' order, or by time with `--sort`). Pure: the caller
//! reads the files.

use std::fmt;

use crate::line_protocol::{Precision, parse_body_numbered};
use crate::point::{Batch, PointRef};

/// The largest input file read: a recording is held in memory whole while it is replayed.
pub const MAX_INPUT_FILE: u64 = 4 << 30;

/// One input file's bytes and the name its messages use.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as given (messages read `NAME:LINE: ...`).
    pub name: String,
    pub text: Vec<u8>,
}

/// Where a point or a bad line is: the file's name and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Input that is not replayed: a line that is not line protocol, a line without a timestamp,
/// or points InfluxDB 1.x would not store (a `time` tag or field). InfluxDB skips such lines
/// and reports them; so does the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    /// `None` for points dropped after parsing (InfluxDB does not say which lines either).
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

struct File {
    name: String,
    batch: Batch,
    /// The line of each point of `batch`.
    lines: Vec<usize>,
}

/// The parsed input, ready to be fed (see [`Recording::parse`]).
pub struct Recording {
    files: Vec<File>,
    /// (file, point) in feeding order.
    order: Vec<(usize, usize)>,
    skipped: Vec<Skipped>,
}

/// The time a line without a timestamp is given while parsing: no 1.x timestamp can equal it
/// after truncation (it is far below any real time yet cannot overflow when truncated to an
/// hour), so such lines are found and skipped.
const NO_TIMESTAMP: i64 = i64::MIN / 2;

impl Recording {
    /// Parses `sources` as written to `db`.`rp` with timestamps in `precision`. Points are fed
    /// in the files' order (one file after the other), or, with `sort`, by time (a stable
    /// sort: points of equal time keep their order), for files recorded one per pod.
    pub fn parse(
        sources: Vec<Source>,
        db: &str,
        rp: &str,
        precision: Precision,
        sort: bool,
    ) -> Recording {
        let missing = precision.truncate(NO_TIMESTAMP);
        let mut files = Vec::with_capacity(sources.len());
        let mut skipped = Vec::new();
        let mut order = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            let (parsed, lines) = parse_body_numbered(
                source.text,
                db.to_owned(),
                rp.to_owned(),
                precision,
                NO_TIMESTAMP,
            );
            let mut bad: Vec<Skipped> = parsed
                .errors
                .iter()
                .map(|error| Skipped {
                    file: source.name.clone(),
                    line: Some(error.line_number),
                    reason: error.to_string(),
                })
                .collect();
            for (point, p) in parsed.batch.points().enumerate() {
                if p.time() == missing {
                    bad.push(Skipped {
                        file: source.name.clone(),
                        line: lines.get(point).copied(),
                        reason: "no timestamp: a replayed point needs its time".to_owned(),
                    });
                } else {
                    order.push((index, point));
                }
            }
            bad.sort_by_key(|s| s.line);
            skipped.extend(bad);
            if let Some(dropped) = &parsed.dropped {
                skipped.push(Skipped {
                    file: source.name.clone(),
                    line: None,
                    reason: format!("{} points not stored: {}", dropped.count, dropped.reason),
                });
            }
            files.push(File {
                name: source.name,
                batch: parsed.batch,
                lines,
            });
        }
        let mut recording = Recording {
            files,
            order,
            skipped,
        };
        if sort {
            let mut order = std::mem::take(&mut recording.order);
            order.sort_by_key(|&(file, point)| recording.time_of(file, point));
            recording.order = order;
        }
        recording
    }

    fn time_of(&self, file: usize, point: usize) -> i64 {
        self.point(file, point).map_or(i64::MIN, |p| p.time())
    }

    fn point(&self, file: usize, point: usize) -> Option<PointRef<'_>> {
        self.files.get(file).and_then(|f| f.batch.point(point))
    }

    /// The lines not replayed, file by file, in line order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// How many points are fed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no point is fed.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The points in feeding order, each with its index in that order.
    pub(super) fn points(&self) -> impl Iterator<Item = PointRef<'_>> {
        self.order
            .iter()
            .filter_map(|&(file, point)| self.point(file, point))
    }

    /// The file and line of the `index`-th point fed.
    pub fn place(&self, index: usize) -> Option<Place> {
        let &(file, point) = self.order.get(index)?;
        let file = self.files.get(file)?;
        Some(Place {
            file: file.name.clone(),
            line: file.lines.get(point).copied()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> Source {
        Source {
            name: name.to_owned(),
            text: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn bad_lines_and_lines_without_a_time_are_skipped_with_their_place() {
        let recording = Recording::parse(
            vec![
                source("a.lp", "m v=1 1\nm v= 2\nm v=3\n# note\nm v=4 4\n"),
                source("b.lp", "m,time=x v=1 5\nm v=6 6\n"),
            ],
            "db",
            "rp",
            Precision::Nanoseconds,
            false,
        );
        let skipped: Vec<String> = recording.skipped().iter().map(|s| s.to_string()).collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(
            skipped[0].starts_with("a.lp:2: unable to parse 'm v= 2'"),
            "{skipped:?}"
        );
        assert_eq!(
            skipped[1],
            "a.lp:3: no timestamp: a replayed point needs its time"
        );
        assert!(
            skipped[2].starts_with("b.lp: 1 points not stored"),
            "{skipped:?}"
        );
        let times: Vec<i64> = recording.points().map(|p| p.time()).collect();
        assert_eq!(times, vec![1, 4, 6]);
        assert_eq!(recording.place(1).unwrap().to_string(), "a.lp:5");
        assert_eq!(recording.place(2).unwrap().to_string(), "b.lp:2");
        assert_eq!(recording.place(3), None);
    }

    #[test]
    fn sorting_merges_files_by_time_and_keeps_ties_in_order() {
        let recording = Recording::parse(
            vec![
                source("a.lp", "m,p=a v=1 10\nm,p=a v=2 20\nm,p=a v=3 30\n"),
                source("b.lp", "m,p=b v=1 10\nm,p=b v=2 25\n"),
            ],
            "db",
            "rp",
            Precision::Seconds,
            true,
        );
        let fed: Vec<(String, i64)> = recording
            .points()
            .map(|p| {
                (
                    p.tag("p").unwrap_or_default().to_owned(),
                    p.time() / 1_000_000_000,
                )
            })
            .collect();
        let expected = [("a", 10), ("b", 10), ("a", 20), ("b", 25), ("a", 30)];
        assert_eq!(
            fed,
            expected.map(|(p, t)| (p.to_owned(), t)).to_vec(),
            "merged by time"
        );
        assert_eq!(recording.place(3).unwrap().to_string(), "b.lp:2");
    }
}
