//! TypeScript, TSX and JavaScript: `import` / `export … from` bindings (relative specifiers
//! with extension and `index` resolution, `tsconfig.json` `paths`, workspace packages),
//! names used and bound in code, types of variables, parameters and class properties.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{
    CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_type_chain, normalize,
    split_top_level, text_of, walk,
};

pub(crate) struct TypeScript;

const WRAPPERS: &[&str] = &[
    "Promise",
    "Array",
    "ReadonlyArray",
    "Readonly",
    "Partial",
    "Required",
    "Set",
    "Awaited",
    "NonNullable",
];
const SKIP: &[&str] = &["readonly", "typeof", "keyof", "unique", "infer"];
const EXTENSIONS: &[&str] = &["ts", "tsx", "d.ts", "mts", "cts", "js", "jsx", "mjs", "cjs"];
const MODIFIERS: &[&str] = &[
    "public",
    "private",
    "protected",
    "readonly",
    "static",
    "declare",
    "override",
    "abstract",
    "accessor",
];

impl Rules for TypeScript {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        let mut cursor = root.walk();
        for node in root.named_children(&mut cursor) {
            match node.kind() {
                "import_statement" => import_statement(node, text, out),
                "export_statement" => export_statement(node, text, out),
                _ => {}
            }
        }
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        walk(
            root,
            start,
            end,
            &mut |node, field, stack| match node.kind() {
                "identifier" | "type_identifier" | "shorthand_property_identifier" => {
                    classify(node, field, stack, text, facts);
                    false
                }
                "shorthand_property_identifier_pattern" => {
                    facts.bind(node, text);
                    false
                }
                "property_identifier" | "private_property_identifier" => {
                    if let Some(&(parent, _)) = stack.last()
                        && parent.kind() == "member_expression"
                        && field == Some("property")
                    {
                        let chain = parent
                            .child_by_field_name("object")
                            .map(|o| object_chain(o, text))
                            .unwrap_or_default();
                        facts.push_ref(node, text, Shape::Member(chain));
                    }
                    false
                }
                "nested_type_identifier" => {
                    let (Some(module), Some(name)) = (
                        node.child_by_field_name("module"),
                        node.child_by_field_name("name"),
                    ) else {
                        return false;
                    };
                    let qualifier: Vec<String> = text_of(module, text)
                        .split('.')
                        .map(|s| s.trim().to_string())
                        .collect();
                    if let Some(first) = first_identifier(module) {
                        facts.push_ref(first, text, Shape::Plain);
                    }
                    facts.push_ref(name, text, Shape::Qualified(qualifier));
                    false
                }
                "variable_declarator" => {
                    if let Some(name) = node.child_by_field_name("name")
                        && name.kind() == "identifier"
                    {
                        let ty = match node.child_by_field_name("type") {
                            Some(t) => self.type_chain(text_of(t, text).trim_start_matches(':')),
                            None => node
                                .child_by_field_name("value")
                                .map(|v| value_type(v, text))
                                .unwrap_or_default(),
                        };
                        if ty.is_empty() {
                            if let Some(callee) = node
                                .child_by_field_name("value")
                                .and_then(|v| callee_of(v, text))
                            {
                                facts.set_call(name, text, callee);
                            }
                        } else {
                            facts.set_type(name, text, ty);
                        }
                    }
                    true
                }
                "required_parameter" | "optional_parameter" => {
                    if let (Some(pattern), Some(ty)) = (
                        node.child_by_field_name("pattern"),
                        node.child_by_field_name("type"),
                    ) && pattern.kind() == "identifier"
                    {
                        facts.set_type(
                            pattern,
                            text,
                            self.type_chain(text_of(ty, text).trim_start_matches(':')),
                        );
                    }
                    true
                }
                "comment" | "regex" => false,
                _ => true,
            },
        );
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        if module.is_empty() {
            return vec![from.to_path_buf()];
        }
        let Some(dir) = from.parent() else {
            return Vec::new();
        };
        if module.starts_with('.') || module.starts_with('/') {
            return resolve_file(&normalize(&dir.join(module)), fs)
                .into_iter()
                .collect();
        }
        if let Some(found) = tsconfig_paths(module, from, fs) {
            return vec![found];
        }
        workspace_package(module, fs).into_iter().collect()
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        for alt in written.split('|') {
            let chain = first_type_chain(alt, ".", WRAPPERS, SKIP);
            if chain
                .last()
                .is_some_and(|l| !matches!(l.as_str(), "null" | "undefined" | "void"))
            {
                return chain;
            }
        }
        Vec::new()
    }

    fn bases(&self, header: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let header = header.split('{').next().unwrap_or(header);
        for keyword in ["extends", "implements"] {
            let Some(at) = find_word(header, keyword) else {
                continue;
            };
            let rest = header.get(at + keyword.len()..).unwrap_or("");
            let rest = match (keyword, find_word(rest, "implements")) {
                ("extends", Some(i)) => rest.get(..i).unwrap_or(rest),
                _ => rest,
            };
            for base in split_top_level(rest) {
                let chain = first_type_chain(base, ".", &[], SKIP);
                if !chain.is_empty() {
                    out.push(chain);
                }
            }
        }
        out
    }

    fn field_type(&self, type_text: &str, name: &str) -> Vec<String> {
        for line in type_text.lines() {
            // Parameter properties sit several to a line: look at each.
            for part in line.split([',', '(']) {
                let mut t = part.trim();
                loop {
                    let before = t;
                    for m in MODIFIERS {
                        if let Some(rest) = t.strip_prefix(m).filter(|r| r.starts_with(' ')) {
                            t = rest.trim_start();
                        }
                    }
                    if t == before {
                        break;
                    }
                }
                if let Some(rest) = t.strip_prefix(name) {
                    let rest = rest.trim_start_matches(['?', '!']).trim_start();
                    if let Some(ty) = rest.strip_prefix(':') {
                        let ty = ty.split(['=', ';', ')']).next().unwrap_or("");
                        let chain = self.type_chain(ty);
                        if !chain.is_empty() {
                            return chain;
                        }
                    }
                }
            }
            // `this.name = new Type(…)`
            if let Some(rest) = line.trim().strip_prefix(&format!("this.{name} = new ")) {
                let callee = rest.split(['(', '<']).next().unwrap_or("");
                if let Some(chain) = super::chain_of(callee, ".") {
                    return chain;
                }
            }
        }
        Vec::new()
    }

    fn return_type(&self, header: &str) -> Vec<String> {
        super::return_type_after(header, ":")
            .map(|t| self.type_chain(t))
            .unwrap_or_default()
    }

    fn this_names(&self) -> &'static [&'static str] {
        &["this"]
    }

    fn is_lead_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('@') || t.starts_with("/**") || t.starts_with('*') || t.starts_with("//")
    }

    fn is_doc_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("/**") || t.starts_with('*') || t.starts_with("//")
    }

    fn is_constructor(&self, name: &str, _container: Option<&str>) -> bool {
        name == "constructor"
    }
}

fn find_word(haystack: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = haystack.get(from..).and_then(|h| h.find(word)) {
        let at = from + i;
        let before = haystack.get(..at).and_then(|b| b.chars().last());
        let after = haystack
            .get(at + word.len()..)
            .and_then(|a| a.chars().next());
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The module string of an import or export statement.
fn source_of(node: Node<'_>, text: &str) -> Option<String> {
    let source = node.child_by_field_name("source")?;
    Some(
        text_of(source, text)
            .trim_matches(|c| c == '"' || c == '\'' || c == '`')
            .to_string(),
    )
}

fn import_statement(node: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
    let Some(module) = source_of(node, text) else {
        return;
    };
    let mut cursor = node.walk();
    let Some(clause) = node
        .named_children(&mut cursor)
        .find(|c| c.kind() == "import_clause")
    else {
        return;
    };
    let mut c2 = clause.walk();
    for part in clause.named_children(&mut c2) {
        match part.kind() {
            "identifier" => out.push(ImportBinding {
                local: text_of(part, text).to_string(),
                module: module.clone(),
                name: Some("default".into()),
                export: false,
            }),
            "namespace_import" => {
                if let Some(id) = part.named_child(0) {
                    out.push(ImportBinding {
                        local: text_of(id, text).to_string(),
                        module: module.clone(),
                        name: None,
                        export: false,
                    });
                }
            }
            "named_imports" => {
                let mut c3 = part.walk();
                for spec in part.named_children(&mut c3) {
                    if spec.kind() != "import_specifier" {
                        continue;
                    }
                    let Some(name) = spec.child_by_field_name("name") else {
                        continue;
                    };
                    let local = spec.child_by_field_name("alias").unwrap_or(name);
                    out.push(ImportBinding {
                        local: text_of(local, text).to_string(),
                        module: module.clone(),
                        name: Some(text_of(name, text).trim_matches(['"', '\'']).to_string()),
                        export: false,
                    });
                }
            }
            _ => {}
        }
    }
}

fn export_statement(node: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
    let module = source_of(node, text).unwrap_or_default();
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    let is_default = children.iter().any(|c| c.kind() == "default");
    // `export default class Foo {}` / `export default Foo`
    if is_default {
        let target = node
            .child_by_field_name("declaration")
            .and_then(|d| d.child_by_field_name("name"))
            .or_else(|| {
                node.child_by_field_name("value")
                    .filter(|v| v.kind() == "identifier")
            });
        if let Some(target) = target {
            out.push(ImportBinding {
                local: "default".into(),
                module: String::new(),
                name: Some(text_of(target, text).to_string()),
                export: true,
            });
        }
        return;
    }
    let clause = children.iter().find(|c| c.kind() == "export_clause");
    let namespace = children.iter().find(|c| c.kind() == "namespace_export");
    match (clause, namespace) {
        (Some(clause), _) => {
            let mut c2 = clause.walk();
            for spec in clause.named_children(&mut c2) {
                if spec.kind() != "export_specifier" {
                    continue;
                }
                let Some(name) = spec.child_by_field_name("name") else {
                    continue;
                };
                let local = spec.child_by_field_name("alias").unwrap_or(name);
                out.push(ImportBinding {
                    local: text_of(local, text).trim_matches(['"', '\'']).to_string(),
                    module: module.clone(),
                    name: Some(text_of(name, text).trim_matches(['"', '\'']).to_string()),
                    export: true,
                });
            }
        }
        (None, Some(ns)) => {
            if let Some(id) = ns.named_child(0) {
                out.push(ImportBinding {
                    local: text_of(id, text).to_string(),
                    module,
                    name: None,
                    export: true,
                });
            }
        }
        (None, None) if !module.is_empty() => out.push(ImportBinding {
            local: "*".into(),
            module,
            name: None,
            export: true,
        }),
        _ => {}
    }
}

fn classify(
    node: Node<'_>,
    field: Option<&str>,
    stack: &[Step<'_>],
    text: &str,
    facts: &mut CodeFacts,
) {
    let Some(&(parent, _)) = stack.last() else {
        facts.push_ref(node, text, Shape::Plain);
        return;
    };
    match parent.kind() {
        "variable_declarator" if field == Some("name") => return facts.bind(node, text),
        "required_parameter" | "optional_parameter" if field == Some("pattern") => {
            return facts.bind(node, text);
        }
        "arrow_function" if field == Some("parameter") => return facts.bind(node, text),
        "catch_clause" if field == Some("parameter") => return facts.bind(node, text),
        "for_in_statement" if field == Some("left") => return facts.bind(node, text),
        "function_declaration"
        | "generator_function_declaration"
        | "class_declaration"
        | "function_expression"
        | "class"
        | "type_alias_declaration"
        | "interface_declaration"
        | "enum_declaration"
            if field == Some("name") =>
        {
            return facts.bind(node, text);
        }
        "type_parameter" if field == Some("name") => return facts.bind(node, text),
        "array_pattern" | "rest_pattern" | "object_pattern" => return facts.bind(node, text),
        "pair_pattern" if field == Some("value") => return facts.bind(node, text),
        "assignment_pattern" if field == Some("left") => return facts.bind(node, text),
        "labeled_statement" | "break_statement" | "continue_statement" => return,
        "import_specifier" | "namespace_import" | "import_clause" | "export_specifier" => return,
        _ => {}
    }
    let shape = match parent.kind() {
        "call_expression" if field == Some("function") => Shape::Call,
        "new_expression" if field == Some("constructor") => Shape::Call,
        _ => Shape::Plain,
    };
    facts.push_ref(node, text, shape);
}

fn first_identifier(node: Node<'_>) -> Option<Node<'_>> {
    let mut node = node;
    for _ in 0..16 {
        match node.kind() {
            "identifier" => return Some(node),
            "nested_identifier" | "member_expression" => {
                node = node.named_child(0)?;
            }
            _ => return None,
        }
    }
    None
}

/// `this.client` → `["this", "client"]`; `ns.sub` → `["ns", "sub"]`; other objects: `[]`.
fn object_chain(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "this" | "identifier" => vec![text_of(node, text).to_string()],
        "member_expression" => {
            let (Some(object), Some(prop)) = (
                node.child_by_field_name("object"),
                node.child_by_field_name("property"),
            ) else {
                return Vec::new();
            };
            let mut chain = object_chain(object, text);
            if chain.is_empty() {
                return chain;
            }
            chain.push(text_of(prop, text).to_string());
            chain
        }
        "non_null_expression" | "parenthesized_expression" => node
            .named_child(0)
            .map(|n| object_chain(n, text))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The callee chain of a call value (through `await`): `make()` → `["make"]`,
/// `a.b.open()` → `["a", "b", "open"]`.
fn callee_of(value: Node<'_>, text: &str) -> Option<Vec<String>> {
    let mut node = value;
    for _ in 0..3 {
        match node.kind() {
            "await_expression" | "parenthesized_expression" | "non_null_expression" => {
                node = node.named_child(0)?;
            }
            _ => break,
        }
    }
    if node.kind() != "call_expression" {
        return None;
    }
    let chain = object_chain(node.child_by_field_name("function")?, text);
    (!chain.is_empty()).then_some(chain)
}

/// `new Foo(…)` (through `await`): `Foo`.
fn value_type(value: Node<'_>, text: &str) -> Vec<String> {
    let mut node = value;
    for _ in 0..3 {
        match node.kind() {
            "await_expression" | "parenthesized_expression" | "as_expression" => {
                node = match node.named_child(0) {
                    Some(n) => n,
                    None => return Vec::new(),
                };
            }
            _ => break,
        }
    }
    if node.kind() == "new_expression"
        && let Some(ctor) = node.child_by_field_name("constructor")
    {
        return object_chain(ctor, text);
    }
    Vec::new()
}

/// The file a module path names: the path itself, with a TypeScript extension (also for a
/// `.js` specifier, as ES modules written in TypeScript import), or its `index` file.
fn resolve_file(base: &Path, fs: &dyn Files) -> Option<PathBuf> {
    let name = base.file_name()?.to_str()?.to_string();
    let mut candidates: Vec<PathBuf> = Vec::new();
    for (js, ts) in [
        (".js", [".ts", ".tsx"]),
        (".jsx", [".tsx", ".ts"]),
        (".mjs", [".mts", ".ts"]),
        (".cjs", [".cts", ".ts"]),
    ] {
        if let Some(stem) = name.strip_suffix(js) {
            for ext in ts {
                candidates.push(base.with_file_name(format!("{stem}{ext}")));
            }
        }
    }
    if EXTENSIONS.iter().any(|e| name.ends_with(&format!(".{e}"))) {
        candidates.push(base.to_path_buf());
    }
    for ext in EXTENSIONS {
        candidates.push(base.with_file_name(format!("{name}.{ext}")));
    }
    for ext in EXTENSIONS {
        candidates.push(base.join(format!("index.{ext}")));
    }
    candidates.into_iter().find(|p| fs.is_file(p))
}

/// Reads JSON with comments and trailing commas (tsconfig.json).
fn lenient_json(text: &str) -> Option<serde_json::Value> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    // Trailing commas before a closing bracket.
    let mut cleaned = String::with_capacity(out.len());
    let bytes: Vec<char> = out.chars().collect();
    let mut in_string = false;
    for (i, &c) in bytes.iter().enumerate() {
        if c == '"' && (i == 0 || bytes.get(i - 1) != Some(&'\\')) {
            in_string = !in_string;
        }
        if !in_string && c == ',' {
            let next = bytes
                .get(i + 1..)
                .and_then(|r| r.iter().find(|c| !c.is_whitespace()));
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        cleaned.push(c);
    }
    serde_json::from_str(&cleaned).ok()
}

/// `compilerOptions.paths` (and `baseUrl`) of the nearest `tsconfig.json` above `from`.
fn tsconfig_paths(module: &str, from: &Path, fs: &dyn Files) -> Option<PathBuf> {
    let roots = fs.roots();
    for dir in from.ancestors().skip(1) {
        let config = dir.join("tsconfig.json");
        if fs.is_file(&config) {
            let json = lenient_json(&fs.read_small(&config)?)?;
            let options = json.get("compilerOptions")?;
            let base = options
                .get("baseUrl")
                .and_then(|b| b.as_str())
                .map(|b| normalize(&dir.join(b)))
                .unwrap_or_else(|| dir.to_path_buf());
            if let Some(paths) = options.get("paths").and_then(|p| p.as_object()) {
                for (pattern, targets) in paths {
                    let rest = match pattern.split_once('*') {
                        Some((pre, post)) => module
                            .strip_prefix(pre)
                            .and_then(|r| r.strip_suffix(post))
                            .map(str::to_string),
                        None => (pattern == module).then(String::new),
                    };
                    let Some(rest) = rest else { continue };
                    for target in targets
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str())
                    {
                        let path = target.replace('*', &rest);
                        if let Some(found) = resolve_file(&normalize(&base.join(path)), fs) {
                            return Some(found);
                        }
                    }
                }
            }
            if options.get("baseUrl").is_some()
                && let Some(found) = resolve_file(&normalize(&base.join(module)), fs)
            {
                return Some(found);
            }
            return None;
        }
        if roots.iter().any(|r| r == dir) {
            break;
        }
    }
    None
}

/// A package of the workspace named `module` (or a subpath of one): its source entry.
fn workspace_package(module: &str, fs: &dyn Files) -> Option<PathBuf> {
    for manifest in fs.files_ending_with(Path::new("package.json")) {
        if manifest
            .components()
            .any(|c| c.as_os_str() == "node_modules")
        {
            continue;
        }
        let Some(json) = fs.read_small(&manifest).and_then(|t| lenient_json(&t)) else {
            continue;
        };
        let Some(name) = json.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        let sub = if module == name {
            ""
        } else if let Some(rest) = module.strip_prefix(name).and_then(|r| r.strip_prefix('/')) {
            rest
        } else {
            continue;
        };
        let dir = manifest.parent()?;
        let mut bases = vec![dir.join("src").join(sub), dir.join(sub)];
        if sub.is_empty() {
            bases = vec![dir.join("src/index"), dir.join("index")];
            for key in ["types", "typings", "source", "main"] {
                if let Some(entry) = json.get(key).and_then(|v| v.as_str()) {
                    let entry = entry.trim_end_matches(".d.ts").trim_end_matches(".js");
                    bases.push(dir.join(entry));
                }
            }
        }
        for base in bases {
            if let Some(found) = resolve_file(&normalize(&base), fs) {
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsconfig_with_comments_and_trailing_commas_reads() {
        let json = lenient_json(
            "{\n // comment\n \"compilerOptions\": { /* x */ \"paths\": {\"@/*\": [\"src/*\",],}, },\n}",
        )
        .expect("parses");
        assert_eq!(json["compilerOptions"]["paths"]["@/*"][0], "src/*");
    }

    #[test]
    fn bases_name_extends_and_implements() {
        let b = TypeScript.bases("export class A<T> extends B<T> implements C, ns.D {");
        assert_eq!(
            b,
            vec![
                vec!["B".to_string()],
                vec!["C".into()],
                vec!["ns".into(), "D".into()]
            ]
        );
    }

    #[test]
    fn property_types_are_read_through_modifiers() {
        let class = "class K {\n  private readonly cl?: Client;\n  constructor(private svc: Svc, public x: number) {}\n}";
        assert_eq!(TypeScript.field_type(class, "cl"), ["Client"]);
        assert_eq!(TypeScript.field_type(class, "svc"), ["Svc"]);
    }
}
