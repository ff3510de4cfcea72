//! Exit codes as sysexits.h names them, and clap's opening of every `main`.

use std::process::ExitCode;

/// Bad flags or a bad configuration (`EX_USAGE`).
pub const USAGE: u8 = 64;
/// A service it needs cannot be reached or a resource cannot be had: an address in use, an API
/// server down (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;

/// Parses the flags of `args` (the program name first): help and version are printed and exit
/// 0, an error is printed and exits [`USAGE`]; `Err` holds that exit code.
pub fn parse_flags<P: clap::Parser>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<P, ExitCode> {
    match P::try_parse_from(args) {
        Ok(parsed) => Ok(parsed),
        Err(error) => {
            let _ = error.print();
            Err(if error.use_stderr() {
                ExitCode::from(USAGE)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "t", version)]
    struct Flags {
        #[arg(long)]
        count: u32,
    }

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn flags_parse_and_bad_ones_exit_64_and_help_exits_0() {
        let flags: Flags = parse_flags(args(&["t", "--count", "3"])).unwrap();
        assert_eq!(flags.count, 3);
        let bad = parse_flags::<Flags>(args(&["t", "--count", "x"])).unwrap_err();
        assert_eq!(bad, ExitCode::from(USAGE));
        let help = parse_flags::<Flags>(args(&["t", "--help"])).unwrap_err();
        assert_eq!(help, ExitCode::SUCCESS);
    }
}
