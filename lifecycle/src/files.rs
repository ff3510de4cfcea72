//! Reading the files a binary is pointed at (configs, scripts, tokens, certificates) with a
//! bound: a path that leads to an endless device (`/dev/zero`, a FIFO) or a huge file is an
//! error naming the limit, not a process that reads until memory runs out.

use std::io::Read;
use std::path::Path;

/// Reads at most `limit` bytes of `path`; a longer file is an error of kind
/// [`std::io::ErrorKind::FileTooLarge`] that names the limit.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`], as UTF-8 text (invalid UTF-8 is an error of kind `InvalidData`).
pub fn read_text_capped(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_within_the_limit_is_read_whole_and_a_longer_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("lifecycle-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_text_capped(&path, 10).unwrap(), "0123456789");
        let error = read_capped(&path, 9).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(error.to_string().contains("larger than 9 bytes"), "{error}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let error = read_text_capped(&path, 10).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(dir).ok();
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_is_refused_not_read_forever() {
        let error = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
    }
}
