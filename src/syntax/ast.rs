//! The spanned syntax tree of one `.lth` source. Nothing here knows about pest.

use crate::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct Module {
    pub uses: Vec<Use>,
    pub experiments: Vec<ExperimentBlock>,
    pub declarations: Vec<Declaration>,
}

/// `use std.models.resnet50` (one preset) or `use std.models` (all of a module).
#[derive(Clone, Debug)]
pub struct Use {
    pub path: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ExperimentBlock {
    pub keyword: Span,
    pub fields: Vec<Field>,
}

/// `[preset] <category> <name> = <base> { fields }`.
#[derive(Clone, Debug)]
pub struct Declaration {
    pub preset: bool,
    pub category: Ident,
    pub name: Ident,
    /// A built-in method or a preset.
    pub base: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Integer(i64),
    Float(f64),
    /// Written with `%`; the number as written (`72.9` for `72.9%`).
    Percent(f64),
    Str(String),
    List(Vec<Expr>),
    Range {
        start: i64,
        end: i64,
        inclusive: bool,
    },
    /// A bare word: a stage reference or an enumerated word, depending on the field's type.
    Name(String),
    Member {
        base: Box<Expr>,
        member: Ident,
    },
    /// `env("X")` has no receiver; `birds.test.sample(16)` has one.
    Call {
        receiver: Option<Box<Expr>>,
        function: Ident,
        args: Vec<Arg>,
    },
    /// `head { top = 3 }`: a reference with fields of its own.
    Configured {
        base: Box<Expr>,
        fields: Vec<Field>,
    },
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

impl Expr {
    /// A short description of what was written, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            ExprKind::Integer(n) => format!("the integer `{n}`"),
            ExprKind::Float(x) => format!("the number `{x}`"),
            ExprKind::Percent(p) => format!("the percentage `{p}%`"),
            ExprKind::Str(s) => format!("the string \"{s}\""),
            ExprKind::List(_) => "a list".to_owned(),
            ExprKind::Range { .. } => "a range".to_owned(),
            ExprKind::Name(n) => format!("`{n}`"),
            ExprKind::Member { member, .. } => format!("the member `.{}`", member.name),
            ExprKind::Call { function, .. } => format!("a call of `{}`", function.name),
            ExprKind::Configured { .. } => "a configured reference".to_owned(),
        }
    }
}
