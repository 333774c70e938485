use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = lthlang::cli::Cli::parse();
    ExitCode::from(lthlang::app::run(&cli))
}
