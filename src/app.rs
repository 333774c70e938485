//! Carries out one command line. Returns the process exit code: 0 clean (warnings allowed),
//! 1 problems in the input, 2 usage.

use crate::check::{self, Program};
use crate::cli::{Cli, Colour, Command, GraphFormat};
use crate::diagnostic::{summary, Style};
use crate::plan;
use crate::report::console;
use crate::source::Sources;
use std::io::IsTerminal as _;
use std::path::Path;

pub const EXIT_OK: u8 = 0;
pub const EXIT_INPUT: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn run(cli: &Cli) -> u8 {
    let style = style(cli.colour);
    match &cli.command {
        Command::Check { files } => {
            let mut worst = EXIT_OK;
            for file in files {
                let code = match load(file, style) {
                    Ok((_, _, checked)) => {
                        let status = if checked.has_errors() { "failed" } else { "ok" };
                        console::status(&format!("{}: {status} ({})", file.display(), summary(&checked.diagnostics)));
                        if checked.has_errors() { EXIT_INPUT } else { EXIT_OK }
                    }
                    Err(code) => code,
                };
                worst = worst.max(code);
            }
            worst
        }
        Command::Plan { file, json } => with_program(file, style, |program| {
            let plan = plan::plan(program);
            if *json {
                let text = serde_json::to_string_pretty(&plan.nodes).unwrap_or_default();
                console::output(&format!("{text}\n"));
            } else {
                console::output(&plan::to_table(&plan));
            }
        }),
        Command::Graph { file, format } => with_program(file, style, |program| {
            let plan = plan::plan(program);
            console::output(&match format {
                GraphFormat::Dot => plan::to_dot(&plan),
                GraphFormat::Mermaid => plan::to_mermaid(&plan),
            });
        }),
    }
}

fn style(colour: Colour) -> Style {
    let colour = match colour {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let width = if colour { 100 } else { Style::PLAIN.width };
    Style { colour, width }
}

/// Reads and checks a file, printing its diagnostics. Err carries the exit code of a file that
/// could not be read.
fn load(file: &Path, style: Style) -> Result<(crate::source::SourceId, Sources, check::Checked), u8> {
    let mut sources = Sources::default();
    match check::check_path(&mut sources, file) {
        Ok((id, checked)) => {
            console::diagnostics(&checked.diagnostics, &sources, style);
            Ok((id, sources, checked))
        }
        Err(e) => {
            console::error_line(&format!("cannot read `{}`: {e}", file.display()));
            Err(EXIT_USAGE)
        }
    }
}

fn with_program(file: &Path, style: Style, body: impl FnOnce(&Program)) -> u8 {
    match load(file, style) {
        Ok((_, _, checked)) => match checked.program {
            Some(program) => {
                body(&program);
                EXIT_OK
            }
            None => {
                console::status(&format!("{}: failed ({})", file.display(), summary(&checked.diagnostics)));
                EXIT_INPUT
            }
        },
        Err(code) => code,
    }
}
