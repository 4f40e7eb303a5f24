//! Name resolution for context capture: each name the code at the cursor uses → the
//! definitions it means, through local bindings, the file's scope and imports (re-exports
//! followed), qualifiers, and receiver types (`self` / `this`, typed variables, constructor
//! calls, fields, base classes), before any guess by bare name.

use std::cell::Cell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analysis::{Language, SymbolKind, Syntax};
use crate::index::WorkspaceIndex;

use super::lang::{CodeFacts, Files, ImportBinding, Reference, Rules, Shape, rules};
use super::outline::FileOutline;

/// What resolution reads: file outlines, module resolution and the index.
pub(crate) trait Env {
    /// The outline of a file (its current text: the open buffer, else the disk).
    fn outline(&self, path: &Path) -> Option<Arc<FileOutline>>;
    /// The files a module path names, from `from` (cached).
    fn module_files(
        &self,
        rules: &dyn Rules,
        language: Language,
        module: &str,
        from: &Path,
    ) -> Vec<PathBuf>;
    fn files(&self) -> &dyn Files;
    fn index(&self) -> &WorkspaceIndex;
}

/// What a name resolves to.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A definition in a file.
    Def(Arc<FileOutline>, u32),
    /// A module: the files it is made of.
    Module(Vec<PathBuf>),
}

/// How a reference came out.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Bound inside the code: not looked up.
    Local,
    /// Resolved (possibly to several definitions: overloads, `impl` blocks).
    Found(Vec<Target>),
    /// Not resolved: a guess by bare name may follow.
    Unresolved,
}

/// A place members are looked for.
#[derive(Debug, Clone)]
enum Scope {
    Files(Vec<PathBuf>),
    Type(Arc<FileOutline>, u32),
}

/// How many re-exports and bases are followed.
const MAX_DEPTH: u32 = 8;
/// How deeply chains may lead to chains (a variable's type is a field's type is...).
const MAX_CHAIN_DEPTH: u32 = 12;
/// How many lookups one resolver may do (guards against pathological graphs).
const MAX_STEPS: u32 = 4000;

/// Kinds that name a type (members are looked up in them).
pub(crate) fn is_type_kind(kind: SymbolKind) -> bool {
    matches!(
        kind,
        SymbolKind::Class
            | SymbolKind::Struct
            | SymbolKind::Enum
            | SymbolKind::Interface
            | SymbolKind::Trait
            | SymbolKind::TypeAlias
            | SymbolKind::Impl
    )
}

/// Resolves the references of one piece of code in one file.
pub(crate) struct Resolver<'a> {
    env: &'a dyn Env,
    file: Arc<FileOutline>,
    tree: Option<&'a Syntax>,
    facts: &'a CodeFacts,
    /// The type `self` / `this` is in the code.
    this_type: Vec<(Arc<FileOutline>, u32)>,
    steps: Cell<u32>,
    /// How deeply chains are being resolved inside one another.
    chain_depth: Cell<u32>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(
        env: &'a dyn Env,
        file: Arc<FileOutline>,
        tree: Option<&'a Syntax>,
        facts: &'a CodeFacts,
    ) -> Resolver<'a> {
        Resolver {
            env,
            file,
            tree,
            facts,
            this_type: Vec::new(),
            steps: Cell::new(0),
            chain_depth: Cell::new(0),
        }
    }

    /// Sets the type of `self` / `this`: the class (or the type of the `impl`) whose
    /// definition `name` encloses the code at `byte`.
    pub(crate) fn set_this_type(&mut self, name: &str, kind: SymbolKind, byte: usize) {
        let here: Vec<u32> = self
            .file
            .named(name)
            .iter()
            .copied()
            .filter(|&i| {
                self.file.def(i).is_some_and(|d| {
                    d.range.start_byte <= byte && byte <= d.range.end_byte && is_type_kind(d.kind)
                })
            })
            .collect();
        if kind == SymbolKind::Impl
            || here
                .iter()
                .all(|&i| self.file.def(i).is_some_and(|d| d.kind == SymbolKind::Impl))
        {
            // `impl Foo { … }`: `self` is a `Foo`, defined wherever `Foo` resolves.
            let file = self.file.clone();
            for t in self.resolve_name_in(&file, name, true) {
                if let Target::Def(f, i) = t
                    && f.def(i)
                        .is_some_and(|d| is_type_kind(d.kind) && d.kind != SymbolKind::Impl)
                {
                    self.this_type.push((f, i));
                }
            }
            if self.this_type.is_empty() {
                self.this_type
                    .extend(here.into_iter().map(|i| (self.file.clone(), i)));
            }
            return;
        }
        self.this_type
            .extend(here.into_iter().map(|i| (self.file.clone(), i)));
    }

    /// The types `self` / `this` stands for.
    pub(crate) fn this_types(&self) -> &[(Arc<FileOutline>, u32)] {
        &self.this_type
    }

    fn step(&self) -> bool {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        n <= MAX_STEPS
    }

    fn rules_of(&self, file: &FileOutline) -> Option<&'static dyn Rules> {
        rules(file.language)
    }

    fn imports_of<'f>(&self, file: &'f FileOutline) -> &'f [ImportBinding] {
        if Arc::ptr_eq(&file.text, &self.file.text) {
            file.imports(self.tree)
        } else {
            file.imports(None)
        }
    }

    fn module_files_of(&self, file: &FileOutline, module: &str) -> Vec<PathBuf> {
        match self.rules_of(file) {
            Some(rules) => self
                .env
                .module_files(rules, file.language, module, &file.path),
            None => Vec::new(),
        }
    }

    /// How one reference resolves.
    pub(crate) fn resolve(&self, r: &Reference) -> Outcome {
        let targets = match &r.shape {
            Shape::Plain | Shape::Call => {
                if self.facts.locals.contains(&r.name) {
                    return Outcome::Local;
                }
                let file = self.file.clone();
                let mut found = self.resolve_name_in(&file, &r.name, true);
                if found.is_empty()
                    && self
                        .rules_of(&file)
                        .is_some_and(|l| l.bare_names_reach_members())
                {
                    for (f, i) in &self.this_type {
                        let scope = Scope::Type(f.clone(), *i);
                        found.extend(self.lookup_in_scope(&scope, &r.name, 0));
                    }
                }
                found
            }
            Shape::Member(chain) | Shape::Qualified(chain) => {
                if chain.is_empty() {
                    return Outcome::Unresolved;
                }
                let file = self.file.clone();
                let scopes = self.resolve_chain(&file, chain, true);
                let mut out = Vec::new();
                for s in scopes {
                    out.extend(self.lookup_in_scope(&s, &r.name, 0));
                }
                out
            }
        };
        let targets: Vec<Target> = targets
            .into_iter()
            .filter(|t| matches!(t, Target::Def(..)))
            .collect();
        if targets.is_empty() {
            Outcome::Unresolved
        } else {
            Outcome::Found(dedup(targets))
        }
    }

    /// The types a chain of names stands for (for ranking guesses: the types the code uses).
    pub(crate) fn types_of_chain(&self, chain: &[String]) -> Vec<(Arc<FileOutline>, u32)> {
        let file = self.file.clone();
        self.resolve_chain(&file, chain, true)
            .into_iter()
            .filter_map(|s| match s {
                Scope::Type(f, i) => Some((f, i)),
                Scope::Files(_) => None,
            })
            .collect()
    }

    /// A name as the scope of `file` sees it: its own top-level definitions, its imports
    /// (and, for the code being resolved, imports inside the code), its glob imports, and
    /// the files it sees without importing (its package).
    fn resolve_name_in(&self, file: &Arc<FileOutline>, name: &str, current: bool) -> Vec<Target> {
        if !self.step() {
            return Vec::new();
        }
        let own = file.top_level(name);
        if !own.is_empty() {
            return own
                .into_iter()
                .map(|i| self.def_or_module(file, i))
                .collect();
        }
        let locals: &[ImportBinding] = if current { &self.facts.imports } else { &[] };
        for b in locals.iter().chain(self.imports_of(file)) {
            if b.local == name {
                let found = self.follow(file, b, 0);
                if !found.is_empty() {
                    return found;
                }
            }
        }
        for b in locals.iter().chain(self.imports_of(file)) {
            if b.local == "*" {
                for m in self.module_files_of(file, &b.module) {
                    let found = self.lookup_in_module(&m, name, 1, &mut HashSet::new());
                    if !found.is_empty() {
                        return found;
                    }
                }
            }
        }
        if let Some(rules) = self.rules_of(file) {
            for other in rules.implicit_files(&file.path, self.env.files()) {
                if let Some(o) = self.env.outline(&other) {
                    let defs = o.top_level(name);
                    if !defs.is_empty() {
                        return defs
                            .into_iter()
                            .map(|i| self.def_or_module(&o, i))
                            .collect();
                    }
                }
            }
        }
        Vec::new()
    }

    /// A definition, or for a module declared without a body (`mod x;`) the module's file.
    fn def_or_module(&self, file: &Arc<FileOutline>, i: u32) -> Target {
        if let Some(d) = file.def(i)
            && d.kind == SymbolKind::Module
            && let Some(rules) = self.rules_of(file)
        {
            let subs = rules.submodule_files(&file.path, &d.name, self.env.files());
            if !subs.is_empty() {
                return Target::Module(subs);
            }
        }
        Target::Def(file.clone(), i)
    }

    /// What an import binding names.
    fn follow(&self, from: &FileOutline, b: &ImportBinding, depth: u32) -> Vec<Target> {
        let files = self.module_files_of(from, &b.module);
        match &b.name {
            None => {
                if files.is_empty() {
                    Vec::new()
                } else {
                    vec![Target::Module(files)]
                }
            }
            Some(name) => {
                let mut visited = HashSet::new();
                for m in &files {
                    let found = self.lookup_in_module(m, name, depth + 1, &mut visited);
                    if !found.is_empty() {
                        return found;
                    }
                }
                Vec::new()
            }
        }
    }

    /// `name` as a module exports it: a top-level definition, a re-export (followed), a
    /// name from an exported glob, or a submodule.
    fn lookup_in_module(
        &self,
        path: &Path,
        name: &str,
        depth: u32,
        visited: &mut HashSet<(PathBuf, String)>,
    ) -> Vec<Target> {
        if depth > MAX_DEPTH
            || !self.step()
            || !visited.insert((path.to_path_buf(), name.to_string()))
        {
            return Vec::new();
        }
        let Some(file) = self.env.outline(path) else {
            return Vec::new();
        };
        let defs = file.top_level(name);
        if !defs.is_empty() {
            return defs
                .into_iter()
                .map(|i| self.def_or_module(&file, i))
                .collect();
        }
        let Some(rules) = self.rules_of(&file) else {
            return Vec::new();
        };
        let visible = |b: &ImportBinding| b.export || rules.exports_imports();
        for b in self.imports_of(&file) {
            if b.local == name && visible(b) {
                let files = self.module_files_of(&file, &b.module);
                match &b.name {
                    None if !files.is_empty() => return vec![Target::Module(files)],
                    None => {}
                    Some(n) => {
                        for m in &files {
                            let found = self.lookup_in_module(m, n, depth + 1, visited);
                            if !found.is_empty() {
                                return found;
                            }
                            if let Some(r) = rules_for(m) {
                                let subs = r.submodule_files(m, n, self.env.files());
                                if !subs.is_empty() {
                                    return vec![Target::Module(subs)];
                                }
                            }
                        }
                    }
                }
            }
        }
        for b in self.imports_of(&file) {
            if b.local == "*" && visible(b) {
                for m in self.module_files_of(&file, &b.module) {
                    let found = self.lookup_in_module(&m, name, depth + 1, visited);
                    if !found.is_empty() {
                        return found;
                    }
                }
            }
        }
        let subs = rules.submodule_files(path, name, self.env.files());
        if !subs.is_empty() {
            return vec![Target::Module(subs)];
        }
        if rules.class_per_file()
            && let Some(class) = path.file_stem().and_then(|s| s.to_str())
        {
            return file
                .named(name)
                .iter()
                .copied()
                .filter(|&i| {
                    file.def(i)
                        .is_some_and(|d| d.depth == 1 && d.container.as_deref() == Some(class))
                })
                .map(|i| Target::Def(file.clone(), i))
                .collect();
        }
        Vec::new()
    }

    /// What a chain of names stands for: modules or types.
    /// What a chain of names stands for: modules or types. Chains lead to chains (a
    /// variable's type, a field's type, a base class), so the nesting is bounded.
    fn resolve_chain(
        &self,
        file: &Arc<FileOutline>,
        chain: &[String],
        current: bool,
    ) -> Vec<Scope> {
        let depth = self.chain_depth.get();
        if depth >= MAX_CHAIN_DEPTH || !self.step() {
            return Vec::new();
        }
        self.chain_depth.set(depth + 1);
        let out = self.resolve_chain_inner(file, chain, current);
        self.chain_depth.set(depth);
        out
    }

    fn resolve_chain_inner(
        &self,
        file: &Arc<FileOutline>,
        chain: &[String],
        current: bool,
    ) -> Vec<Scope> {
        let Some((head, rest)) = chain.split_first() else {
            return Vec::new();
        };
        let rules = match self.rules_of(file) {
            Some(r) => r,
            None => return Vec::new(),
        };
        let mut scopes: Vec<Scope> = if current && rules.this_names().contains(&head.as_str()) {
            self.this_type
                .iter()
                .map(|(f, i)| Scope::Type(f.clone(), *i))
                .collect()
        } else if matches!(head.as_str(), "crate" | "super" | "self")
            && file.language == Language::Rust
        {
            // A module path: as many leading segments as name modules.
            let mut k = 1;
            while chain
                .get(k)
                .is_some_and(|s| matches!(s.as_str(), "super" | "self"))
            {
                k += 1;
            }
            let module = chain.get(..k).unwrap_or(&[]).join("::");
            let files = self.module_files_of(file, &module);
            let mut scopes = vec![Scope::Files(files)];
            for seg in chain.get(k..).unwrap_or(&[]) {
                scopes = scopes
                    .iter()
                    .flat_map(|s| self.step_scope(s, seg))
                    .collect();
            }
            return scopes;
        } else if current && let Some(ty) = self.facts.var_types.get(head) {
            let ty = ty.clone();
            self.resolve_chain(file, &ty, true)
        } else if current && let Some(callee) = self.facts.var_calls.get(head) {
            let callee = callee.clone();
            self.call_result(file, &callee)
        } else if current && self.facts.locals.contains(head) {
            return Vec::new();
        } else {
            self.resolve_name_in(file, head, current)
                .into_iter()
                .flat_map(|t| self.scope_of(t))
                .collect()
        };
        for seg in rest {
            if scopes.is_empty() || !self.step() {
                return Vec::new();
            }
            scopes = scopes
                .iter()
                .flat_map(|s| self.step_scope(s, seg))
                .collect();
        }
        scopes
    }

    /// The types a call's result has: the callee resolved (a function, or a method of what
    /// the chain before it names), then its header's return type. A constructor call of a
    /// type (`Foo(…)`) gives the type itself.
    fn call_result(&self, file: &Arc<FileOutline>, callee: &[String]) -> Vec<Scope> {
        let Some((name, owner)) = callee.split_last() else {
            return Vec::new();
        };
        let targets = if owner.is_empty() {
            if self.facts.locals.contains(name) {
                return Vec::new();
            }
            self.resolve_name_in(file, name, true)
        } else {
            self.resolve_chain(file, owner, true)
                .iter()
                .flat_map(|s| self.lookup_in_scope(s, name, 0))
                .collect()
        };
        let mut out = Vec::new();
        for t in targets {
            let Target::Def(f, i) = t else { continue };
            let Some(d) = f.def(i) else { continue };
            if is_type_kind(d.kind) {
                out.push(Scope::Type(f.clone(), i));
                continue;
            }
            let Some(rules) = self.rules_of(&f) else {
                continue;
            };
            let header = f.text.get(d.range.start_byte..d.header_end).unwrap_or("");
            let mut chain = rules.return_type(header);
            if chain == ["Self"]
                && let Some(owner) = &d.container
            {
                chain = vec![owner.to_string()];
            }
            if !chain.is_empty() {
                out.extend(self.resolve_chain(&f, &chain, false));
            }
        }
        out
    }

    /// The scope a target opens: a type's members, a module's names, or (for a variable or
    /// constant) the type of its value.
    fn scope_of(&self, t: Target) -> Vec<Scope> {
        match t {
            Target::Module(files) => vec![Scope::Files(files)],
            Target::Def(f, i) => {
                let Some(d) = f.def(i) else {
                    return Vec::new();
                };
                if is_type_kind(d.kind) {
                    return vec![Scope::Type(f.clone(), i)];
                }
                if matches!(d.kind, SymbolKind::Constant | SymbolKind::Field) {
                    return self.type_of_value(&f, i);
                }
                Vec::new()
            }
        }
    }

    /// The type of a variable, constant or field definition, from its text.
    fn type_of_value(&self, f: &Arc<FileOutline>, i: u32) -> Vec<Scope> {
        let (Some(d), Some(rules)) = (f.def(i), self.rules_of(f)) else {
            return Vec::new();
        };
        let chain = rules.field_type(f.text_of(d), &d.name);
        if chain.is_empty() {
            return Vec::new();
        }
        self.resolve_chain(f, &chain, false)
    }

    fn step_scope(&self, scope: &Scope, seg: &str) -> Vec<Scope> {
        self.lookup_in_scope(scope, seg, 0)
            .into_iter()
            .flat_map(|t| self.scope_of(t))
            .collect()
    }

    fn lookup_in_scope(&self, scope: &Scope, name: &str, depth: u32) -> Vec<Target> {
        match scope {
            Scope::Files(files) => {
                let mut visited = HashSet::new();
                for p in files {
                    let found = self.lookup_in_module(p, name, depth, &mut visited);
                    if !found.is_empty() {
                        return found;
                    }
                }
                Vec::new()
            }
            Scope::Type(f, i) => self.members(f, *i, name, depth),
        }
    }

    /// Member `name` of type `i` in `f`: its own members (and `impl` blocks or methods of it
    /// in its file and elsewhere), else its base types' members.
    fn members(&self, f: &Arc<FileOutline>, i: u32, name: &str, depth: u32) -> Vec<Target> {
        if depth > MAX_DEPTH || !self.step() {
            return Vec::new();
        }
        let Some(d) = f.def(i) else {
            return Vec::new();
        };
        let type_name = d.name.clone();
        let mut out: Vec<Target> = f
            .named(name)
            .iter()
            .copied()
            .filter(|&j| {
                f.def(j).is_some_and(|m| {
                    j != i
                        && ((m.range.start_byte >= d.range.start_byte
                            && m.range.end_byte <= d.range.end_byte
                            && m.depth == d.depth + 1)
                            || m.container.as_deref() == Some(&*type_name))
                })
            })
            .map(|j| Target::Def(f.clone(), j))
            .collect();
        if out.is_empty() {
            // Methods of the type defined in other files (`impl` blocks, Go methods).
            let mut others: Vec<(Arc<Path>, crate::index::IndexedSymbol)> = self
                .env
                .index()
                .definitions(name)
                .into_iter()
                .filter(|(p, s)| s.container.as_deref() == Some(&*type_name) && **p != *f.path)
                .collect();
            others.sort_by(|a, b| {
                proximity(&f.path, &a.0)
                    .cmp(&proximity(&f.path, &b.0))
                    .then_with(|| a.0.cmp(&b.0))
            });
            for (p, s) in others.into_iter().take(3) {
                if let Some(o) = self.env.outline(&p)
                    && let Some(j) = find_def(&o, &s.name, s.selection_range.start_byte)
                {
                    out.push(Target::Def(o, j));
                }
            }
        }
        if out.is_empty()
            && let Some(rules) = self.rules_of(f)
        {
            let header = f.text.get(d.range.start_byte..d.header_end).unwrap_or("");
            for base in rules.bases(header) {
                for s in self.resolve_chain(f, &base, false) {
                    if let Scope::Type(bf, bi) = s {
                        out.extend(self.members(&bf, bi, name, depth + 1));
                    }
                }
                if !out.is_empty() {
                    break;
                }
            }
        }
        out
    }
}

/// The rules of the language a path is in.
fn rules_for(path: &Path) -> Option<&'static dyn Rules> {
    rules(Language::from_path(path))
}

/// How far apart two files are: the number of folders between them.
pub(crate) fn proximity(a: &Path, b: &Path) -> usize {
    let common = a
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    a.components().count() + b.components().count() - 2 * common
}

/// The definition of `name` whose name starts at `byte` (or, the file having moved on, the
/// nearest one of that name).
pub(crate) fn find_def(file: &FileOutline, name: &str, byte: usize) -> Option<u32> {
    let named = file.named(name);
    named
        .iter()
        .copied()
        .find(|&i| file.def(i).is_some_and(|d| d.selection.start_byte == byte))
        .or_else(|| {
            named.iter().copied().min_by_key(|&i| {
                file.def(i)
                    .map(|d| d.selection.start_byte.abs_diff(byte))
                    .unwrap_or(usize::MAX)
            })
        })
}

fn dedup(targets: Vec<Target>) -> Vec<Target> {
    let mut seen: HashSet<(PathBuf, u32)> = HashSet::new();
    targets
        .into_iter()
        .filter(|t| match t {
            Target::Def(f, i) => seen.insert((f.path.to_path_buf(), *i)),
            Target::Module(_) => true,
        })
        .collect()
}
