//! Java symbols (classes, records, interfaces, enums, methods, constructors, static final constants) and imports.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, Outer, Scope, SigEnd};
use crate::analysis::text::prefixed;
use crate::analysis::{Import, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    pub(super) fn visit_java<'t>(
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
                // `static final` fields (and interface fields) are constants, others fields.
                let kind = if k == K::FieldDeclaration && !self.java_static_final(node) {
                    SymbolKind::Field
                } else {
                    SymbolKind::Constant
                };
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
                        kind,
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

    /// Java imports.
    pub(super) fn imports_java(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, _depth: u32) {
        if k == K::ImportDeclaration {
            let module = self.java_import_module(node);
            self.push_import(node, module, out);
        }
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
