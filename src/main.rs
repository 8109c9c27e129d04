//! The `caseguard` binary: everything lives in the library (`src/cli/`).

fn main() -> std::process::ExitCode {
    caseguard::run_cli()
}
