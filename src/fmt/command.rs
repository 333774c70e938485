//! `lthlang fmt [--check] FILE...`: rewrites files in place, or with `--check` only says which
//! differ. `-` formats standard input to standard output.

use crate::app::{EXIT_INPUT, EXIT_OK, EXIT_USAGE};
use crate::diagnostic::Style;
use crate::report::console;
use crate::source::{Origin, Sources};
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub fn run(files: &[PathBuf], check: bool, style: Style) -> u8 {
    let mut worst = EXIT_OK;
    let mut differ = 0;
    for file in files {
        let stdin = file.as_os_str() == "-";
        let text = if stdin {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(file)
        };
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                console::error_line(&format!("cannot read `{}`: {e}", file.display()));
                worst = worst.max(EXIT_USAGE);
                continue;
            }
        };
        let Some(formatted) = format_one(file, &text, style) else {
            worst = worst.max(EXIT_INPUT);
            continue;
        };
        if stdin {
            console::output(&formatted);
        } else if formatted != text {
            differ += 1;
            if check {
                console::output(&format!("{}\n", file.display()));
                worst = worst.max(EXIT_INPUT);
            } else if let Err(e) = write_atomically(file, &formatted) {
                console::error_line(&format!("cannot write `{}`: {e}", file.display()));
                worst = worst.max(EXIT_USAGE);
            }
        }
    }
    if check && differ > 0 {
        console::status(&format!("{differ} file(s) not in the canonical layout; `lthlang fmt` rewrites them"));
    }
    worst
}

/// The formatted text, or None after printing why there is none.
fn format_one(file: &Path, text: &str, style: Style) -> Option<String> {
    let mut sources = Sources::default();
    let id = sources.add(Origin::File(file.to_path_buf()), file.display().to_string(), text);
    match super::format(id, text) {
        Ok(formatted) => Some(formatted),
        Err(super::Error::Syntax(diagnostics)) => {
            console::diagnostics(&diagnostics, &sources, style);
            console::status(&format!("{}: not formatted (syntax error)", file.display()));
            None
        }
        Err(super::Error::Internal(why)) => {
            console::error_line(&format!(
                "{}: not formatted: {why}. This is a bug in `lthlang fmt`; the file is unchanged",
                file.display()
            ));
            None
        }
    }
}

/// Writes through a temporary file beside the target, so an interrupted write cannot leave
/// half a file behind.
fn write_atomically(file: &Path, text: &str) -> std::io::Result<()> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = file.with_file_name(format!(".{name}.fmt-{}", std::process::id()));
    std::fs::write(&temporary, text)?;
    if let Ok(metadata) = std::fs::metadata(file) {
        let _ = std::fs::set_permissions(&temporary, metadata.permissions());
    }
    std::fs::rename(&temporary, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
