//! Go symbols (functions, methods, types, interfaces, constants) and imports.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, MAX_DEPTH, Outer, Scope, SigEnd};
use crate::analysis::text::{one_line_full, prefixed, strip_quotes};
use crate::analysis::{Import, Span, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    pub(super) fn visit_go<'t>(
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
            let mut fields = Vec::new();
            if self.target.is_none() {
                let mut cursor = ty.walk();
                let list = ty
                    .named_children(&mut cursor)
                    .find(|c| self.kind(*c) == K::FieldDeclarationList);
                if let Some(list) = list {
                    let mut c2 = list.walk();
                    for decl in list.named_children(&mut c2) {
                        if self.kind(decl) != K::FieldDeclaration {
                            continue;
                        }
                        let mut c3 = decl.walk();
                        let names: Vec<Node<'_>> = match f.name {
                            Some(id) => decl.children_by_field_id(id, &mut c3).collect(),
                            None => Vec::new(),
                        };
                        for fname_node in names {
                            if let Some(fname) = self.name_of(fname_node) {
                                fields.push(self.make(
                                    SymbolKind::Field,
                                    fname,
                                    fname_node,
                                    &Outer::of(decl),
                                    SigEnd::FirstLine,
                                    Some(name),
                                    Vec::new(),
                                ));
                            }
                        }
                    }
                }
            }
            return Some(self.make(
                SymbolKind::Struct,
                name,
                n,
                outer,
                sig,
                scope.container,
                fields,
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

    /// Go imports: one `import` or a parenthesized list.
    pub(super) fn imports_go(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, _depth: u32) {
        if k == K::ImportDeclaration {
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
    }

    fn go_import_path(&self, spec: Node<'_>) -> Option<String> {
        let path = field(spec, self.t.f.path)?;
        let text = strip_quotes(self.text_of(path)?.trim());
        (!text.is_empty()).then(|| text.to_owned())
    }
}
