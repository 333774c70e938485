//! Everything users see on the console goes through here.

pub mod console;
