//! The `infinity-matrix` binary: parses the command line and hands over to `cli::run`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = infinity_matrix::cli::Cli::parse();
    match infinity_matrix::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infinity-matrix: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
