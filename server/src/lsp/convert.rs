//! Conversions between `ls_types` and the engine's plain types.

use tower_lsp_server::ls_types::{self as lsp, SymbolKind as LspKind};

use crate::analysis::SymbolKind;
use crate::documents::{Position, Range};

pub fn position(p: lsp::Position) -> Position {
    Position {
        line: p.line,
        character: p.character,
    }
}

pub fn range(r: lsp::Range) -> Range {
    Range {
        start: position(r.start),
        end: position(r.end),
    }
}

pub fn to_lsp_position(p: Position) -> lsp::Position {
    lsp::Position {
        line: p.line,
        character: p.character,
    }
}

pub fn to_lsp_range(r: Range) -> lsp::Range {
    lsp::Range {
        start: to_lsp_position(r.start),
        end: to_lsp_position(r.end),
    }
}

pub fn symbol_kind(kind: SymbolKind) -> LspKind {
    match kind {
        SymbolKind::Module => LspKind::MODULE,
        SymbolKind::Namespace => LspKind::NAMESPACE,
        SymbolKind::Class => LspKind::CLASS,
        SymbolKind::Struct => LspKind::STRUCT,
        SymbolKind::Enum => LspKind::ENUM,
        SymbolKind::Interface | SymbolKind::Trait => LspKind::INTERFACE,
        SymbolKind::Impl => LspKind::OBJECT,
        SymbolKind::Function => LspKind::FUNCTION,
        SymbolKind::Method => LspKind::METHOD,
        SymbolKind::Constructor => LspKind::CONSTRUCTOR,
        SymbolKind::Constant => LspKind::CONSTANT,
        SymbolKind::TypeAlias => LspKind::TYPE_PARAMETER,
        SymbolKind::Field => LspKind::FIELD,
        SymbolKind::Variable => LspKind::VARIABLE,
        SymbolKind::EnumMember => LspKind::ENUM_MEMBER,
    }
}

pub fn severity(d: &lsp::Diagnostic) -> Option<u8> {
    d.severity.map(|s| {
        if s == lsp::DiagnosticSeverity::ERROR {
            1
        } else if s == lsp::DiagnosticSeverity::WARNING {
            2
        } else if s == lsp::DiagnosticSeverity::INFORMATION {
            3
        } else {
            4
        }
    })
}
