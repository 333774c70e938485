//! The standard library: `.lth` modules compiled into the binary, so presets work from any folder
//! and `check` diagnoses them like user files.

/// `(module name, source)`, as `use std.<module>` names them.
pub const MODULES: &[(&str, &str)] = &[
    ("datasets", include_str!("../stdlib/datasets.lth")),
    ("models", include_str!("../stdlib/models.lth")),
    ("schedules", include_str!("../stdlib/schedules.lth")),
    ("explainers", include_str!("../stdlib/explainers.lth")),
];

pub fn module(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// The prefix of every stdlib path in `use`.
pub const ROOT: &str = "std";
