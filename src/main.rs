//! The `caseguard` binary: everything lives in the library (`src/cli/`).

/// mimalloc instead of glibc's malloc: glibc gives each thread that
/// allocates its own arena (up to eight per core) and keeps freed
/// argon2id buffers inside them, which is what took the server's resident
/// memory to half a gigabyte under load (docs/PERFORMANCE.md, "Memory").
/// mimalloc returns freed pages to the system and keeps its per-thread
/// heaps small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    caseguard::run_cli()
}
