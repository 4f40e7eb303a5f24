//! Symbols, enclosing scopes, imports and identifiers extracted from tree-sitter trees.
//!
//! Everything here is a pure function of `(Language, &Syntax, &str)`. The walks only follow
//! named children of declaration containers (source files, class / impl / module bodies,
//! export and template wrappers, preprocessor blocks, ERROR nodes) and never enter function
//! bodies. Node kinds are classified through a per-language table indexed by
//! `kind_id` (built once), not by comparing kind strings. Nothing here panics on any
//! tree/text pair, even mismatched ones: text is only read through `str::get`, and
//! recursion stops at a fixed depth.

use std::collections::HashSet;
use std::num::NonZeroU16;
use std::sync::OnceLock;

use tree_sitter::Node;

use super::text::{is_upper_case, one_line, one_line_full, prefixed, strip_quotes};
use super::{Import, Language, Span, Symbol, SymbolKind, Syntax, TextPoint};

/// How many nested containers (bodies, wrappers, ERROR nodes) the walks follow.
const MAX_DEPTH: u32 = 48;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The hierarchical symbols of a file (children sorted by position).
pub fn symbols(lang: Language, syntax: &Syntax, text: &str) -> Vec<Symbol> {
    let Some(cx) = Ctx::new(lang, text, None) else {
        return Vec::new();
    };
    syntax.symbols_by_root(|root| {
        let mut out = Vec::new();
        cx.walk_children(root, Scope::TOP, &mut out, 0);
        out
    })
}

/// The chain of symbols whose range contains `byte`, outermost first, children left empty.
///
/// Only the path from the root to `byte` is examined; the symbols of the rest of the file
/// are never computed.
pub fn enclosing_scopes(lang: Language, syntax: &Syntax, text: &str, byte: usize) -> Vec<Symbol> {
    let Some(cx) = Ctx::new(lang, text, Some(byte)) else {
        return Vec::new();
    };
    let mut chain: Vec<Symbol> = Vec::new();
    for (root, _, _) in syntax.pieces_overlapping(byte, byte) {
        let mut found = Vec::new();
        cx.walk_children(root, Scope::TOP, &mut found, 0);
        // Pieces of a wrapped file share the head and the tail: their symbols come once.
        for s in flatten(found) {
            if s.range.contains_byte(byte) && !chain.contains(&s) {
                chain.push(s);
            }
        }
    }
    chain
}

/// The import / use / include statements at the top level of a file.
pub fn imports(lang: Language, syntax: &Syntax, text: &str) -> Vec<Import> {
    let Some(cx) = Ctx::new(lang, text, None) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (root, start, end) in syntax.pieces() {
        let mut found = Vec::new();
        cx.imports_in(root, &mut found, 0);
        // each import once: from the piece that speaks for its bytes
        out.extend(
            found
                .into_iter()
                .filter(|i| i.range.start_byte >= start && i.range.start_byte < end),
        );
    }
    out
}

/// The distinct identifier-like names (longer than one character) inside
/// `start_byte..end_byte`, in order of first appearance.
pub fn identifiers_in(
    syntax: &Syntax,
    text: &str,
    start_byte: usize,
    end_byte: usize,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if start_byte >= end_byte {
        return names;
    }
    // Whether each kind id is identifier-like, looked up once per kind: 0 unknown, 1 yes, 2 no.
    let mut memo = vec![0u8; syntax.language().node_kind_count()];
    let mut is_identifier = |node: Node<'_>| match memo.get_mut(usize::from(node.kind_id())) {
        Some(0) | None => {
            let yes = is_identifier_kind(node.kind());
            if let Some(slot) = memo.get_mut(usize::from(node.kind_id())) {
                *slot = if yes { 1 } else { 2 };
            }
            yes
        }
        Some(v) => *v == 1,
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for (root, piece_start, piece_end) in syntax.pieces_overlapping(start_byte, end_byte) {
        identifiers_under(
            root,
            text,
            start_byte.max(piece_start),
            end_byte.min(piece_end),
            &mut is_identifier,
            &mut seen,
            &mut names,
        );
    }
    names
}

/// [`identifiers_in`] below one root.
fn identifiers_under<'t>(
    root: Node<'_>,
    text: &'t str,
    start_byte: usize,
    end_byte: usize,
    is_identifier: &mut impl FnMut(Node<'_>) -> bool,
    seen: &mut HashSet<&'t str>,
    names: &mut Vec<String>,
) {
    let mut cursor = root.walk();
    'walk: loop {
        let node = cursor.node();
        if node.start_byte() >= end_byte {
            // Nodes are visited in document order: nothing after this can overlap.
            break;
        }
        let overlaps = node.end_byte() > start_byte;
        if overlaps && node.child_count() > 0 {
            if cursor.goto_first_child_for_byte(start_byte).is_some() {
                continue;
            }
        } else if overlaps
            && node.is_named()
            && node.start_byte() >= start_byte
            && node.end_byte() <= end_byte
            && is_identifier(node)
            && let Some(name) = text.get(node.start_byte()..node.end_byte())
            && name.chars().nth(1).is_some()
            && seen.insert(name)
        {
            names.push(name.to_owned());
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
}

/// Pre-order flattening of a symbol tree with each symbol's depth (0 for top level).
pub fn outline(symbols: &[Symbol]) -> Vec<(usize, &Symbol)> {
    fn rec<'s>(symbols: &'s [Symbol], depth: usize, out: &mut Vec<(usize, &'s Symbol)>) {
        for s in symbols {
            out.push((depth, s));
            rec(&s.children, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    rec(symbols, 0, &mut out);
    out
}

/// Pre-order flattening that moves the children out, so every returned symbol has none.
pub fn flatten(symbols: Vec<Symbol>) -> Vec<Symbol> {
    fn rec(symbols: Vec<Symbol>, out: &mut Vec<Symbol>) {
        for mut s in symbols {
            let children = std::mem::take(&mut s.children);
            out.push(s);
            rec(children, out);
        }
    }
    let mut out = Vec::with_capacity(symbols.len());
    rec(symbols, &mut out);
    out
}

fn is_identifier_kind(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "type_identifier"
            | "field_identifier"
            | "property_identifier"
            | "private_property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "shorthand_field_identifier"
            | "namespace_identifier"
            | "package_identifier"
    )
}

// ---------------------------------------------------------------------------
// Kind and field tables
// ---------------------------------------------------------------------------

/// The node kinds the walks care about, across all grammars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Other,
    Error,
    Comment,
    Identifier,
    TypeIdentifier,
    String,
    // Rust
    FunctionItem,
    FunctionSignatureItem,
    StructItem,
    UnionItem,
    EnumItem,
    EnumVariant,
    TraitItem,
    ImplItem,
    ModItem,
    ConstItem,
    StaticItem,
    TypeItem,
    AssociatedType,
    ForeignModItem,
    UseDeclaration,
    ExternCrate,
    ScopedIdentifier,
    ScopedUseList,
    UseAsClause,
    UseWildcard,
    UseList,
    ScopedTypeIdentifier,
    GenericType,
    ReferenceType,
    // Python
    FunctionDefinition,
    ClassDefinition,
    DecoratedDefinition,
    ExpressionStatement,
    Assignment,
    ImportStatement,
    ImportFromStatement,
    FutureImportStatement,
    AliasedImport,
    TypeAliasStatement,
    // JavaScript / TypeScript
    FunctionDeclaration,
    GeneratorFunctionDeclaration,
    FunctionSignature,
    ClassDeclaration,
    AbstractClassDeclaration,
    Class,
    MethodDefinition,
    MethodSignature,
    AbstractMethodSignature,
    PublicFieldDefinition,
    FieldDefinition,
    InterfaceDeclaration,
    EnumDeclaration,
    EnumAssignment,
    TypeAliasDeclaration,
    InternalModule,
    Module,
    AmbientDeclaration,
    ExportStatement,
    LexicalDeclaration,
    VariableDeclaration,
    VariableDeclarator,
    ArrowFunction,
    FunctionExpression,
    GeneratorFunction,
    CallExpression,
    MemberExpression,
    Decorator,
    ImportRequireClause,
    // Go
    MethodDeclaration,
    TypeDeclaration,
    TypeSpec,
    TypeAlias,
    StructType,
    InterfaceType,
    MethodElem,
    ConstDeclaration,
    ConstSpec,
    ImportDeclaration,
    ImportSpec,
    ImportSpecList,
    PointerType,
    QualifiedType,
    FieldDeclarationList,
    // Java
    RecordDeclaration,
    AnnotationTypeDeclaration,
    AnnotationTypeElementDeclaration,
    ConstructorDeclaration,
    CompactConstructorDeclaration,
    FieldDeclaration,
    ConstantDeclaration,
    EnumConstant,
    EnumBodyDeclarations,
    Modifiers,
    Asterisk,
    // C / C++
    Declaration,
    TypeDefinition,
    StructSpecifier,
    UnionSpecifier,
    EnumSpecifier,
    ClassSpecifier,
    Enumerator,
    FunctionDeclarator,
    PointerDeclarator,
    ReferenceDeclarator,
    ParenthesizedDeclarator,
    AttributedDeclarator,
    ArrayDeclarator,
    InitDeclarator,
    QualifiedIdentifier,
    TemplateType,
    TemplateFunction,
    TemplateMethod,
    FieldIdentifier,
    DestructorName,
    OperatorName,
    NamespaceDefinition,
    TemplateDeclaration,
    AliasDeclaration,
    LinkageSpecification,
    PreprocBlock,
    PreprocDef,
    PreprocInclude,
    DeclarationList,
    ClassBody,
}

fn kind_for_name(name: &str) -> K {
    match name {
        "ERROR" => K::Error,
        "comment" | "line_comment" | "block_comment" => K::Comment,
        "identifier" => K::Identifier,
        "type_identifier" => K::TypeIdentifier,
        "string" | "string_literal" | "interpreted_string_literal" | "raw_string_literal" => {
            K::String
        }
        "function_item" => K::FunctionItem,
        "function_signature_item" => K::FunctionSignatureItem,
        "struct_item" => K::StructItem,
        "union_item" => K::UnionItem,
        "enum_item" => K::EnumItem,
        "enum_variant" => K::EnumVariant,
        "trait_item" => K::TraitItem,
        "impl_item" => K::ImplItem,
        "mod_item" => K::ModItem,
        "const_item" => K::ConstItem,
        "static_item" => K::StaticItem,
        "type_item" => K::TypeItem,
        "associated_type" => K::AssociatedType,
        "foreign_mod_item" => K::ForeignModItem,
        "use_declaration" => K::UseDeclaration,
        "extern_crate_declaration" => K::ExternCrate,
        "scoped_identifier" => K::ScopedIdentifier,
        "scoped_use_list" => K::ScopedUseList,
        "use_as_clause" => K::UseAsClause,
        "use_wildcard" => K::UseWildcard,
        "use_list" => K::UseList,
        "scoped_type_identifier" => K::ScopedTypeIdentifier,
        "generic_type" => K::GenericType,
        "reference_type" => K::ReferenceType,
        "function_definition" => K::FunctionDefinition,
        "class_definition" => K::ClassDefinition,
        "decorated_definition" => K::DecoratedDefinition,
        "expression_statement" => K::ExpressionStatement,
        "assignment" => K::Assignment,
        "import_statement" => K::ImportStatement,
        "import_from_statement" => K::ImportFromStatement,
        "future_import_statement" => K::FutureImportStatement,
        "aliased_import" => K::AliasedImport,
        "type_alias_statement" => K::TypeAliasStatement,
        "function_declaration" => K::FunctionDeclaration,
        "generator_function_declaration" => K::GeneratorFunctionDeclaration,
        "function_signature" => K::FunctionSignature,
        "class_declaration" => K::ClassDeclaration,
        "abstract_class_declaration" => K::AbstractClassDeclaration,
        "class" => K::Class,
        "method_definition" => K::MethodDefinition,
        "method_signature" => K::MethodSignature,
        "abstract_method_signature" => K::AbstractMethodSignature,
        "public_field_definition" => K::PublicFieldDefinition,
        "field_definition" => K::FieldDefinition,
        "interface_declaration" => K::InterfaceDeclaration,
        "enum_declaration" => K::EnumDeclaration,
        "enum_assignment" => K::EnumAssignment,
        "type_alias_declaration" => K::TypeAliasDeclaration,
        "internal_module" => K::InternalModule,
        "module" => K::Module,
        "ambient_declaration" => K::AmbientDeclaration,
        "export_statement" => K::ExportStatement,
        "lexical_declaration" => K::LexicalDeclaration,
        "variable_declaration" => K::VariableDeclaration,
        "variable_declarator" => K::VariableDeclarator,
        "arrow_function" => K::ArrowFunction,
        "function_expression" => K::FunctionExpression,
        "generator_function" => K::GeneratorFunction,
        "call_expression" => K::CallExpression,
        "member_expression" => K::MemberExpression,
        "decorator" => K::Decorator,
        "import_require_clause" => K::ImportRequireClause,
        "method_declaration" => K::MethodDeclaration,
        "type_declaration" => K::TypeDeclaration,
        "type_spec" => K::TypeSpec,
        "type_alias" => K::TypeAlias,
        "struct_type" => K::StructType,
        "interface_type" => K::InterfaceType,
        "method_elem" => K::MethodElem,
        "const_declaration" => K::ConstDeclaration,
        "const_spec" => K::ConstSpec,
        "import_declaration" => K::ImportDeclaration,
        "import_spec" => K::ImportSpec,
        "import_spec_list" => K::ImportSpecList,
        "pointer_type" => K::PointerType,
        "qualified_type" => K::QualifiedType,
        "field_declaration_list" => K::FieldDeclarationList,
        "record_declaration" => K::RecordDeclaration,
        "annotation_type_declaration" => K::AnnotationTypeDeclaration,
        "annotation_type_element_declaration" => K::AnnotationTypeElementDeclaration,
        "constructor_declaration" => K::ConstructorDeclaration,
        "compact_constructor_declaration" => K::CompactConstructorDeclaration,
        "field_declaration" => K::FieldDeclaration,
        "constant_declaration" => K::ConstantDeclaration,
        "enum_constant" => K::EnumConstant,
        "enum_body_declarations" => K::EnumBodyDeclarations,
        "modifiers" => K::Modifiers,
        "asterisk" => K::Asterisk,
        "declaration" => K::Declaration,
        "type_definition" => K::TypeDefinition,
        "struct_specifier" => K::StructSpecifier,
        "union_specifier" => K::UnionSpecifier,
        "enum_specifier" => K::EnumSpecifier,
        "class_specifier" => K::ClassSpecifier,
        "enumerator" => K::Enumerator,
        "function_declarator" => K::FunctionDeclarator,
        "pointer_declarator" => K::PointerDeclarator,
        "reference_declarator" => K::ReferenceDeclarator,
        "parenthesized_declarator" => K::ParenthesizedDeclarator,
        "attributed_declarator" => K::AttributedDeclarator,
        "array_declarator" => K::ArrayDeclarator,
        "init_declarator" => K::InitDeclarator,
        "qualified_identifier" => K::QualifiedIdentifier,
        "template_type" => K::TemplateType,
        "template_function" => K::TemplateFunction,
        "template_method" => K::TemplateMethod,
        "field_identifier" => K::FieldIdentifier,
        "destructor_name" => K::DestructorName,
        "operator_name" => K::OperatorName,
        "namespace_definition" => K::NamespaceDefinition,
        "template_declaration" => K::TemplateDeclaration,
        "alias_declaration" => K::AliasDeclaration,
        "linkage_specification" => K::LinkageSpecification,
        "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif" | "preproc_elifdef" => {
            K::PreprocBlock
        }
        "preproc_def" => K::PreprocDef,
        "preproc_include" => K::PreprocInclude,
        "declaration_list" => K::DeclarationList,
        "class_body" => K::ClassBody,
        _ => K::Other,
    }
}

type FieldId = Option<NonZeroU16>;

/// Field ids of one grammar (absent fields are `None`).
struct Fields {
    name: FieldId,
    body: FieldId,
    ty: FieldId,
    declarator: FieldId,
    value: FieldId,
    definition: FieldId,
    declaration: FieldId,
    receiver: FieldId,
    path: FieldId,
    source: FieldId,
    argument: FieldId,
    module_name: FieldId,
    scope: FieldId,
    left: FieldId,
    function: FieldId,
    property: FieldId,
    kind: FieldId,
    object: FieldId,
    arguments: FieldId,
}

struct Tables {
    kinds: Vec<K>,
    f: Fields,
}

impl Tables {
    fn new(g: &tree_sitter::Language) -> Tables {
        let count = g.node_kind_count();
        let mut kinds = vec![K::Other; count];
        for (id, slot) in kinds.iter_mut().enumerate() {
            let Ok(id) = u16::try_from(id) else { break };
            if !g.node_kind_is_named(id) {
                continue;
            }
            if let Some(name) = g.node_kind_for_id(id) {
                *slot = kind_for_name(name);
            }
        }
        let fid = |name: &str| g.field_id_for_name(name);
        Tables {
            kinds,
            f: Fields {
                name: fid("name"),
                body: fid("body"),
                ty: fid("type"),
                declarator: fid("declarator"),
                value: fid("value"),
                definition: fid("definition"),
                declaration: fid("declaration"),
                receiver: fid("receiver"),
                path: fid("path"),
                source: fid("source"),
                argument: fid("argument"),
                module_name: fid("module_name"),
                scope: fid("scope"),
                left: fid("left"),
                function: fid("function"),
                property: fid("property"),
                kind: fid("kind"),
                object: fid("object"),
                arguments: fid("arguments"),
            },
        }
    }
}

fn tables(lang: Language) -> Option<&'static Tables> {
    static TABLES: [OnceLock<Tables>; 9] = [
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
    let grammar = lang.grammar_ref()?;
    let slot = TABLES.get(lang.index()?)?;
    Some(slot.get_or_init(|| Tables::new(grammar)))
}

fn field<'t>(node: Node<'t>, id: FieldId) -> Option<Node<'t>> {
    node.child_by_field_id(id?.get())
}

// ---------------------------------------------------------------------------
// Walk context
// ---------------------------------------------------------------------------

/// Languages that share extraction code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rust,
    Python,
    Js,
    Go,
    Java,
    C,
}

/// Where a definition sits.
#[derive(Clone, Copy)]
struct Scope<'s> {
    /// Name of the enclosing symbol.
    container: Option<&'s str>,
    /// Inside a class / impl / trait / interface body: functions are methods.
    in_type: bool,
    /// At module (or namespace) level: module-level constants are collected.
    top: bool,
}

impl Scope<'static> {
    const TOP: Scope<'static> = Scope {
        container: None,
        in_type: false,
        top: true,
    };
}

/// The extent of a definition including wrappers (export, decorators, templates...).
#[derive(Clone, Copy)]
struct Outer<'t> {
    /// The range starts where this node starts...
    start: Node<'t>,
    /// ...and ends where this one ends.
    end: Node<'t>,
    /// Byte where the signature starts.
    sig_start: usize,
}

impl<'t> Outer<'t> {
    fn of(node: Node<'t>) -> Outer<'t> {
        Outer {
            start: node,
            end: node,
            sig_start: node.start_byte(),
        }
    }

    /// The outer extent for `inner`, wrapped by `self`, with the signature starting at `inner`.
    fn wrap_sig_inner(self, inner: Node<'t>) -> Outer<'t> {
        Outer {
            sig_start: inner.start_byte(),
            ..self
        }
    }

    fn span(&self) -> Span {
        span_between(self.start, self.end)
    }
}

fn point(p: tree_sitter::Point) -> TextPoint {
    TextPoint {
        line: u32::try_from(p.row).unwrap_or(u32::MAX),
        col: u32::try_from(p.column).unwrap_or(u32::MAX),
    }
}

fn span_between(start: Node<'_>, end: Node<'_>) -> Span {
    let (a, b) = if end.end_byte() >= start.start_byte() {
        (start, end)
    } else {
        (start, start)
    };
    Span {
        start_byte: a.start_byte(),
        end_byte: b.end_byte(),
        start: point(a.start_position()),
        end: point(b.end_position()),
    }
}

/// Where a definition's signature ends.
#[derive(Clone, Copy)]
enum SigEnd {
    /// At this byte (the start of the body): the whole header, collapsed.
    Body(usize),
    /// No body: the first line of the definition.
    FirstLine,
}

struct Ctx<'a> {
    fam: Family,
    lang: Language,
    t: &'static Tables,
    text: &'a str,
    /// When set, only the path to this byte is walked (enclosing scopes).
    target: Option<usize>,
}

impl<'a> Ctx<'a> {
    fn new(lang: Language, text: &'a str, target: Option<usize>) -> Option<Ctx<'a>> {
        let fam = match lang {
            Language::Rust => Family::Rust,
            Language::Python => Family::Python,
            Language::TypeScript | Language::Tsx | Language::JavaScript => Family::Js,
            Language::Go => Family::Go,
            Language::Java => Family::Java,
            Language::C | Language::Cpp => Family::C,
            Language::PlainText => return None,
        };
        Some(Ctx {
            fam,
            lang,
            t: tables(lang)?,
            text,
            target,
        })
    }

    fn kind(&self, node: Node<'_>) -> K {
        match self.t.kinds.get(usize::from(node.kind_id())) {
            Some(&k) => k,
            None if node.is_error() => K::Error,
            None => K::Other,
        }
    }

    fn text_of(&self, node: Node<'_>) -> Option<&'a str> {
        self.text.get(node.start_byte()..node.end_byte())
    }

    /// A node's text as a name: quotes stripped from string literals, `None` when empty.
    fn name_of(&self, node: Node<'_>) -> Option<&'a str> {
        let text = self.text_of(node)?;
        let text = if self.kind(node) == K::String {
            strip_quotes(text)
        } else {
            text
        };
        let text = text.trim();
        (!text.is_empty()).then_some(text)
    }

    /// Whether the walk should look at `node` (always, unless looking for a target byte).
    fn wanted(&self, node: Node<'_>) -> bool {
        match self.target {
            Some(b) => node.start_byte() <= b && b <= node.end_byte(),
            None => true,
        }
    }

    fn signature(&self, sig_start: usize, end: SigEnd, outer_end: usize) -> String {
        match end {
            SigEnd::Body(body) => {
                let header = self.text.get(sig_start..body).unwrap_or("");
                one_line(header, true)
            }
            SigEnd::FirstLine => {
                let all = self.text.get(sig_start..outer_end).unwrap_or("");
                let first = all.split('\n').next().unwrap_or("");
                one_line(first, false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &self,
        kind: SymbolKind,
        name: &str,
        sel: Node<'_>,
        outer: &Outer<'_>,
        sig_end: SigEnd,
        container: Option<&str>,
        children: Vec<Symbol>,
    ) -> Symbol {
        let range = outer.span();
        Symbol {
            name: name.to_owned(),
            kind,
            range,
            selection_range: Span::from_node(&sel),
            container: container.map(str::to_owned),
            signature: self.signature(outer.sig_start, sig_end, range.end_byte),
            children,
        }
    }

    /// The collapsed text from `start` up to `first` plus a space: `const ` in
    /// `const a = 1, b = 2`, used to keep the keyword in each declarator's signature.
    fn prefix(&self, start: usize, first: Node<'_>) -> String {
        let mut p = one_line_full(self.text.get(start..first.start_byte()).unwrap_or(""));
        if !p.is_empty() {
            p.push(' ');
        }
        p
    }

    fn body_end(body: Option<Node<'_>>) -> SigEnd {
        match body {
            Some(b) => SigEnd::Body(b.start_byte()),
            None => SigEnd::FirstLine,
        }
    }

    // -----------------------------------------------------------------------
    // Generic walk
    // -----------------------------------------------------------------------

    /// Visits the named children of a declaration container.
    fn walk_children<'t>(
        &self,
        parent: Node<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let first = out.len();
        let mut cursor = parent.walk();
        let started = match self.target {
            // Jump straight to the first child ending at or after the target (this skips
            // whole subtrees, so it stays cheap in files with thousands of items), except
            // in TypeScript class bodies where decorators before the member must be seen.
            Some(b) if !(self.fam == Family::Js && self.kind(parent) == K::ClassBody) => cursor
                .goto_first_child_for_byte(b.saturating_sub(1))
                .is_some(),
            _ => cursor.goto_first_child(),
        };
        if !started {
            return;
        }
        let mut decorator: Option<Node<'t>> = None;
        loop {
            let node = cursor.node();
            if node.is_named() {
                match self.kind(node) {
                    K::Comment => {}
                    // TypeScript puts member decorators before the member, as siblings.
                    K::Decorator => {
                        decorator.get_or_insert(node);
                    }
                    _ => {
                        let start = decorator.take().unwrap_or(node);
                        if let Some(b) = self.target {
                            if start.start_byte() > b {
                                break;
                            }
                            if node.end_byte() < b {
                                if !cursor.goto_next_sibling() {
                                    break;
                                }
                                continue;
                            }
                        }
                        let before = out.len();
                        let outer = Outer {
                            start,
                            end: node,
                            sig_start: node.start_byte(),
                        };
                        self.visit(node, outer, scope, out, depth);
                        if self.target.is_some() && out.len() > before {
                            break;
                        }
                    }
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
        if let Some(added) = out.get_mut(first..)
            && !added.is_sorted_by_key(|s| s.range.start_byte)
        {
            added.sort_by_key(|s| s.range.start_byte);
        }
    }

    fn visit<'t>(
        &self,
        node: Node<'t>,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let k = self.kind(node);
        if k == K::Error {
            self.walk_children(node, scope, out, depth + 1);
            return;
        }
        match self.fam {
            Family::Rust => self.visit_rust(node, k, outer, scope, out, depth),
            Family::Python => self.visit_python(node, k, outer, scope, out, depth),
            Family::Js => self.visit_js(node, k, outer, scope, out, depth),
            Family::Go => self.visit_go(node, k, outer, scope, out, depth),
            Family::Java => self.visit_java(node, k, outer, scope, out, depth),
            Family::C => self.visit_c(node, k, outer, scope, out, depth),
        }
    }

    /// Builds a container symbol whose members come from walking `body`.
    #[allow(clippy::too_many_arguments)]
    fn container<'t>(
        &self,
        kind: SymbolKind,
        name: &str,
        sel: Node<'t>,
        outer: &Outer<'t>,
        sig_end: SigEnd,
        body: Option<Node<'t>>,
        in_type: bool,
        scope: Scope<'_>,
        depth: u32,
    ) -> Symbol {
        let mut children = Vec::new();
        if let Some(body) = body
            && self.wanted(body)
        {
            let inner = Scope {
                container: Some(name),
                in_type,
                top: !in_type,
            };
            self.walk_children(body, inner, &mut children, depth + 1);
        }
        self.make(kind, name, sel, outer, sig_end, scope.container, children)
    }

    /// Enum members (and, for Java, the members after the constants) of an enum body.
    fn enum_members(&self, body: Node<'_>, enum_name: &str, depth: u32) -> Vec<Symbol> {
        let mut members = Vec::new();
        if depth > MAX_DEPTH || !self.wanted(body) {
            return members;
        }
        let f = &self.t.f;
        let mut cursor = body.walk();
        if !cursor.goto_first_child() {
            return members;
        }
        loop {
            let node = cursor.node();
            if node.is_named() && self.wanted(node) {
                let k = self.kind(node);
                let name_node = match k {
                    K::EnumVariant | K::EnumAssignment | K::EnumConstant | K::Enumerator => {
                        field(node, f.name)
                    }
                    K::EnumBodyDeclarations => {
                        let scope = Scope {
                            container: Some(enum_name),
                            in_type: true,
                            top: false,
                        };
                        self.walk_children(node, scope, &mut members, depth + 1);
                        None
                    }
                    // TypeScript: plain members are the enum body's `name` children.
                    _ if self.fam == Family::Js
                        && f.name.is_some()
                        && cursor.field_id() == f.name =>
                    {
                        Some(node)
                    }
                    _ => None,
                };
                if let Some(name_node) = name_node
                    && let Some(name) = self.name_of(name_node)
                {
                    members.push(self.make(
                        SymbolKind::EnumMember,
                        name,
                        name_node,
                        &Outer::of(node),
                        SigEnd::FirstLine,
                        Some(enum_name),
                        Vec::new(),
                    ));
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
        members
    }

    // -----------------------------------------------------------------------
    // Rust
    // -----------------------------------------------------------------------

    fn visit_rust<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        let simple = |kind: SymbolKind, sig: SigEnd, out: &mut Vec<Symbol>| {
            if let Some(n) = field(node, f.name)
                && let Some(name) = self.name_of(n)
            {
                out.push(self.make(kind, name, n, &outer, sig, scope.container, Vec::new()));
            }
        };
        match k {
            K::FunctionItem | K::FunctionSignatureItem => {
                let kind = if scope.in_type {
                    SymbolKind::Method
                } else {
                    SymbolKind::Function
                };
                simple(kind, Self::body_end(field(node, f.body)), out);
            }
            K::StructItem | K::UnionItem => {
                simple(SymbolKind::Struct, Self::body_end(field(node, f.body)), out);
            }
            K::ConstItem | K::StaticItem => simple(SymbolKind::Constant, SigEnd::FirstLine, out),
            K::TypeItem | K::AssociatedType => {
                simple(SymbolKind::TypeAlias, SigEnd::FirstLine, out)
            }
            K::EnumItem => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let members = match body {
                    Some(b) => self.enum_members(b, name, depth + 1),
                    None => Vec::new(),
                };
                let sig = Self::body_end(body);
                out.push(self.make(
                    SymbolKind::Enum,
                    name,
                    n,
                    &outer,
                    sig,
                    scope.container,
                    members,
                ));
            }
            K::TraitItem | K::ModItem => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let (kind, in_type) = if k == K::TraitItem {
                    (SymbolKind::Trait, true)
                } else {
                    (SymbolKind::Module, false)
                };
                let sig = Self::body_end(body);
                out.push(self.container(kind, name, n, &outer, sig, body, in_type, scope, depth));
            }
            K::ImplItem => {
                let Some(ty) = field(node, f.ty) else { return };
                let n = self.base_type_name(ty);
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let sig = Self::body_end(body);
                out.push(self.container(
                    SymbolKind::Impl,
                    name,
                    n,
                    &outer,
                    sig,
                    body,
                    true,
                    scope,
                    depth,
                ));
            }
            K::ForeignModItem => {
                if let Some(body) = field(node, f.body) {
                    self.walk_children(body, scope, out, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// The node naming a type, without generics, paths, pointers or references.
    fn base_type_name<'t>(&self, mut node: Node<'t>) -> Node<'t> {
        let f = &self.t.f;
        for _ in 0..16 {
            let next = match self.kind(node) {
                K::GenericType => field(node, f.ty),
                K::TemplateType => field(node, f.name),
                K::ScopedTypeIdentifier | K::QualifiedType | K::QualifiedIdentifier => {
                    field(node, f.name)
                }
                K::ReferenceType => field(node, f.ty),
                K::PointerType => node.named_child(0),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    // -----------------------------------------------------------------------
    // Python
    // -----------------------------------------------------------------------

    fn visit_python<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        match k {
            K::FunctionDefinition | K::ClassDefinition => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let sig = match body {
                    Some(b) => SigEnd::Body(python_header_end(node, b)),
                    None => SigEnd::FirstLine,
                };
                if k == K::ClassDefinition {
                    out.push(self.container(
                        SymbolKind::Class,
                        name,
                        n,
                        &outer,
                        sig,
                        body,
                        true,
                        scope,
                        depth,
                    ));
                } else {
                    let kind = if scope.in_type {
                        SymbolKind::Method
                    } else {
                        SymbolKind::Function
                    };
                    out.push(self.make(kind, name, n, &outer, sig, scope.container, Vec::new()));
                }
            }
            K::DecoratedDefinition => {
                if let Some(def) = field(node, f.definition) {
                    self.visit(def, outer.wrap_sig_inner(def), scope, out, depth + 1);
                }
            }
            K::ExpressionStatement if scope.top => {
                let Some(assign) = node.named_child(0) else {
                    return;
                };
                if self.kind(assign) != K::Assignment {
                    return;
                }
                let Some(left) = field(assign, f.left) else {
                    return;
                };
                if self.kind(left) != K::Identifier {
                    return;
                }
                let Some(name) = self.name_of(left) else {
                    return;
                };
                if is_upper_case(name) {
                    out.push(self.make(
                        SymbolKind::Constant,
                        name,
                        left,
                        &outer,
                        SigEnd::FirstLine,
                        scope.container,
                        Vec::new(),
                    ));
                }
            }
            K::TypeAliasStatement => {
                let Some(left) = field(node, f.left) else {
                    return;
                };
                let n = match left.named_child(0) {
                    Some(c) if self.kind(c) == K::Identifier => c,
                    _ => left,
                };
                if let Some(name) = self.name_of(n) {
                    out.push(self.make(
                        SymbolKind::TypeAlias,
                        name,
                        n,
                        &outer,
                        SigEnd::FirstLine,
                        scope.container,
                        Vec::new(),
                    ));
                }
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------------
    // JavaScript / TypeScript / TSX
    // -----------------------------------------------------------------------

    fn visit_js<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        let fn_kind = if scope.in_type {
            SymbolKind::Method
        } else {
            SymbolKind::Function
        };
        match k {
            K::FunctionDeclaration | K::GeneratorFunctionDeclaration | K::FunctionSignature => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let sig = Self::body_end(field(node, f.body));
                out.push(self.make(fn_kind, name, n, &outer, sig, scope.container, Vec::new()));
            }
            K::ClassDeclaration
            | K::AbstractClassDeclaration
            | K::Class
            | K::InterfaceDeclaration
            | K::InternalModule
            | K::Module => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let (kind, in_type) = match k {
                    K::InterfaceDeclaration => (SymbolKind::Interface, true),
                    K::InternalModule | K::Module => (SymbolKind::Module, false),
                    _ => (SymbolKind::Class, true),
                };
                let sig = Self::body_end(body);
                out.push(self.container(kind, name, n, &outer, sig, body, in_type, scope, depth));
            }
            K::EnumDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let members = match body {
                    Some(b) => self.enum_members(b, name, depth + 1),
                    None => Vec::new(),
                };
                let sig = Self::body_end(body);
                out.push(self.make(
                    SymbolKind::Enum,
                    name,
                    n,
                    &outer,
                    sig,
                    scope.container,
                    members,
                ));
            }
            K::TypeAliasDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                out.push(self.make(
                    SymbolKind::TypeAlias,
                    name,
                    n,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
            }
            K::MethodDefinition | K::MethodSignature | K::AbstractMethodSignature => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let kind = if name == "constructor" {
                    SymbolKind::Constructor
                } else {
                    SymbolKind::Method
                };
                let sig = Self::body_end(field(node, f.body));
                out.push(self.make(kind, name, n, &outer, sig, scope.container, Vec::new()));
            }
            K::PublicFieldDefinition | K::FieldDefinition => {
                // Class fields holding functions (`onClick = () => {...}`) are methods.
                let name_field = if k == K::FieldDefinition {
                    f.property
                } else {
                    f.name
                };
                let Some(n) = field(node, name_field) else {
                    return;
                };
                let Some(value) = field(node, f.value) else {
                    return;
                };
                if !matches!(
                    self.kind(value),
                    K::ArrowFunction | K::FunctionExpression | K::GeneratorFunction
                ) {
                    return;
                }
                let Some(name) = self.name_of(n) else { return };
                let sig = Self::body_end(field(value, f.body));
                out.push(self.make(
                    SymbolKind::Method,
                    name,
                    n,
                    &outer,
                    sig,
                    scope.container,
                    Vec::new(),
                ));
            }
            K::ExportStatement => {
                if let Some(decl) = field(node, f.declaration) {
                    self.visit(decl, outer, scope, out, depth + 1);
                }
            }
            K::AmbientDeclaration => {
                // `declare function f(): void;`, `declare module "x" {}`, `declare const X`.
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    if !matches!(self.kind(child), K::Comment | K::Other) {
                        self.visit(child, outer, scope, out, depth + 1);
                        break;
                    }
                }
            }
            K::LexicalDeclaration | K::VariableDeclaration => {
                self.js_variables(node, outer, scope, out, depth);
            }
            _ => {}
        }
    }

    /// `const f = () => {}`, `let g = function () {}`, `const C = class {}`, `const X = 1`.
    fn js_variables<'t>(
        &self,
        decl: Node<'t>,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        let is_const = field(decl, f.kind).is_some_and(|k| k.kind() == "const");
        let (first, single) = {
            let mut cursor = decl.walk();
            let mut declarators = decl
                .named_children(&mut cursor)
                .filter(|d| self.kind(*d) == K::VariableDeclarator);
            (declarators.next(), declarators.next().is_none())
        };
        let mut cursor = decl.walk();
        let mut prefix = None;
        for d in decl.named_children(&mut cursor) {
            if self.kind(d) != K::VariableDeclarator || !self.wanted(d) {
                continue;
            }
            let before = out.len();
            self.js_declarator(d, is_const, single, outer, scope, out, depth);
            // `const a = 1, b = 2`: each symbol is one declarator; keep `const` in its signature.
            if !single && let Some(sym) = out.get_mut(before..).and_then(|s| s.first_mut()) {
                let first = first.unwrap_or(d);
                let prefix = prefix.get_or_insert_with(|| self.prefix(outer.sig_start, first));
                sym.signature = prefixed(prefix, std::mem::take(&mut sym.signature));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn js_declarator<'t>(
        &self,
        d: Node<'t>,
        is_const: bool,
        single: bool,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        let Some(n) = field(d, f.name) else { return };
        if self.kind(n) != K::Identifier {
            return;
        }
        let Some(name) = self.name_of(n) else {
            return;
        };
        let o = if single { outer } else { Outer::of(d) };
        let value = field(d, f.value);
        let value_kind = value.map(|v| self.kind(v)).unwrap_or(K::Other);
        match (value, value_kind) {
            (Some(v), K::ArrowFunction | K::FunctionExpression | K::GeneratorFunction) => {
                let kind = if scope.in_type {
                    SymbolKind::Method
                } else {
                    SymbolKind::Function
                };
                let sig = Self::body_end(field(v, f.body));
                out.push(self.make(kind, name, n, &o, sig, scope.container, Vec::new()));
            }
            (Some(v), K::Class) => {
                let body = field(v, f.body);
                let sig = Self::body_end(body);
                out.push(self.container(
                    SymbolKind::Class,
                    name,
                    n,
                    &o,
                    sig,
                    body,
                    true,
                    scope,
                    depth,
                ));
            }
            (Some(v), _) if self.require_source(v).is_some() => {}
            _ if is_const && scope.top => {
                out.push(self.make(
                    SymbolKind::Constant,
                    name,
                    n,
                    &o,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
            }
            _ => {}
        }
    }

    /// The module of `require("x")` or `require("x").member`.
    fn require_source(&self, value: Node<'_>) -> Option<&'a str> {
        let f = &self.t.f;
        let call = match self.kind(value) {
            K::CallExpression => value,
            K::MemberExpression => field(value, f.object)?,
            _ => return None,
        };
        if self.kind(call) != K::CallExpression {
            return None;
        }
        let callee = field(call, f.function)?;
        if self.text_of(callee)? != "require" {
            return None;
        }
        let arg = field(call, f.arguments)?.named_child(0)?;
        if self.kind(arg) != K::String {
            return None;
        }
        Some(strip_quotes(self.text_of(arg)?))
    }

    // -----------------------------------------------------------------------
    // Go
    // -----------------------------------------------------------------------

    fn visit_go<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        match k {
            K::FunctionDeclaration | K::MethodDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let sig = Self::body_end(field(node, f.body));
                let (kind, container) = if k == K::MethodDeclaration {
                    let receiver = field(node, f.receiver).and_then(|r| self.go_receiver(r));
                    (SymbolKind::Method, receiver.or(scope.container))
                } else {
                    (SymbolKind::Function, scope.container)
                };
                out.push(self.make(kind, name, n, &outer, sig, container, Vec::new()));
            }
            K::TypeDeclaration => {
                let mut cursor = node.walk();
                let single = node
                    .named_children(&mut cursor)
                    .filter(|s| matches!(self.kind(*s), K::TypeSpec | K::TypeAlias))
                    .count()
                    == 1;
                for spec in node.named_children(&mut cursor) {
                    let sk = self.kind(spec);
                    if !matches!(sk, K::TypeSpec | K::TypeAlias) || !self.wanted(spec) {
                        continue;
                    }
                    let o = if single { outer } else { Outer::of(spec) };
                    if let Some(mut sym) = self.go_type_spec(spec, sk, &o, scope, depth) {
                        if !single {
                            sym.signature = prefixed("type ", sym.signature);
                        }
                        out.push(sym);
                    }
                }
            }
            K::ConstDeclaration => {
                let mut cursor = node.walk();
                let specs: Vec<Node<'t>> = node
                    .named_children(&mut cursor)
                    .filter(|s| self.kind(*s) == K::ConstSpec)
                    .collect();
                let spec_count = specs.len();
                for spec in specs {
                    if !self.wanted(spec) {
                        continue;
                    }
                    let mut c = spec.walk();
                    let names: Vec<Node<'t>> = match f.name {
                        Some(id) => spec.children_by_field_id(id, &mut c).collect(),
                        None => Vec::new(),
                    };
                    let single = spec_count == 1 && names.len() == 1;
                    let o = if single { outer } else { Outer::of(spec) };
                    for n in names {
                        if self.kind(n) != K::Identifier {
                            continue;
                        }
                        let Some(name) = self.name_of(n) else {
                            continue;
                        };
                        let mut sym = self.make(
                            SymbolKind::Constant,
                            name,
                            n,
                            &o,
                            SigEnd::FirstLine,
                            scope.container,
                            Vec::new(),
                        );
                        if !single {
                            sym.signature = prefixed("const ", sym.signature);
                        }
                        out.push(sym);
                    }
                }
            }
            _ => {}
        }
    }

    fn go_type_spec(
        &self,
        spec: Node<'_>,
        sk: K,
        outer: &Outer<'_>,
        scope: Scope<'_>,
        depth: u32,
    ) -> Option<Symbol> {
        let f = &self.t.f;
        let n = field(spec, f.name)?;
        let name = self.name_of(n)?;
        let ty = field(spec, f.ty);
        let ty_kind = ty.map(|t| self.kind(t)).unwrap_or(K::Other);
        if sk == K::TypeAlias || !matches!(ty_kind, K::StructType | K::InterfaceType) {
            return Some(self.make(
                SymbolKind::TypeAlias,
                name,
                n,
                outer,
                SigEnd::FirstLine,
                scope.container,
                Vec::new(),
            ));
        }
        let ty = ty?;
        // The body starts at the `{` of `struct {` / `interface {`.
        let mut brace = None;
        let mut cursor = ty.walk();
        for child in ty.children(&mut cursor) {
            if child.kind() == "{" || self.kind(child) == K::FieldDeclarationList {
                brace = Some(child.start_byte());
                break;
            }
        }
        let sig = brace.map(SigEnd::Body).unwrap_or(SigEnd::FirstLine);
        if ty_kind == K::StructType {
            return Some(self.make(
                SymbolKind::Struct,
                name,
                n,
                outer,
                sig,
                scope.container,
                Vec::new(),
            ));
        }
        let mut methods = Vec::new();
        if depth < MAX_DEPTH && self.wanted(ty) {
            let mut cursor = ty.walk();
            for m in ty.named_children(&mut cursor) {
                if self.kind(m) != K::MethodElem || !self.wanted(m) {
                    continue;
                }
                let Some(mn) = field(m, f.name) else { continue };
                let Some(mname) = self.name_of(mn) else {
                    continue;
                };
                methods.push(self.make(
                    SymbolKind::Method,
                    mname,
                    mn,
                    &Outer::of(m),
                    SigEnd::FirstLine,
                    Some(name),
                    Vec::new(),
                ));
            }
        }
        Some(self.make(
            SymbolKind::Interface,
            name,
            n,
            outer,
            sig,
            scope.container,
            methods,
        ))
    }

    /// The receiver's type name without `*` or type parameters: `(c *Cache[K, V])` → `Cache`.
    fn go_receiver(&self, receiver: Node<'_>) -> Option<&'a str> {
        let param = receiver.named_child(0)?;
        let ty = field(param, self.t.f.ty)?;
        let base = self.base_type_name(ty);
        self.name_of(base)
    }

    // -----------------------------------------------------------------------
    // Java
    // -----------------------------------------------------------------------

    fn visit_java<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        match k {
            K::ClassDeclaration
            | K::RecordDeclaration
            | K::InterfaceDeclaration
            | K::AnnotationTypeDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let kind = match k {
                    K::InterfaceDeclaration | K::AnnotationTypeDeclaration => SymbolKind::Interface,
                    _ => SymbolKind::Class,
                };
                let sig = Self::body_end(body);
                out.push(self.container(kind, name, n, &outer, sig, body, true, scope, depth));
            }
            K::EnumDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let members = match body {
                    Some(b) => self.enum_members(b, name, depth + 1),
                    None => Vec::new(),
                };
                let sig = Self::body_end(body);
                out.push(self.make(
                    SymbolKind::Enum,
                    name,
                    n,
                    &outer,
                    sig,
                    scope.container,
                    members,
                ));
            }
            K::MethodDeclaration
            | K::AnnotationTypeElementDeclaration
            | K::ConstructorDeclaration
            | K::CompactConstructorDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let kind = match k {
                    K::ConstructorDeclaration | K::CompactConstructorDeclaration => {
                        SymbolKind::Constructor
                    }
                    _ if scope.in_type => SymbolKind::Method,
                    _ => SymbolKind::Function,
                };
                let sig = Self::body_end(field(node, f.body));
                out.push(self.make(kind, name, n, &outer, sig, scope.container, Vec::new()));
            }
            K::FieldDeclaration | K::ConstantDeclaration => {
                if k == K::FieldDeclaration && !self.java_static_final(node) {
                    return;
                }
                let Some(id) = f.declarator else { return };
                let mut cursor = node.walk();
                let declarators: Vec<Node<'t>> =
                    node.children_by_field_id(id, &mut cursor).collect();
                let single = declarators.len() == 1;
                let prefix = match declarators.first() {
                    Some(first) if !single => self.prefix(outer.sig_start, *first),
                    _ => String::new(),
                };
                for d in declarators {
                    let Some(n) = field(d, f.name) else { continue };
                    let Some(name) = self.name_of(n) else {
                        continue;
                    };
                    let o = if single { outer } else { Outer::of(d) };
                    let mut sym = self.make(
                        SymbolKind::Constant,
                        name,
                        n,
                        &o,
                        SigEnd::FirstLine,
                        scope.container,
                        Vec::new(),
                    );
                    if !single {
                        sym.signature = prefixed(&prefix, sym.signature);
                    }
                    out.push(sym);
                }
            }
            _ => {}
        }
    }

    fn java_static_final(&self, node: Node<'_>) -> bool {
        let mut cursor = node.walk();
        let Some(mods) = node
            .named_children(&mut cursor)
            .find(|c| self.kind(*c) == K::Modifiers)
        else {
            return false;
        };
        let (mut is_static, mut is_final) = (false, false);
        let mut c = mods.walk();
        for m in mods.children(&mut c) {
            match m.kind() {
                "static" => is_static = true,
                "final" => is_final = true,
                _ => {}
            }
        }
        is_static && is_final
    }

    // -----------------------------------------------------------------------
    // C / C++
    // -----------------------------------------------------------------------

    fn visit_c<'t>(
        &self,
        node: Node<'t>,
        k: K,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        match k {
            K::FunctionDefinition => {
                let Some(decl) = field(node, f.declarator) else {
                    return;
                };
                let Some(d) = self.c_declarator(decl) else {
                    return;
                };
                let Some(name) = self.name_of(d.name) else {
                    return;
                };
                let qualifier = d.scope.and_then(|s| self.name_of(self.base_type_name(s)));
                let (kind, container) = self.c_function_kind(name, qualifier, scope);
                let sig = Self::body_end(field(node, f.body));
                out.push(self.make(kind, name, d.name, &outer, sig, container, Vec::new()));
            }
            K::Declaration | K::FieldDeclaration => {
                if let Some(ty) = field(node, f.ty)
                    && self.c_type_has_body(ty)
                {
                    self.visit(ty, Outer::of(ty), scope, out, depth + 1);
                    return;
                }
                // Member function declarations inside C++ class bodies.
                if !scope.in_type {
                    return;
                }
                let Some(decl) = field(node, f.declarator) else {
                    return;
                };
                let Some(d) = self.c_declarator(decl) else {
                    return;
                };
                if !d.is_function {
                    return;
                }
                let Some(name) = self.name_of(d.name) else {
                    return;
                };
                let (kind, container) = self.c_function_kind(name, None, scope);
                out.push(self.make(
                    kind,
                    name,
                    d.name,
                    &outer,
                    SigEnd::FirstLine,
                    container,
                    Vec::new(),
                ));
            }
            K::StructSpecifier | K::UnionSpecifier | K::ClassSpecifier | K::EnumSpecifier => {
                let Some(body) = field(node, f.body) else {
                    return;
                };
                let Some(n) = field(node, f.name) else { return };
                let n = self.base_type_name(n);
                let Some(name) = self.name_of(n) else { return };
                out.push(self.c_record(k, name, n, &outer, body, scope, depth));
            }
            K::TypeDefinition => self.c_typedef(node, outer, scope, out, depth),
            K::AliasDeclaration => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                out.push(self.make(
                    SymbolKind::TypeAlias,
                    name,
                    n,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
            }
            K::NamespaceDefinition => {
                let body = field(node, f.body);
                let named = field(node, f.name).and_then(|n| Some((n, self.name_of(n)?)));
                match (named, body) {
                    (Some((n, name)), _) => {
                        let sig = Self::body_end(body);
                        out.push(self.container(
                            SymbolKind::Namespace,
                            name,
                            n,
                            &outer,
                            sig,
                            body,
                            false,
                            scope,
                            depth,
                        ));
                    }
                    // Anonymous namespaces are transparent.
                    (None, Some(body)) => self.walk_children(body, scope, out, depth + 1),
                    (None, None) => {}
                }
            }
            K::TemplateDeclaration => {
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    let ck = self.kind(child);
                    if matches!(
                        ck,
                        K::FunctionDefinition
                            | K::Declaration
                            | K::FieldDeclaration
                            | K::ClassSpecifier
                            | K::StructSpecifier
                            | K::UnionSpecifier
                            | K::EnumSpecifier
                            | K::AliasDeclaration
                            | K::TemplateDeclaration
                            | K::TypeDefinition
                    ) {
                        self.visit(child, outer, scope, out, depth + 1);
                        break;
                    }
                }
            }
            K::LinkageSpecification => {
                if let Some(body) = field(node, f.body) {
                    if self.kind(body) == K::DeclarationList {
                        // `extern "C" { ... }`: a declaration list.
                        self.walk_children(body, scope, out, depth + 1);
                    } else {
                        self.visit(body, Outer::of(body), scope, out, depth + 1);
                    }
                }
            }
            K::PreprocBlock => self.walk_children(node, scope, out, depth + 1),
            K::PreprocDef => {
                if field(node, f.value).is_none() {
                    return;
                }
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                out.push(self.make(
                    SymbolKind::Constant,
                    name,
                    n,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
            }
            _ => {}
        }
    }

    fn c_function_kind<'s>(
        &self,
        name: &str,
        qualifier: Option<&'s str>,
        scope: Scope<'s>,
    ) -> (SymbolKind, Option<&'s str>) {
        let owner = qualifier.or(if scope.in_type { scope.container } else { None });
        match owner {
            Some(owner) if owner == name => {
                (SymbolKind::Constructor, qualifier.or(scope.container))
            }
            Some(_) => (SymbolKind::Method, qualifier.or(scope.container)),
            None => (SymbolKind::Function, scope.container),
        }
    }

    fn c_type_has_body(&self, ty: Node<'_>) -> bool {
        matches!(
            self.kind(ty),
            K::StructSpecifier | K::UnionSpecifier | K::ClassSpecifier | K::EnumSpecifier
        ) && field(ty, self.t.f.body).is_some()
    }

    /// A struct / union / class / enum with a body.
    #[allow(clippy::too_many_arguments)]
    fn c_record<'t>(
        &self,
        k: K,
        name: &str,
        sel: Node<'t>,
        outer: &Outer<'t>,
        body: Node<'t>,
        scope: Scope<'_>,
        depth: u32,
    ) -> Symbol {
        let sig = SigEnd::Body(body.start_byte());
        match k {
            K::EnumSpecifier => {
                let members = self.enum_members(body, name, depth + 1);
                self.make(
                    SymbolKind::Enum,
                    name,
                    sel,
                    outer,
                    sig,
                    scope.container,
                    members,
                )
            }
            _ => {
                let kind = if k == K::ClassSpecifier {
                    SymbolKind::Class
                } else {
                    SymbolKind::Struct
                };
                // Only C++ records have members worth listing (methods, nested types).
                let body = (self.lang == Language::Cpp).then_some(body);
                self.container(kind, name, sel, outer, sig, body, true, scope, depth)
            }
        }
    }

    fn c_typedef<'t>(
        &self,
        node: Node<'t>,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        let f = &self.t.f;
        let Some(decl_id) = f.declarator else { return };
        let ty = field(node, f.ty);
        let mut cursor = node.walk();
        let names: Vec<Node<'t>> = node
            .children_by_field_id(decl_id, &mut cursor)
            .filter_map(|d| self.c_declarator(d).map(|d| d.name))
            .collect();
        if let Some(ty) = ty
            && self.c_type_has_body(ty)
            && let Some(body) = field(ty, f.body)
        {
            let tk = self.kind(ty);
            match field(ty, f.name) {
                // `typedef struct node {...} node_t;`: the struct and the alias.
                Some(tn) => {
                    for n in &names {
                        if let Some(name) = self.name_of(*n) {
                            out.push(self.make(
                                SymbolKind::TypeAlias,
                                name,
                                *n,
                                &outer,
                                SigEnd::Body(body.start_byte()),
                                scope.container,
                                Vec::new(),
                            ));
                        }
                    }
                    let tn = self.base_type_name(tn);
                    if let Some(name) = self.name_of(tn) {
                        out.push(self.c_record(tk, name, tn, &Outer::of(ty), body, scope, depth));
                    }
                }
                // `typedef struct {...} point_t;`: the struct takes the typedef's name.
                None => {
                    if let Some(n) = names.first()
                        && let Some(name) = self.name_of(*n)
                    {
                        out.push(self.c_record(tk, name, *n, &outer, body, scope, depth));
                    }
                }
            }
            return;
        }
        for n in names {
            if let Some(name) = self.name_of(n) {
                out.push(self.make(
                    SymbolKind::TypeAlias,
                    name,
                    n,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
            }
        }
    }

    /// Follows a declarator chain (pointers, references, parentheses, function
    /// declarators, qualified names) down to the declared name.
    fn c_declarator<'t>(&self, mut node: Node<'t>) -> Option<CDeclarator<'t>> {
        let f = &self.t.f;
        let mut is_function = false;
        let mut scope = None;
        for _ in 0..32 {
            node = match self.kind(node) {
                K::FunctionDeclarator => {
                    is_function = true;
                    field(node, f.declarator)?
                }
                K::PointerDeclarator | K::ArrayDeclarator | K::InitDeclarator => {
                    is_function = false;
                    field(node, f.declarator)?
                }
                K::ReferenceDeclarator | K::ParenthesizedDeclarator | K::AttributedDeclarator => {
                    is_function = false;
                    node.named_child(0)?
                }
                K::QualifiedIdentifier => {
                    scope = field(node, f.scope).or(scope);
                    field(node, f.name)?
                }
                K::TemplateFunction | K::TemplateMethod => field(node, f.name)?,
                K::Identifier
                | K::TypeIdentifier
                | K::FieldIdentifier
                | K::DestructorName
                | K::OperatorName => {
                    return Some(CDeclarator {
                        name: node,
                        scope,
                        is_function,
                    });
                }
                _ => return None,
            };
        }
        None
    }

    // -----------------------------------------------------------------------
    // Imports
    // -----------------------------------------------------------------------

    fn imports_in(&self, parent: Node<'_>, out: &mut Vec<Import>, depth: u32) {
        if depth > MAX_DEPTH {
            return;
        }
        let f = &self.t.f;
        let mut cursor = parent.walk();
        if !cursor.goto_first_child() {
            return;
        }
        loop {
            let node = cursor.node();
            if node.is_named() {
                let k = self.kind(node);
                match (self.fam, k) {
                    (_, K::Error) => self.imports_in(node, out, depth + 1),
                    (Family::Rust, K::UseDeclaration) => {
                        let module = field(node, f.argument).and_then(|a| self.rust_use_module(a));
                        self.push_import(node, module, out);
                    }
                    (Family::Rust, K::ExternCrate) => {
                        let module = field(node, f.name).and_then(|n| self.name_of(n));
                        self.push_import(node, module.map(str::to_owned), out);
                    }
                    (Family::Rust, K::ModItem) => {
                        if let Some(body) = field(node, f.body) {
                            self.imports_in(body, out, depth + 1);
                        }
                    }
                    (Family::Python, K::ImportStatement) => {
                        let mut c = node.walk();
                        let mut any = false;
                        if let Some(id) = f.name {
                            for name in node.children_by_field_id(id, &mut c) {
                                let name = if self.kind(name) == K::AliasedImport {
                                    field(name, f.name).unwrap_or(name)
                                } else {
                                    name
                                };
                                let module = self.name_of(name).map(str::to_owned);
                                self.push_import(node, module, out);
                                any = true;
                            }
                        }
                        if !any {
                            self.push_import(node, None, out);
                        }
                    }
                    (Family::Python, K::ImportFromStatement) => {
                        let module = field(node, f.module_name).and_then(|m| self.name_of(m));
                        self.push_import(node, module.map(str::to_owned), out);
                    }
                    (Family::Python, K::FutureImportStatement) => {
                        self.push_import(node, Some("__future__".to_owned()), out);
                    }
                    (Family::Js, K::ImportStatement) => {
                        let source = field(node, f.source).or_else(|| {
                            let mut c = node.walk();
                            node.named_children(&mut c)
                                .find(|n| self.kind(*n) == K::ImportRequireClause)
                                .and_then(|r| field(r, f.source))
                        });
                        let module = source.and_then(|s| self.name_of(s));
                        self.push_import(node, module.map(str::to_owned), out);
                    }
                    (Family::Js, K::ExportStatement) => {
                        // Re-exports: `export { a } from "./a"`, `export * from "./b"`.
                        if let Some(source) = field(node, f.source) {
                            let module = self.name_of(source).map(str::to_owned);
                            self.push_import(node, module, out);
                        }
                    }
                    (Family::Js, K::LexicalDeclaration | K::VariableDeclaration) => {
                        let mut c = node.walk();
                        for d in node.named_children(&mut c) {
                            if self.kind(d) == K::VariableDeclarator
                                && let Some(v) = field(d, f.value)
                                && let Some(module) = self.require_source(v)
                            {
                                self.push_import(node, Some(module.to_owned()), out);
                            }
                        }
                    }
                    (Family::Js, K::ExpressionStatement) => {
                        if let Some(e) = node.named_child(0)
                            && let Some(module) = self.require_source(e)
                        {
                            self.push_import(node, Some(module.to_owned()), out);
                        }
                    }
                    (Family::Go, K::ImportDeclaration) => {
                        let mut c = node.walk();
                        for child in node.named_children(&mut c) {
                            match self.kind(child) {
                                K::ImportSpec => {
                                    let module = self.go_import_path(child);
                                    self.push_import(node, module, out);
                                }
                                K::ImportSpecList => {
                                    let mut c2 = child.walk();
                                    for spec in child.named_children(&mut c2) {
                                        if self.kind(spec) != K::ImportSpec {
                                            continue;
                                        }
                                        let module = self.go_import_path(spec);
                                        let text = self.text_of(spec).unwrap_or("");
                                        out.push(Import {
                                            text: prefixed("import ", one_line_full(text)),
                                            range: Span::from_node(&spec),
                                            module,
                                        });
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    (Family::Java, K::ImportDeclaration) => {
                        let module = self.java_import_module(node);
                        self.push_import(node, module, out);
                    }
                    (Family::C, K::PreprocInclude) => {
                        let module = field(node, f.path).and_then(|p| {
                            let t = self.text_of(p)?.trim();
                            let t = t
                                .strip_prefix('<')
                                .and_then(|t| t.strip_suffix('>'))
                                .unwrap_or_else(|| strip_quotes(t));
                            (!t.is_empty()).then(|| t.to_owned())
                        });
                        self.push_import(node, module, out);
                    }
                    (Family::C, K::PreprocBlock) => self.imports_in(node, out, depth + 1),
                    (Family::C, K::LinkageSpecification) => {
                        if let Some(body) = field(node, f.body) {
                            self.imports_in(body, out, depth + 1);
                        }
                    }
                    _ => {}
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }

    fn push_import(&self, node: Node<'_>, module: Option<String>, out: &mut Vec<Import>) {
        out.push(Import {
            text: one_line_full(self.text_of(node).unwrap_or("")),
            range: Span::from_node(&node),
            module,
        });
    }

    /// `std::collections::HashMap` → `std::collections`; `std::fmt::{self, Display}` →
    /// `std::fmt`; `crate::util::*` → `crate::util`; `serde` → `serde`.
    fn rust_use_module(&self, arg: Node<'_>) -> Option<String> {
        let f = &self.t.f;
        let path = match self.kind(arg) {
            K::ScopedIdentifier | K::ScopedUseList => field(arg, f.path)?,
            K::UseAsClause => return self.rust_use_module(field(arg, f.path)?),
            K::UseWildcard => arg.named_child(0)?,
            K::UseList => return None,
            _ => arg,
        };
        self.name_of(path).map(str::to_owned)
    }

    fn go_import_path(&self, spec: Node<'_>) -> Option<String> {
        let path = field(spec, self.t.f.path)?;
        let text = strip_quotes(self.text_of(path)?.trim());
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// `java.util.List` → `java.util.List`; `java.util.*` → `java.util`;
    /// `static org.junit.Assert.assertEquals` → `org.junit.Assert`.
    fn java_import_module(&self, node: Node<'_>) -> Option<String> {
        let mut cursor = node.walk();
        let (mut path, mut is_static, mut wildcard) = (None, false, false);
        for child in node.children(&mut cursor) {
            match self.kind(child) {
                K::ScopedIdentifier | K::Identifier => path = Some(child),
                K::Asterisk => wildcard = true,
                _ if child.kind() == "static" => is_static = true,
                _ => {}
            }
        }
        let text = self.text_of(path?)?;
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if is_static
            && !wildcard
            && let Some((owner, _member)) = text.rsplit_once('.')
        {
            return Some(owner.to_owned());
        }
        Some(text)
    }
}

struct CDeclarator<'t> {
    name: Node<'t>,
    /// The `Foo` of `Foo::bar`.
    scope: Option<Node<'t>>,
    /// The name is declared directly by a function declarator (not a function pointer).
    is_function: bool,
}

/// End of a Python `def`/`class` header: just after the `:` before the body.
fn python_header_end(def: Node<'_>, body: Node<'_>) -> usize {
    let mut end = body.start_byte();
    let mut cursor = def.walk();
    for child in def.children(&mut cursor) {
        if child.start_byte() >= body.start_byte() {
            break;
        }
        if child.kind() == ":" {
            end = child.end_byte();
        }
    }
    end
}
