//! The `processor` binary. Not ready yet: it says so and exits non-zero rather than pretend to work.

fn main() -> std::process::ExitCode {
    eprintln!("processor: not implemented yet");
    std::process::ExitCode::from(69) // EX_UNAVAILABLE
}
