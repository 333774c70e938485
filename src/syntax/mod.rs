//! Text to syntax tree. pest is used only inside this folder.

pub mod ast;
mod parser;

pub use parser::{parse, parse_value};
