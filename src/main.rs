//! The `chatrace-relay` binary: parse arguments, set up logging, run a command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: chatrace_relay::cli::Cli = argh::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    match chatrace_relay::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chatrace-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
