//! Python symbols (functions, classes, decorated definitions, module constants, type aliases) and imports.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, Outer, Scope, SigEnd};
use crate::analysis::text::is_upper_case;
use crate::analysis::{Import, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    pub(super) fn visit_python<'t>(
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

    /// Python imports: `import`, `from ... import`, `from __future__ import`.
    pub(super) fn imports_python(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, _depth: u32) {
        let f = &self.t.f;
        match k {
            K::ImportStatement => {
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
            K::ImportFromStatement => {
                let module = field(node, f.module_name).and_then(|m| self.name_of(m));
                self.push_import(node, module.map(str::to_owned), out);
            }
            K::FutureImportStatement => {
                self.push_import(node, Some("__future__".to_owned()), out);
            }
            _ => {}
        }
    }
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
