//! Lexical tag scanner: definitions of files not open in the editor, from one pass over the bytes (no parse tree).
//!
//! [`scan`] tokenizes a file once (skipping comments, strings, char literals, raw strings,
//! template literals and C preprocessor lines, pairing brackets on the way) and then walks
//! the token list per language, recognising definitions by keyword at item positions and
//! skipping function bodies by bracket matching (Python blocks by indentation). It follows
//! the conventions of `crate::analysis::symbols` (kinds, names, containers, one-line
//! signatures, ranges) and returns a flat list: `children` are empty, `container` is set.
//! It never panics: tokens and bytes are only read through `get`, recursion is bounded.
//!
//! Here: the entry points, the token types and the dispatch. `lexer.rs` is the tokenizer,
//! `parser.rs` the generic helpers over the token list (token access, bracket matching,
//! spans, recording definitions), and one file per language family (`rust.rs`, `python.rs`,
//! `js.rs`, `go.rs`, `java.rs`, `c.rs`) walks that family's items.

mod c;
mod go;
mod java;
mod js;
mod lexer;
mod parser;
mod python;
mod rust;

use self::java::JavaIn;
use self::js::Scope;
use self::lexer::Lexer;
use self::parser::Parser;
use crate::analysis::text::one_line;
use crate::analysis::{Language, Symbol};

/// Maximum length of a signature in bytes (as in `analysis::symbols`).
/// How many nested containers (modules, classes, namespaces...) are followed.
const MAX_DEPTH: u32 = 48;
/// "No matching bracket".
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    Ident,
    Str,
    Num,
    Punct,
    Eof,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    start: u32,
    end: u32,
    line: u32,
    line_start: u32,
    /// For brackets: the index of the matching bracket (or `NONE`).
    pair: u32,
    kind: T,
    /// First byte of the token.
    b: u8,
}

const EOF: Tok = Tok {
    start: 0,
    end: 0,
    line: 0,
    line_start: 0,
    pair: NONE,
    kind: T::Eof,
    b: 0,
};

/// Languages that share a walker. A new family is a file with its item walker, a variant
/// here and an entry in each of the two `match`es in `scan_with`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    Rust,
    Python,
    Js,
    Go,
    Java,
    C,
}

/// A `#define NAME value` line (C / C++).
struct Define {
    name: (u32, u32),
    start: u32,
    end: u32,
}

/// The definitions in `text`, flat (children empty, `container` set), sorted by position.
pub fn scan(language: Language, text: &str) -> Vec<Symbol> {
    scan_with(language, text, true)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`scan`] for the index: signatures are left empty and described by a [`SigSource`]
/// instead (read back from the file's text when needed).
pub(crate) fn scan_for_index(language: Language, text: &str) -> Vec<(Symbol, SigSource)> {
    scan_with(language, text, false)
}

/// Where a symbol's one-line signature is read from in its file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigSource {
    /// The header at these bytes, collapsed, with a trailing `{` / `:` removed.
    Header(u32, u32),
    /// The first line of the text at these bytes, collapsed.
    FirstLine(u32, u32),
    /// Kept as text (prefixed signatures, open documents).
    Text(Box<str>),
}

impl SigSource {
    /// The signature, given the text of the file the symbol was found in.
    pub fn read(&self, file_text: &str) -> String {
        match self {
            SigSource::Header(s, e) => {
                one_line(file_text.get(*s as usize..*e as usize).unwrap_or(""), true)
            }
            SigSource::FirstLine(s, e) => {
                let all = file_text.get(*s as usize..*e as usize).unwrap_or("");
                one_line(all.split('\n').next().unwrap_or(""), false)
            }
            SigSource::Text(t) => t.to_string(),
        }
    }
}

fn scan_with(language: Language, text: &str, with_signatures: bool) -> Vec<(Symbol, SigSource)> {
    let fam = match language {
        Language::Rust => Fam::Rust,
        Language::Python => Fam::Python,
        Language::TypeScript | Language::Tsx | Language::JavaScript => Fam::Js,
        Language::Go => Fam::Go,
        Language::Java => Fam::Java,
        Language::C | Language::Cpp => Fam::C,
        Language::PlainText => return Vec::new(),
    };
    // Offsets are kept in u32; larger inputs are not indexed (the walk stops at 1 MiB).
    if u32::try_from(text.len()).is_err() {
        return Vec::new();
    }
    let mut lx = Lexer {
        fam,
        cpp: language == Language::Cpp,
        text: text.as_bytes(),
        toks: Vec::with_capacity(text.len() / 6 + 16),
        defines: Vec::new(),
        stack: Vec::new(),
        line: 0,
        line_start: 0,
        seen: 0,
    };
    lx.run();
    let Lexer { toks, defines, .. } = lx;
    let mut p = Parser {
        src: text,
        text: text.as_bytes(),
        toks: &toks,
        lang: language,
        out: Vec::new(),
        sigs: Vec::new(),
        with_signatures,
    };
    let n = toks.len();
    match fam {
        Fam::Rust => p.rust_items(0, n, None, false, 0),
        Fam::Python => p.py_block(0, n, None, false, 0),
        Fam::Js => p.js_items(0, n, None, Scope::Top, 0),
        Fam::Go => p.go_items(0, n),
        Fam::Java => p.java_body(0, n, None, JavaIn::Top, 0),
        Fam::C => p.c_body(0, n, None, false, 0),
    }
    for d in &defines {
        p.push_define(d);
    }
    let mut out: Vec<(Symbol, SigSource)> = p.out.into_iter().zip(p.sigs).collect();
    if !out.is_sorted_by_key(|s| s.0.range.start_byte) {
        out.sort_by_key(|s| s.0.range.start_byte);
    }
    out
}

#[cfg(test)]
mod tests;
