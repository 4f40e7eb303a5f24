//! Supported languages: detection from paths and LSP language ids, and their tree-sitter grammars.

use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

/// A language the server knows about. Everything but [`Language::PlainText`] has a grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
    Java,
    C,
    Cpp,
    PlainText,
}

/// The languages that have a grammar, in a fixed order.
const PARSED: [Language; 9] = [
    Language::Rust,
    Language::Python,
    Language::TypeScript,
    Language::Tsx,
    Language::JavaScript,
    Language::Go,
    Language::Java,
    Language::C,
    Language::Cpp,
];

impl Language {
    /// Detects the language from a file's extension; unknown extensions are plain text.
    pub fn from_path(path: &Path) -> Language {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            return Language::PlainText;
        };
        // Extensions are short; compare case-insensitively without allocating.
        let is = |s: &str| ext.eq_ignore_ascii_case(s);
        if is("rs") {
            Language::Rust
        } else if is("py") || is("pyi") {
            Language::Python
        } else if is("ts") || is("mts") || is("cts") {
            Language::TypeScript
        } else if is("tsx") {
            Language::Tsx
        } else if is("js") || is("mjs") || is("cjs") || is("jsx") {
            Language::JavaScript
        } else if is("go") {
            Language::Go
        } else if is("java") {
            Language::Java
        } else if ext == "c" || ext == "h" {
            // Upper-case `.C` / `.H` are C++ by convention.
            Language::C
        } else if is("cc")
            || is("cpp")
            || is("cxx")
            || is("c++")
            || is("hpp")
            || is("hh")
            || is("hxx")
            || is("h++")
            || ext == "C"
            || ext == "H"
        {
            Language::Cpp
        } else {
            Language::PlainText
        }
    }

    /// Maps an LSP `languageId` to a language; `None` for ids this server does not know.
    pub fn from_language_id(id: &str) -> Option<Language> {
        let lang = match id {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "typescript" => Language::TypeScript,
            "typescriptreact" | "tsx" => Language::Tsx,
            "javascript" | "javascriptreact" | "jsx" => Language::JavaScript,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" => Language::C,
            "cpp" | "c++" | "cuda-cpp" => Language::Cpp,
            "plaintext" | "text" => Language::PlainText,
            _ => return None,
        };
        Some(lang)
    }

    /// The language of a document: the LSP id when it is known, else the path's extension.
    ///
    /// Editors send ids such as `""` (Neovim) or `"fundamental"` (Emacs eglot) for buffers
    /// they have no mode for; those fall back to the path. `plaintext` also falls back, so
    /// a `.rs` file opened as plain text is still parsed.
    pub fn detect(language_id: &str, path: &Path) -> Language {
        match Language::from_language_id(language_id) {
            Some(Language::PlainText) | None => Language::from_path(path),
            Some(lang) => lang,
        }
    }

    /// Lower-case name, the same as the serialized form.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::JavaScript => "javascript",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::PlainText => "plaintext",
        }
    }

    /// The languages that have a grammar (every variant except plain text).
    pub fn all() -> &'static [Language] {
        &PARSED
    }

    /// The tree-sitter grammar, or `None` for plain text.
    pub fn grammar(self) -> Option<tree_sitter::Language> {
        self.grammar_ref().cloned()
    }

    /// The cached tree-sitter grammar by reference, or `None` for plain text.
    pub fn grammar_ref(self) -> Option<&'static tree_sitter::Language> {
        static CACHE: [OnceLock<tree_sitter::Language>; 9] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let (slot, make): (usize, fn() -> tree_sitter::Language) = match self {
            Language::Rust => (0, || tree_sitter_rust::LANGUAGE.into()),
            Language::Python => (1, || tree_sitter_python::LANGUAGE.into()),
            Language::TypeScript => (2, || tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()),
            Language::Tsx => (3, || tree_sitter_typescript::LANGUAGE_TSX.into()),
            Language::JavaScript => (4, || tree_sitter_javascript::LANGUAGE.into()),
            Language::Go => (5, || tree_sitter_go::LANGUAGE.into()),
            Language::Java => (6, || tree_sitter_java::LANGUAGE.into()),
            Language::C => (7, || tree_sitter_c::LANGUAGE.into()),
            Language::Cpp => (8, || tree_sitter_cpp::LANGUAGE.into()),
            Language::PlainText => return None,
        };
        CACHE.get(slot).map(|cell| cell.get_or_init(make))
    }

    /// A parser set up for this language, or `None` for plain text (or an ABI mismatch).
    pub fn new_parser(self) -> Option<tree_sitter::Parser> {
        let grammar = self.grammar_ref()?;
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(grammar).ok()?;
        Some(parser)
    }

    /// Index of the language in [`Language::all`], `None` for plain text.
    pub(crate) fn index(self) -> Option<usize> {
        PARSED.iter().position(|&l| l == self)
    }
}
