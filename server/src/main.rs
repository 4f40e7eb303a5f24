//! The `infinity-matrix` binary: parses the command line and hands over to `cli::run`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Editors start `infinity-matrix lsp` on every launch: that exact command line skips
    // building the whole command-line parser (a measurable part of cold start).
    let mut args = std::env::args_os().skip(1);
    let cli = match (args.next(), args.next()) {
        (Some(first), None) if first == "lsp" => infinity_matrix::cli::Cli {
            command: infinity_matrix::cli::Command::Lsp,
        },
        _ => infinity_matrix::cli::Cli::parse(),
    };
    match infinity_matrix::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infinity-matrix: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
