//! Rust symbols (functions, structs and their fields, enums, traits, impls, modules) and `use`
//! / `extern crate` imports.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, Outer, Scope, SigEnd};
use crate::analysis::{Import, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    /// The named fields of a struct's `{ … }` body.
    fn rust_fields(&self, body: Node<'_>, struct_name: &str) -> Vec<Symbol> {
        let f = &self.t.f;
        let mut out = Vec::new();
        let mut cursor = body.walk();
        for child in body.named_children(&mut cursor) {
            if self.kind(child) != K::FieldDeclaration {
                continue;
            }
            if let Some(n) = field(child, f.name)
                && let Some(name) = self.name_of(n)
            {
                out.push(self.make(
                    SymbolKind::Field,
                    name,
                    n,
                    &Outer::of(child),
                    SigEnd::FirstLine,
                    Some(struct_name),
                    Vec::new(),
                ));
            }
        }
        out
    }

    pub(super) fn visit_rust<'t>(
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
                let Some(n) = field(node, f.name) else { return };
                let Some(name) = self.name_of(n) else { return };
                let body = field(node, f.body);
                let fields = match body {
                    Some(b) if self.kind(b) == K::FieldDeclarationList && self.target.is_none() => {
                        self.rust_fields(b, name)
                    }
                    _ => Vec::new(),
                };
                let sig = Self::body_end(body);
                out.push(self.make(
                    SymbolKind::Struct,
                    name,
                    n,
                    &outer,
                    sig,
                    scope.container,
                    fields,
                ));
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

    /// Rust imports: `use`, `extern crate`, and those of inline modules.
    pub(super) fn imports_rust(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, depth: u32) {
        let f = &self.t.f;
        match k {
            K::UseDeclaration => {
                let module = field(node, f.argument).and_then(|a| self.rust_use_module(a));
                self.push_import(node, module, out);
            }
            K::ExternCrate => {
                let module = field(node, f.name).and_then(|n| self.name_of(n));
                self.push_import(node, module.map(str::to_owned), out);
            }
            K::ModItem => {
                if let Some(body) = field(node, f.body) {
                    self.imports_in(body, out, depth + 1);
                }
            }
            _ => {}
        }
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
}
