//! The `caseguard` binary: everything lives in the library (`src/cli.rs`).

fn main() -> std::process::ExitCode {
    caseguard::cli::main()
}
