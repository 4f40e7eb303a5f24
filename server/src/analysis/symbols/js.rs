//! JavaScript / TypeScript / TSX symbols (functions, classes, interfaces, enums, variables) and imports.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, Outer, Scope, SigEnd};
use crate::analysis::text::{prefixed, strip_quotes};
use crate::analysis::{Import, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    pub(super) fn visit_js<'t>(
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
                // `type X = { … }`: the type literal's members are X's.
                let mut members = Vec::new();
                if let Some(value) = field(node, f.value)
                    && value.kind() == "object_type"
                    && self.wanted(value)
                {
                    let inner = Scope {
                        container: Some(name),
                        in_type: true,
                        top: false,
                    };
                    self.walk_children(value, inner, &mut members, depth + 1);
                }
                out.push(self.make(
                    SymbolKind::TypeAlias,
                    name,
                    n,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    members,
                ));
            }
            K::PropertySignature if scope.in_type && self.target.is_none() => {
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                if name.starts_with('[') {
                    return;
                }
                out.push(self.make(
                    SymbolKind::Field,
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
                let Some(name) = self.name_of(n) else { return };
                let value = field(node, f.value);
                let Some(value) = value.filter(|v| {
                    matches!(
                        self.kind(*v),
                        K::ArrowFunction | K::FunctionExpression | K::GeneratorFunction
                    )
                }) else {
                    // Any other class field.
                    if scope.in_type && !name.starts_with('[') {
                        out.push(self.make(
                            SymbolKind::Field,
                            name,
                            n,
                            &outer,
                            SigEnd::FirstLine,
                            scope.container,
                            Vec::new(),
                        ));
                    }
                    return;
                };
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

    /// JavaScript / TypeScript imports: `import`, re-exports, `require("x")`.
    pub(super) fn imports_js(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, _depth: u32) {
        let f = &self.t.f;
        match k {
            K::ImportStatement => {
                let source = field(node, f.source).or_else(|| {
                    let mut c = node.walk();
                    node.named_children(&mut c)
                        .find(|n| self.kind(*n) == K::ImportRequireClause)
                        .and_then(|r| field(r, f.source))
                });
                let module = source.and_then(|s| self.name_of(s));
                self.push_import(node, module.map(str::to_owned), out);
            }
            K::ExportStatement => {
                // Re-exports: `export { a } from "./a"`, `export * from "./b"`.
                if let Some(source) = field(node, f.source) {
                    let module = self.name_of(source).map(str::to_owned);
                    self.push_import(node, module, out);
                }
            }
            K::LexicalDeclaration | K::VariableDeclaration => {
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
            K::ExpressionStatement => {
                if let Some(e) = node.named_child(0)
                    && let Some(module) = self.require_source(e)
                {
                    self.push_import(node, Some(module.to_owned()), out);
                }
            }
            _ => {}
        }
    }
}
