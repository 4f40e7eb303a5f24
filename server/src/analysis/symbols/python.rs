//! Python symbols (functions, classes, decorated definitions, module constants, variables and
//! type aliases, class attributes and the attributes `__init__` assigns) and imports.

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
                    // The attributes `__init__` assigns are the class's (not while looking
                    // for the scopes enclosing a byte: they are not scopes).
                    if scope.in_type
                        && name == "__init__"
                        && self.target.is_none()
                        && let Some(body) = body
                    {
                        self.init_attributes(body, scope.container, out);
                    }
                }
            }
            K::DecoratedDefinition => {
                if let Some(def) = field(node, f.definition) {
                    self.visit(def, outer.wrap_sig_inner(def), scope, out, depth + 1);
                }
            }
            K::ExpressionStatement if scope.top || scope.in_type => {
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
                let kind = if scope.in_type {
                    SymbolKind::Field
                } else {
                    let annotation = field(assign, f.ty).and_then(|t| self.text_of(t));
                    let subscript = field(assign, f.right).is_some_and(|r| r.kind() == "subscript");
                    assignment_kind(name, annotation, subscript)
                };
                out.push(self.make(
                    kind,
                    name,
                    left,
                    &outer,
                    SigEnd::FirstLine,
                    scope.container,
                    Vec::new(),
                ));
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
/// The kind of a module-level assignment `name[: annotation] = value`: a type alias when
/// annotated `TypeAlias` or when a capitalised name is given a subscripted type
/// (`Headers = Union[…]`), a constant when the name is upper case, else a variable. The tag
/// scanner uses the same rule.
pub(crate) fn assignment_kind(name: &str, annotation: Option<&str>, subscript: bool) -> SymbolKind {
    let annotation = annotation.map(str::trim).unwrap_or("");
    if annotation == "TypeAlias" || annotation.ends_with(".TypeAlias") {
        SymbolKind::TypeAlias
    } else if is_upper_case(name) {
        SymbolKind::Constant
    } else if subscript && name.starts_with(|c: char| c.is_ascii_uppercase()) {
        SymbolKind::TypeAlias
    } else {
        SymbolKind::Variable
    }
}

impl<'a> Ctx<'a> {
    /// `self.name = …` statements directly in `__init__`'s body: fields of the class, the
    /// first assignment of each name.
    fn init_attributes(&self, body: Node<'_>, class: Option<&str>, out: &mut Vec<Symbol>) {
        let f = &self.t.f;
        let mut seen: Vec<&str> = Vec::new();
        let mut cursor = body.walk();
        for stmt in body.named_children(&mut cursor) {
            if self.kind(stmt) != K::ExpressionStatement {
                continue;
            }
            let Some(assign) = stmt
                .named_child(0)
                .filter(|a| self.kind(*a) == K::Assignment)
            else {
                continue;
            };
            let Some(left) = field(assign, f.left).filter(|l| l.kind() == "attribute") else {
                continue;
            };
            let (Some(object), Some(attr)) =
                (field(left, f.object), left.child_by_field_name("attribute"))
            else {
                continue;
            };
            if self.text_of(object) != Some("self") {
                continue;
            }
            let Some(name) = self.name_of(attr) else {
                continue;
            };
            if seen.contains(&name)
                || out
                    .iter()
                    .any(|s| s.name == name && s.kind == SymbolKind::Field)
            {
                continue;
            }
            seen.push(name);
            out.push(self.make(
                SymbolKind::Field,
                name,
                attr,
                &Outer::of(stmt),
                SigEnd::FirstLine,
                class,
                Vec::new(),
            ));
        }
    }
}

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
