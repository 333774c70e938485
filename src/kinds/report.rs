//! `report` methods.

use super::{Category, FieldSpec, Method, Output, Ty};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::required("include", Ty::List(&Ty::Stage(&[Output::Comparison])), "the comparisons to show"),
    FieldSpec::cosmetic("title", Ty::Str, "\"\"", "heading of the report; empty uses the experiment's name"),
];

pub const METHODS: &[Method] = &[
    Method {
        category: Category::Report,
        name: "html",
        // 2: states the importance scale and marks unconverged PCBM fits.
        // 3: the fidelity table shows the chance range of ranking AUC and the ceiling.
        version: 3,
        output: Output::Report,
        fields: FIELDS,
        dataset: None,
        doc: "one self-contained HTML file with plots, tables and overlays",
    },
    Method {
        category: Category::Report,
        name: "json",
        version: 1,
        output: Output::Report,
        fields: FIELDS,
        dataset: None,
        doc: "every number of the report as JSON",
    },
];
