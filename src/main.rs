//! The `chatrace-relay` binary: parse arguments, set up logging, run a command.

use std::io::Write as _;
use std::process::ExitCode;

use argh::FromArgs;
use chatrace_relay::cli::{Cli, Command};
use chatrace_relay::systemd;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|arg| {
            arg.into_string().unwrap_or_else(|arg| {
                eprintln!("chatrace-relay: not UTF-8: {}", arg.to_string_lossy());
                std::process::exit(1)
            })
        })
        .collect();
    let (program, rest) = match args.split_first() {
        Some((first, rest)) => (first.as_str(), rest),
        None => ("chatrace-relay", &[][..]),
    };
    // argh has no --version of its own, and wants a subcommand: `chatrace-relay --version`
    // alone is answered here.
    if matches!(rest, [flag] if flag == "--version" || flag == "-V") {
        return print_version();
    }
    let cli = parse(program, rest);
    if cli.version {
        return print_version();
    }
    if prints_only(&cli.command) {
        die_quietly_on_closed_stdout();
    }
    let journal = systemd::is_journal(std::io::stderr());
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if journal {
        // journald stamps each line with its own time and reads the level from a syslog
        // prefix; a second timestamp and a level word would only be noise there.
        logger.format(|out, record| {
            writeln!(
                out,
                "<{}>{}",
                systemd::priority(record.level()),
                record.args()
            )
        });
    } else {
        logger.format_target(false);
    }
    logger.init();
    match chatrace_relay::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let prefix = if journal { "<3>" } else { "" };
            eprintln!("{prefix}chatrace-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_version() -> ExitCode {
    die_quietly_on_closed_stdout();
    println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}

/// `argh::from_env`, except that help goes out like any other printing command's output:
/// piped into `head`, it ends quietly instead of panicking on the closed pipe.
fn parse(program: &str, rest: &[String]) -> Cli {
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    Cli::from_args(&[name], &rest).unwrap_or_else(|early| match early.status {
        Ok(()) => {
            die_quietly_on_closed_stdout();
            println!("{}", early.output);
            std::process::exit(0)
        }
        Err(()) => {
            eprintln!("{}\nRun {name} --help for more information.", early.output);
            std::process::exit(1)
        }
    })
}

/// The commands that only read the database and print. The others talk over sockets and
/// keep Rust's default of ignoring SIGPIPE, where a peer that hangs up is an error to
/// handle, never the end of the process. Plain socket writes are safe either way (std
/// sends with MSG_NOSIGNAL; tiny_http's answers to clients that reset get EPIPE, as strace
/// shows), but rustls hands its records to `write_vectored`, and std's writev has no
/// MSG_NOSIGNAL: with SIGPIPE at its default, an https peer that resets could kill
/// `serve` (forwarding) or `send-test` and `check-token`.
fn prints_only(command: &Command) -> bool {
    match command {
        Command::Stats(_)
        | Command::Export(_)
        | Command::AdminToken(_)
        | Command::Replay(_)
        | Command::Backup(_) => true,
        Command::Serve(_)
        | Command::SendTest(_)
        | Command::CheckToken(_)
        | Command::CatchUp(_)
        | Command::InboxLogin(_) => false,
    }
}

/// Back to the Unix default for SIGPIPE, as in `cat` or `grep`: when the reader of stdout
/// is gone (`| head`), the process ends silently on its next write instead of getting
/// EPIPE, which `println!` turns into a panic with a backtrace hint.
fn die_quietly_on_closed_stdout() {
    // SAFETY: called before any other thread exists; it only changes the disposition of
    // one signal, which no code in this process handles.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
