//! What the server knows about one open document: the checker's diagnostics, the syntax tree when
//! the text parses, and the program the checker resolved, kept even when it has errors.

use crate::check::{self, Program};
use crate::diagnostic::Diagnostic;
use crate::kinds::{Category, Method};
use crate::source::{Origin, SourceId, Sources};
use crate::stdlib;
use crate::syntax::ast::{Declaration, Module};
use std::path::Path;

pub struct Analysis {
    pub text: String,
    pub sources: Sources,
    pub root: SourceId,
    pub module: Option<Module>,
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Where a preset is declared: in the document, or in a stdlib module.
pub struct PresetSite<'a> {
    pub declaration: &'a Declaration,
    /// `Some(module)` for a stdlib preset.
    pub module: Option<&'static str>,
}

impl Analysis {
    pub fn new(path: &Path, text: &str) -> Analysis {
        let mut sources = Sources::default();
        let root = sources.add(Origin::File(path.to_path_buf()), path.display().to_string(), text.to_owned());
        let module = crate::syntax::parse(root, text).ok();
        let (program, diagnostics) = check::check_keeping_program(&mut sources, root);
        Analysis { text: text.to_owned(), sources, root, module, program, diagnostics }
    }

    pub fn declaration(&self, name: &str) -> Option<&Declaration> {
        self.module.as_ref()?.declarations.iter().find(|d| !d.preset && d.name.name == name)
    }

    /// The preset `name` of `category` visible in the document: its own, then imported ones.
    pub fn preset(&self, name: &str, category: Category) -> Option<PresetSite<'_>> {
        let module = self.module.as_ref()?;
        if let Some(d) = module.declarations.iter().find(|d| d.preset && d.name.name == name && d.category.name == category.name()) {
            return Some(PresetSite { declaration: d, module: None });
        }
        self.imported_presets().into_iter().find(|p| p.declaration.name.name == name && p.declaration.category.name == category.name())
    }

    /// Every preset the document's `use` items bring into scope.
    pub fn imported_presets(&self) -> Vec<PresetSite<'static>> {
        let Some(module) = &self.module else { return Vec::new() };
        let mut out = Vec::new();
        for u in &module.uses {
            let path: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
            let [stdlib::ROOT, name, rest @ ..] = path.as_slice() else { continue };
            let Some(parsed) = stdlib_module(name) else { continue };
            for d in parsed.1.declarations.iter().filter(|d| d.preset && rest.first().is_none_or(|w| *w == d.name.name)) {
                out.push(PresetSite { declaration: d, module: Some(parsed.0) });
            }
        }
        out
    }

    /// The method a declaration rests on, through presets.
    pub fn method_of(&self, declaration: &Declaration) -> Option<&'static Method> {
        let category = Category::parse(&declaration.category.name)?;
        let mut base = declaration.base.name.as_str();
        let mut seen = vec![declaration.name.name.as_str()];
        for _ in 0..32 {
            match self.preset(base, category).filter(|p| !seen.contains(&p.declaration.name.name.as_str())) {
                Some(p) => {
                    seen.push(&p.declaration.name.name);
                    base = &p.declaration.base.name;
                }
                None => return category.method(base),
            }
        }
        None
    }
}

/// A stdlib module's name and parsed text, parsed once per process.
pub fn stdlib_module(name: &str) -> Option<(&'static str, &'static Module)> {
    use std::sync::OnceLock;
    static PARSED: OnceLock<Vec<(&'static str, &'static str, Module)>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        stdlib::MODULES.iter().map(|(n, text)| (*n, *text, crate::syntax::parse(SourceId(0), text).unwrap_or_default())).collect()
    });
    parsed.iter().find(|(n, _, _)| *n == name).map(|(n, _, m)| (*n, m))
}
