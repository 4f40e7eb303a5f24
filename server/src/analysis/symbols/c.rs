//! C and C++ symbols (functions, records, enums, typedefs, namespaces, templates, `#define`s) and `#include`s.

use tree_sitter::Node;

use super::kinds::{K, field};
use super::{Ctx, Outer, Scope, SigEnd};
use crate::analysis::text::strip_quotes;
use crate::analysis::{Import, Language, Symbol, SymbolKind};

impl<'a> Ctx<'a> {
    pub(super) fn visit_c<'t>(
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

    /// C / C++ includes, also inside preprocessor blocks and `extern "C"` bodies.
    pub(super) fn imports_c(&self, node: Node<'_>, k: K, out: &mut Vec<Import>, depth: u32) {
        let f = &self.t.f;
        match k {
            K::PreprocInclude => {
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
            K::PreprocBlock => self.imports_in(node, out, depth + 1),
            K::LinkageSpecification => {
                if let Some(body) = field(node, f.body) {
                    self.imports_in(body, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

struct CDeclarator<'t> {
    name: Node<'t>,
    /// The `Foo` of `Foo::bar`.
    scope: Option<Node<'t>>,
    /// The name is declared directly by a function declarator (not a function pointer).
    is_function: bool,
}
