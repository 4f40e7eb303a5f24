//! Code analysis: tree-sitter languages, parsing, symbols, scopes, imports and identifiers.
//!
//! Everything here works on plain text (bytes) and tree-sitter trees and knows
//! nothing about LSP. Positions are byte offsets plus `(line, byte column)`
//! points, exactly as tree-sitter reports them; callers convert to UTF-16 or
//! chars through `crate::documents::LineIndex`.

mod language;
pub(crate) mod symbols;
mod syntax;
#[cfg(test)]
pub(crate) mod tests;
pub(crate) mod text;

pub use language::Language;
pub use symbols::{enclosing_scopes, flatten, identifiers_in, imports, outline, symbols};
pub use syntax::{SPLIT_MIN_BYTES, Source, Syntax};

use serde::Serialize;

/// A point in a text: zero-based line and zero-based *byte* column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct TextPoint {
    pub line: u32,
    pub col: u32,
}

/// A span of text in bytes with the matching points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Span {
    pub start_byte: usize,
    pub end_byte: usize,
    pub start: TextPoint,
    pub end: TextPoint,
}

impl Span {
    pub fn from_node(node: &tree_sitter::Node<'_>) -> Span {
        let s = node.start_position();
        let e = node.end_position();
        Span {
            start_byte: node.start_byte(),
            end_byte: node.end_byte(),
            start: TextPoint {
                line: s.row as u32,
                col: s.column as u32,
            },
            end: TextPoint {
                line: e.row as u32,
                col: e.column as u32,
            },
        }
    }

    /// The span after the text holding it moved rigidly.
    pub(crate) fn moved(&self, by: &syntax::Shift) -> Span {
        Span {
            start_byte: by.byte(self.start_byte),
            end_byte: by.byte(self.end_byte),
            start: by.point(self.start),
            end: by.point(self.end),
        }
    }

    pub fn contains_byte(&self, byte: usize) -> bool {
        self.start_byte <= byte && byte <= self.end_byte
    }

    pub fn line_count(&self) -> u32 {
        self.end.line - self.start.line + 1
    }
}

/// The kind of a symbol, language-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SymbolKind {
    Module,
    Namespace,
    Class,
    Struct,
    Enum,
    Interface,
    Trait,
    Impl,
    Function,
    Method,
    Constructor,
    Constant,
    /// A module-level variable (Python `client = Client()`, `handlers = {}`).
    Variable,
    TypeAlias,
    Field,
    EnumMember,
}

impl SymbolKind {
    /// Lower-case word used in rendered context and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            SymbolKind::Module => "module",
            SymbolKind::Namespace => "namespace",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Interface => "interface",
            SymbolKind::Trait => "trait",
            SymbolKind::Impl => "impl",
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Constructor => "constructor",
            SymbolKind::Constant => "constant",
            SymbolKind::Variable => "variable",
            SymbolKind::TypeAlias => "type",
            SymbolKind::Field => "field",
            SymbolKind::EnumMember => "enumMember",
        }
    }

    /// Kinds whose body is code that uses other identifiers (worth taking whole as context).
    pub fn is_callable(self) -> bool {
        matches!(
            self,
            SymbolKind::Function | SymbolKind::Method | SymbolKind::Constructor
        )
    }
}

/// A symbol defined in a file, with its children (methods of a class, items of a module...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// The whole definition, including its body (and, for Rust, not its doc comments).
    pub range: Span,
    /// The name (identifier) of the definition.
    pub selection_range: Span,
    /// Name of the enclosing symbol (class, impl, module...), if any.
    pub container: Option<String>,
    /// One line: the definition's header with whitespace collapsed, body removed, at most 200 chars.
    pub signature: String,
    /// The byte where the definition's body starts, which ends its header (the range's end
    /// when it has no body).
    #[serde(skip)]
    pub header_end: usize,
    pub children: Vec<Symbol>,
}

impl Symbol {
    /// The symbol (and its children) after the text holding it moved rigidly.
    pub(crate) fn moved(&self, by: &syntax::Shift) -> Symbol {
        Symbol {
            name: self.name.clone(),
            kind: self.kind,
            range: self.range.moved(by),
            selection_range: self.selection_range.moved(by),
            container: self.container.clone(),
            signature: self.signature.clone(),
            header_end: by.byte(self.header_end),
            children: self.children.iter().map(|c| c.moved(by)).collect(),
        }
    }

    /// The symbol without its children.
    pub fn clone_shallow(&self) -> Symbol {
        Symbol {
            name: self.name.clone(),
            kind: self.kind,
            range: self.range,
            selection_range: self.selection_range,
            container: self.container.clone(),
            signature: self.signature.clone(),
            header_end: self.header_end,
            children: Vec::new(),
        }
    }
}

/// An import / use / include statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    /// The statement's text, one line (whitespace collapsed).
    pub text: String,
    pub range: Span,
    /// The module path being imported when it can be told (`std::collections`, `./util`, `os.path`, `stdio.h`).
    pub module: Option<String>,
}
