//! The `lifeline` binary: parse arguments, set up tracing, run the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = lifeline_cli::Cli::parse();
    lifeline_cli::init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lifeline_cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The blocking pool runs RocksDB work: each consumer's batch (one at a time per consumer)
/// and the API's longer reads. Tokio's default of 512 threads let a burst of requests
/// start one thread each: at 2,000 orders a second about seventy threads took turns on two
/// cores, and p99 was 75 ms. Four per core (at least eight) keeps every consumer and a few
/// reads going at once; more would only switch between them.
fn blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    (cores * 4).max(8)
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
