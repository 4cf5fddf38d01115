//! The binary's edge: arguments, logging, exit codes. Everything else lives in the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, built without transparent huge pages (`no_thp`): see benches/README.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    fix_thread_count();
    let args = cli::Args::parse();
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", report(&error));
            ExitCode::from(cli::exit_code(&error))
        }
    }
}

/// The error and each cause, once. The library's errors name their cause in their own
/// message, so a log line or an MCP error reads whole, and hand it on as `source()` as well:
/// printing the whole chain said "No such file or directory" twice.
fn report(error: &anyhow::Error) -> String {
    let mut out = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

/// candle asks for its thread count on every matrix product and, unless `RAYON_NUM_THREADS` is
/// set, works it out again from /proc each time: measured 3 to 5 ms of a two-word query's
/// 11 ms. Setting the variable once, to the count rayon's pool uses anyway, makes that a
/// lookup. An explicit setting is left alone.
fn fix_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: first thing in main: no other thread exists yet to read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}
