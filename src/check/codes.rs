//! Diagnostic codes of the checker. Each has a snapshot test under tests/diagnostics/.

pub const UNKNOWN_MODULE: &str = "lth::check::unknown_module";
pub const UNKNOWN_NAME: &str = "lth::check::unknown_name";
pub const UNKNOWN_METHOD: &str = "lth::check::unknown_method";
pub const UNKNOWN_FIELD: &str = "lth::check::unknown_field";
pub const UNKNOWN_WORD: &str = "lth::check::unknown_word";
pub const UNKNOWN_MEMBER: &str = "lth::check::unknown_member";
pub const UNKNOWN_FUNCTION: &str = "lth::check::unknown_function";
pub const DUPLICATE_NAME: &str = "lth::check::duplicate_name";
pub const DUPLICATE_FIELD: &str = "lth::check::duplicate_field";
pub const MISSING_FIELD: &str = "lth::check::missing_field";
pub const TYPE_MISMATCH: &str = "lth::check::type_mismatch";
pub const OUT_OF_RANGE: &str = "lth::check::out_of_range";
pub const BAD_ARGUMENT: &str = "lth::check::bad_argument";
pub const ENV_UNSET: &str = "lth::check::env_unset";
pub const MISSING_PATH: &str = "lth::check::missing_path";
pub const CYCLE: &str = "lth::check::cycle";
pub const UNKNOWN_LAYER: &str = "lth::check::unknown_layer";
pub const LAYER_NOT_CONVOLUTIONAL: &str = "lth::check::layer_not_convolutional";
pub const NO_CONCEPT_LABELS: &str = "lth::check::no_concept_labels";
pub const SPARSITY_UNREACHED: &str = "lth::check::sparsity_unreached";
pub const TCAV_BEFORE_HEAD: &str = "lth::check::tcav_before_head";
pub const MIXED_SERIES: &str = "lth::check::mixed_series";
pub const RESERVED_FLAG: &str = "lth::check::reserved_flag";
pub const SITE_SETTINGS: &str = "lth::check::site_settings";
