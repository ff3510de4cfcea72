//! Splitting a body into lines as InfluxDB 1.x's `scanLine` does, and keeping the valid UTF-8
//! lines of a body that is not UTF-8 as a whole.

use super::{LineError, Reason, influx1};

/// The lines of `body` as 1.x's `scanLine` splits it: (1-based line number, offset of the line
/// in `body`, line), with leading whitespace removed and blank and comment lines skipped.
pub(super) fn lines(body: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut rest = body;
    let mut rest_offset = 0;
    let mut next_number = 1;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (end, inner_newlines) = line_end(rest.as_bytes());
            let block = rest.get(..end).unwrap_or_default();
            let block_offset = rest_offset;
            rest = rest.get(end + 1..).unwrap_or_default();
            rest_offset += end + 1;
            let number = next_number;
            next_number += 1 + inner_newlines;
            let line = block.trim_start_matches([' ', '\t', '\0']);
            if !line.is_empty() && !line.starts_with('#') {
                return Some((number, block_offset + (block.len() - line.len()), line));
            }
        }
        None
    })
}

/// 1.x's `scanLine` on bytes: the index of the newline that ends the first line, and how many
/// newlines (inside quoted strings) the line holds.
pub(super) fn line_end(buf: &[u8]) -> (usize, usize) {
    // Fast path: up to the first newline there is no quote (so nothing is quoted) and the newline
    // is not escaped (no backslash just before it): that newline ends the line.
    let first_newline = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let block = buf.get(..first_newline).unwrap_or_default();
    if !block.contains(&b'"') && block.last() != Some(&b'\\') {
        return (first_newline, 0);
    }
    let mut inner_newlines = 0;
    let (mut quoted, mut fields) = (false, false);
    let (mut equals, mut commas) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        if b == b'\\' && i + 2 < buf.len() {
            i += 2;
            continue;
        }
        if b == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && b == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && b == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if b == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if b == b'\n' {
            if !quoted {
                break;
            }
            inner_newlines += 1;
        }
        i += 1;
    }
    (i, inner_newlines)
}

/// The slow path for a body that is not UTF-8: every line that is not UTF-8 becomes an error,
/// the others are kept (copied into a new body).
pub(super) fn keep_utf8_lines(body: Vec<u8>, errors: &mut Vec<LineError>) -> String {
    let mut kept = String::with_capacity(body.len());
    let mut rest = body.as_slice();
    let mut next_number = 1;
    while !rest.is_empty() {
        let (end, inner_newlines) = line_end(rest);
        let block = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        let number = next_number;
        next_number += 1 + inner_newlines;
        if let Ok(text) = std::str::from_utf8(block) {
            kept.push_str(text);
            kept.push('\n');
            continue;
        }
        // Keep the line numbering of the lines after this one.
        kept.extend(std::iter::repeat_n('\n', 1 + inner_newlines));
        let start = block
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | 0))
            .unwrap_or(block.len());
        let line = block.get(start..).unwrap_or_default();
        if !line.is_empty() && !line.starts_with(b"#") {
            errors.push(LineError {
                line_number: number,
                line: String::from_utf8_lossy(line).into_owned(),
                reason: influx1::check(line).err().unwrap_or(Reason::InvalidUtf8),
            });
        }
    }
    kept
}
