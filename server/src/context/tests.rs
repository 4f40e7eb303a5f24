//! Context capture on small multi-file projects: resolution per language (imports,
//! re-exports, `super::`, `index.ts`, receiver types), ranking, skeletons, the enclosing
//! symbol's cap and the no-duplicate rule.

use crate::documents::{Position, PositionEncoding, Range};
use crate::engine::{Engine, path_to_uri};

use super::{ContextItem, ContextItemKind, ContextRequest, ContextSnapshot};

struct Project {
    dir: tempfile::TempDir,
    engine: Engine,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, text).expect("write");
        }
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let engine = Engine::new();
        engine.set_encoding(PositionEncoding::Utf8);
        engine.set_roots(vec![root]);
        engine.index_workspace(&|_| {});
        Project { dir, engine }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        std::fs::canonicalize(self.dir.path())
            .expect("canonical")
            .join(rel)
    }

    /// The snapshot with the cursor on the first `needle` in `rel` (after `after`, when given).
    fn context_at(&self, rel: &str, needle: &str, budget: usize) -> ContextSnapshot {
        self.request(rel, needle, budget, |r| r)
    }

    fn request(
        &self,
        rel: &str,
        needle: &str,
        budget: usize,
        edit: impl FnOnce(ContextRequest) -> ContextRequest,
    ) -> ContextSnapshot {
        let path = self.path(rel);
        let text = std::fs::read_to_string(&path).expect("read");
        let uri = path_to_uri(&path);
        self.engine
            .open_document(&uri, Some(path.clone()), "", 1, &text);
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {rel}"));
        let before = text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() as u32;
        let col = (at - before.rfind('\n').map_or(0, |i| i + 1)) as u32 + 1;
        let snap = self.engine.snapshot(&uri).expect("open");
        let mut req = ContextRequest::at(Position::new(line, col), PositionEncoding::Utf8);
        req.budget_tokens = budget;
        let req = edit(req);
        self.engine.context(&snap, &req).expect("context")
    }
}

fn definitions(s: &ContextSnapshot) -> Vec<&ContextItem> {
    s.items
        .iter()
        .filter(|i| i.kind == ContextItemKind::Definition)
        .collect()
}

/// The definition items showing `line` (verbatim) of `rel`.
fn shows(s: &ContextSnapshot, rel: &str, line: &str) -> bool {
    s.items
        .iter()
        .any(|i| i.uri.ends_with(rel) && i.text.lines().any(|l| l == line))
}

/// Every line of every source item is the file's line at its number.
fn assert_verbatim(s: &ContextSnapshot) {
    for item in s.items.iter().filter(|i| i.kind.is_source()) {
        let path = crate::engine::uri_to_path(&item.uri).expect("file uri");
        let file = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = file.lines().collect();
        let mut n = item.range.start.line;
        let mut elided = item.elided.iter().peekable();
        for shown in item.text.lines() {
            if let Some(&&(a, b)) = elided.peek()
                && a == n
            {
                assert!(shown.trim_start().starts_with('⋯'), "marker in {item:?}");
                assert!(
                    shown.contains(&(a + 1).to_string()),
                    "{shown} names line {}",
                    a + 1
                );
                elided.next();
                n = b + 1;
                continue;
            }
            assert_eq!(
                Some(&shown),
                lines.get(n as usize),
                "{} line {n} verbatim",
                item.uri
            );
            n += 1;
        }
        assert!(
            elided.next().is_none(),
            "every elided run has its marker: {item:?}"
        );
    }
}

// ---- Python ----------------------------------------------------------------------------

fn python_project() -> Project {
    let mut client = String::from(
        "from .base import BaseClient\n\n\nclass Client(BaseClient):\n    \"\"\"An HTTP client.\"\"\"\n\n    def __init__(self, auth=None, timeout=5.0):\n",
    );
    for i in 0..60 {
        client.push_str(&format!("        self.v{i} = {i}\n"));
    }
    client.push_str("\n    def close(self):\n        pass\n");
    Project::new(&[
        (
            "pkg/__init__.py",
            "from .client import Client\nfrom . import util\n",
        ),
        ("pkg/client.py", &client),
        (
            "pkg/base.py",
            "class BaseClient:\n    def request(self, method, url):\n        return (method, url)\n",
        ),
        (
            "pkg/util.py",
            "def helper(x):\n    return x\n\n\nDEFAULT_LIMIT = 10\n",
        ),
        (
            "app/main.py",
            "from pkg import Client\nfrom pkg.util import DEFAULT_LIMIT\nfrom ..pkg import util as u\n\n\ndef run(helper):\n    c = Client()\n    c.request('GET', '/')\n    helper(DEFAULT_LIMIT)\n    return [get for get in range(3)]\n",
        ),
        ("other/a.py", "def helper(y):\n    return y\n"),
        ("other/b.py", "def get():\n    return 1\n"),
    ])
}

#[test]
fn python_constructor_resolves_through_a_package_reexport_as_a_skeleton_with_init() {
    let p = python_project();
    let s = p.context_at("app/main.py", "Client()", 1200);
    assert_verbatim(&s);
    let defs = definitions(&s);
    let first = defs.first().expect("a definition");
    assert!(
        first.uri.ends_with("pkg/client.py"),
        "the cursor's symbol first: {defs:?}"
    );
    assert!(first.reason.contains("skeleton"), "{}", first.reason);
    assert!(
        first.text.starts_with("class Client(BaseClient):\n"),
        "{}",
        first.text
    );
    assert!(
        first
            .text
            .contains("    def __init__(self, auth=None, timeout=5.0):\n"),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("    def close(self):\n"),
        "{}",
        first.text
    );
    assert!(!first.text.contains("self.v30"), "{}", first.text);
}

#[test]
fn python_method_resolves_through_the_variable_type_and_base_class() {
    let p = python_project();
    let s = p.context_at("app/main.py", "request(", 4096);
    let defs = definitions(&s);
    let first = defs.first().expect("a definition");
    assert!(first.uri.ends_with("pkg/base.py"), "{defs:?}");
    assert!(first.text.contains("def request(self, method, url):"));
}

#[test]
fn python_parameters_and_comprehension_variables_are_never_looked_up() {
    let p = python_project();
    let s = p.context_at("app/main.py", "DEFAULT_LIMIT)", 4096);
    assert!(
        shows(&s, "pkg/util.py", "DEFAULT_LIMIT = 10"),
        "{:#?}",
        definitions(&s)
    );
    // `helper` is a parameter and `get` a comprehension variable: no homonym is shown.
    assert!(
        !s.items
            .iter()
            .any(|i| i.uri.ends_with("other/a.py") || i.uri.ends_with("other/b.py")),
        "{:#?}",
        definitions(&s)
    );
}

// ---- Rust ------------------------------------------------------------------------------

fn rust_project() -> Project {
    Project::new(&[
        ("Cargo.toml", "[package]\nname = \"demo\"\n"),
        ("src/lib.rs", "mod a;\nmod b;\npub use a::Thing;\n"),
        (
            "src/a.rs",
            "/// A thing.\npub struct Thing {\n    pub x: u32,\n}\n\nimpl Thing {\n    pub fn new() -> Self {\n        Thing { x: 1 }\n    }\n\n    pub fn go(&self) -> u32 {\n        self.x\n    }\n}\n\npub fn helper() {}\n",
        ),
        (
            "src/b/mod.rs",
            "use super::Thing;\nuse crate::a::helper;\n\nfn f(new: u32) -> u32 {\n    let t = Thing::new();\n    helper();\n    t.go() + new\n}\n",
        ),
        ("src/c.rs", "pub fn go() {}\npub fn new() {}\n"),
    ])
}

#[test]
fn rust_paths_resolve_through_super_crate_and_impl_blocks() {
    let p = rust_project();
    let s = p.context_at("src/b/mod.rs", "new()", 4096);
    assert_verbatim(&s);
    let defs = definitions(&s);
    let first = defs.first().expect("definition");
    assert!(
        first.uri.ends_with("src/a.rs") && first.text.contains("pub fn new() -> Self {"),
        "{defs:?}"
    );
    assert!(shows(&s, "src/a.rs", "pub fn helper() {}"));
    assert!(
        shows(&s, "src/a.rs", "    pub fn go(&self) -> u32 {"),
        "method through the let's type: {defs:?}"
    );
    assert!(
        !s.items.iter().any(|i| i.uri.ends_with("src/c.rs")),
        "no homonyms: {defs:?}"
    );
}

// ---- TypeScript ------------------------------------------------------------------------

fn ts_project() -> Project {
    Project::new(&[
        (
            "src/index.ts",
            "export * from './models';\nexport { makeClient as create } from './client';\n",
        ),
        (
            "src/models/index.ts",
            "export interface User {\n  name: string;\n}\n",
        ),
        (
            "src/client.ts",
            "export class Client {\n  constructor(private http: Http) {}\n  get(url: string): string {\n    return url;\n  }\n}\n\nexport function makeClient(): Client {\n  return new Client(null as any);\n}\n\nexport class Http {}\n",
        ),
        (
            "src/app.ts",
            "import { User, create } from './index';\nimport { Client } from './client.js';\n\nexport function run(u: User): string {\n  const c = new Client(create() as any);\n  return c.get(u.name);\n}\n",
        ),
        (
            "lib/other.ts",
            "export function get(): number { return 1; }\n",
        ),
    ])
}

#[test]
fn typescript_names_resolve_through_index_files_reexports_and_js_specifiers() {
    let p = ts_project();
    let s = p.context_at("src/app.ts", "User)", 4096);
    assert_verbatim(&s);
    let first = *definitions(&s).first().expect("definition");
    assert!(first.uri.ends_with("src/models/index.ts"), "{first:?}");
    assert!(
        shows(
            &s,
            "src/client.ts",
            "export function makeClient(): Client {"
        ),
        "renamed re-export"
    );
    let s = p.context_at("src/app.ts", "get(u.name)", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first.uri.ends_with("src/client.ts") && first.text.contains("get(url: string): string {"),
        "{first:?}"
    );
    assert!(!s.items.iter().any(|i| i.uri.ends_with("lib/other.ts")));
}

// ---- Go and Java -----------------------------------------------------------------------

#[test]
fn go_package_imports_and_receiver_types_resolve() {
    let p = Project::new(&[
        ("go.mod", "module example.com/demo\n"),
        (
            "store/store.go",
            "package store\n\ntype Store struct {\n\tname string\n}\n\nfunc NewStore() *Store {\n\treturn &Store{}\n}\n\nfunc (s *Store) Get(k string) string {\n\treturn k\n}\n",
        ),
        (
            "cmd/main.go",
            "package main\n\nimport \"example.com/demo/store\"\n\nfunc main() {\n\ts := store.NewStore()\n\ts.Get(\"x\")\n}\n",
        ),
    ]);
    let s = p.context_at("cmd/main.go", "NewStore()", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first.uri.ends_with("store/store.go") && first.text.contains("func NewStore() *Store {"),
        "{first:?}"
    );
    let s = p.context_at("cmd/main.go", "Get(", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first
            .text
            .contains("func (s *Store) Get(k string) string {"),
        "{first:?}"
    );
}

#[test]
fn java_imports_and_same_package_classes_resolve() {
    let p = Project::new(&[
        (
            "src/main/java/com/x/model/User.java",
            "package com.x.model;\n\npublic class User {\n    private String name;\n\n    public User(String name) {\n        this.name = name;\n    }\n\n    public String getName() {\n        return name;\n    }\n}\n",
        ),
        (
            "src/main/java/com/x/app/Helper.java",
            "package com.x.app;\n\nclass Helper {\n    static int twice(int x) { return 2 * x; }\n}\n",
        ),
        (
            "src/main/java/com/x/app/App.java",
            "package com.x.app;\n\nimport com.x.model.User;\n\nclass App {\n    String run() {\n        User u = new User(\"a\");\n        Helper.twice(1);\n        return u.getName();\n    }\n}\n",
        ),
    ]);
    let s = p.context_at("src/main/java/com/x/app/App.java", "getName()", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first.uri.ends_with("model/User.java") && first.text.contains("public String getName() {"),
        "{first:?}"
    );
    let s = p.context_at("src/main/java/com/x/app/App.java", "twice(", 4096);
    assert!(shows(
        &s,
        "app/Helper.java",
        "    static int twice(int x) { return 2 * x; }"
    ));
}

/// Java's implicit `this.`: a bare call or field name the method does not bind is a member of
/// the class or of a base class in another file, two levels up, past an annotation whose
/// arguments hold braces; an import line names the class it imports.
#[test]
fn java_bare_names_reach_inherited_members_and_imports_name_their_class() {
    let p = Project::new(&[
        (
            "src/com/x/Base.java",
            "package com.x;\n\npublic abstract class Base {\n    protected float mScale = 1;\n\n    double relativeOnWidth(double v) {\n        return v * mScale;\n    }\n}\n",
        ),
        (
            "src/com/x/Middle.java",
            "package com.x;\n\n@SuppressWarnings({\"a\", \"b\"})\npublic abstract class Middle extends Base implements Runnable {\n}\n",
        ),
        (
            "src/com/x/Leaf.java",
            "package com.x;\n\nimport com.x.Base;\n\nclass Leaf extends Middle {\n    public void run() {\n        double w = relativeOnWidth(2);\n        float s = mScale;\n    }\n}\n",
        ),
    ]);
    let s = p.context_at("src/com/x/Leaf.java", "relativeOnWidth(2)", 4096);
    assert!(
        shows(
            &s,
            "com/x/Base.java",
            "    double relativeOnWidth(double v) {"
        ),
        "{}",
        s.rendered
    );
    let s = p.context_at("src/com/x/Leaf.java", "mScale;", 4096);
    assert!(
        shows(&s, "com/x/Base.java", "    protected float mScale = 1;"),
        "{}",
        s.rendered
    );
    let s = p.context_at("src/com/x/Leaf.java", "Base;", 4096);
    assert!(
        shows(&s, "com/x/Base.java", "public abstract class Base {"),
        "{}",
        s.rendered
    );
}

// ---- budget, caps and duplicates -------------------------------------------------------

#[test]
fn a_huge_enclosing_function_leaves_room_for_definitions() {
    let mut body = String::from("from helpers import tool\n\n\ndef huge(x):\n");
    for i in 0..1300 {
        body.push_str(&format!("    x = x + {i}\n"));
    }
    body.push_str("    return tool(x)\n");
    let p = Project::new(&[
        ("main.py", &body),
        ("helpers.py", "def tool(v):\n    return v\n"),
    ]);
    let s = p.context_at("main.py", "tool(x)", 4096);
    assert_verbatim(&s);
    let enclosing = s
        .items
        .iter()
        .find(|i| i.kind == ContextItemKind::EnclosingSymbol)
        .expect("enclosing");
    assert!(
        enclosing.tokens <= 4096 * 40 / 100,
        "capped: {}",
        enclosing.tokens
    );
    assert!(enclosing.text.starts_with("def huge(x):\n"), "header kept");
    assert!(
        enclosing.text.contains("    return tool(x)\n"),
        "window around the cursor"
    );
    assert!(!enclosing.elided.is_empty());
    assert!(
        shows(&s, "helpers.py", "def tool(v):"),
        "definitions still fit"
    );
}

/// The file lines an item shows (0-based), by the rule the wire format documents.
fn shown_lines(item: &ContextItem) -> Vec<u32> {
    let mut out = Vec::new();
    let mut n = item.range.start.line;
    let mut elided = item.elided.iter().peekable();
    for _ in item.text.lines() {
        if let Some(&&(a, b)) = elided.peek()
            && a == n
        {
            elided.next();
            n = b + 1;
            continue;
        }
        out.push(n);
        n += 1;
    }
    out
}

#[test]
fn lines_the_prompt_already_shows_are_not_repeated() {
    let p = python_project();
    let text = std::fs::read_to_string(p.path("app/main.py")).expect("read");
    let start = text
        .lines()
        .position(|l| l.starts_with("def run"))
        .expect("run") as u32;
    let end = text.lines().count() as u32;
    let s = p.request("app/main.py", "Client()", 4096, |mut r| {
        r.exclude = Some(Range::new(Position::new(start, 0), Position::new(end, 0)));
        r
    });
    assert_verbatim(&s);
    assert!(!s.items.iter().any(|i| i.kind == ContextItemKind::Selection));
    assert!(!definitions(&s).is_empty(), "definitions still come");
    // No item shows a line of the excluded range, and no line appears twice.
    let mut seen: std::collections::HashSet<(String, u32)> = Default::default();
    for item in s.items.iter().filter(|i| i.kind.is_source()) {
        for n in shown_lines(item) {
            if item.uri.ends_with("app/main.py") {
                assert!(
                    !(start..end).contains(&n),
                    "line {n} is in the prompt already: {item:?}"
                );
            }
            assert!(
                seen.insert((item.uri.clone(), n)),
                "line {n} of {} twice",
                item.uri
            );
        }
    }
}

/// A class used in the code and one of its methods used at the cursor: their excerpts meet,
/// so they come as one item (no line twice).
#[test]
fn overlapping_definitions_of_one_file_merge_into_one_item() {
    let p = Project::new(&[
        (
            "lib.py",
            "class Store:\n    def __init__(self):\n        self.items = []\n\n    def add(self, x):\n        self.items.append(x)\n",
        ),
        (
            "main.py",
            "from lib import Store\n\n\ndef run():\n    s: Store = Store()\n    s.add(1)\n",
        ),
    ]);
    let s = p.context_at("main.py", "add(1)", 4096);
    assert_verbatim(&s);
    let from_lib: Vec<&ContextItem> = s
        .items
        .iter()
        .filter(|i| i.uri.ends_with("lib.py"))
        .collect();
    assert_eq!(from_lib.len(), 1, "{from_lib:#?}");
    assert!(
        from_lib[0].reason.contains("method add") && from_lib[0].reason.contains("class Store"),
        "{}",
        from_lib[0].reason
    );
}

#[test]
fn rust_crate_paths_resolve_without_a_manifest() {
    let p = Project::new(&[
        (
            "src/main.rs",
            "mod shapes;\n\nuse crate::shapes::Shape;\n\nfn compute(n: i32) -> i32 {\n    let s = Shape::square(n);\n    s.area()\n}\n",
        ),
        (
            "src/shapes.rs",
            "pub struct Shape {\n    side: i32,\n}\n\nimpl Shape {\n    pub fn square(side: i32) -> Shape {\n        Shape { side }\n    }\n\n    pub fn area(&self) -> i32 {\n        self.side * self.side\n    }\n}\n",
        ),
        ("lib/other.rs", "pub struct Shape;\n"),
    ]);
    let s = p.context_at("src/main.rs", "square(n)", 4096);
    let defs = definitions(&s);
    assert!(
        defs.iter().all(|d| d.reason.contains("(resolved)")),
        "{defs:#?}"
    );
    assert!(shows(
        &s,
        "src/shapes.rs",
        "    pub fn square(side: i32) -> Shape {"
    ));
    assert!(shows(
        &s,
        "src/shapes.rs",
        "    pub fn area(&self) -> i32 {"
    ));
    assert!(
        !s.items.iter().any(|i| i.uri.ends_with("lib/other.rs")),
        "{defs:#?}"
    );
}

/// Chains that lead back to themselves (a variable typed by its own name, classes that
/// extend each other, a constant whose type is itself) end: resolution is bounded, on a
/// small stack too.
#[test]
fn cyclic_types_and_bases_never_recurse_without_end() {
    let run = || {
        let p = Project::new(&[
            (
                "a.ts",
                "import { B } from './b';\nexport class A extends B {}\nexport const k: k.v = k;\nexport function f(x: x.y, y: x.z) {\n  const z: z.q = x;\n  return x.y.go() + z.q.run() + k.v.w;\n}\n",
            ),
            (
                "b.ts",
                "import { A } from './a';\nexport class B extends A {}\n",
            ),
            (
                "c.py",
                "from d import D\n\n\nclass C(D):\n    pass\n\n\nx: x.y = None\n\n\ndef g(v: v.w):\n    c = C()\n    return c.missing() + v.w.z + x.y\n",
            ),
            ("d.py", "from c import C\n\n\nclass D(C):\n    pass\n"),
        ]);
        let s = p.context_at("a.ts", "go()", 4096);
        assert!(!s.items.is_empty());
        let s = p.context_at("c.py", "missing()", 4096);
        assert!(!s.items.is_empty());
    };
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(run)
        .expect("thread")
        .join()
        .expect("no overflow, no panic");
}

/// Before the first index is complete, a request still resolves what the imports reach (on
/// demand, from the files), and says the index is incomplete.
#[test]
fn before_the_index_is_complete_imports_still_resolve_and_the_result_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    std::fs::write(root.join("util.py"), "def helper(x):\n    return x\n").expect("write");
    let main = root.join("main.py");
    let text = "from util import helper\n\n\ndef run():\n    return helper(1)\n";
    std::fs::write(&main, text).expect("write");
    let engine = Engine::new();
    engine.set_encoding(PositionEncoding::Utf8);
    engine.set_roots(vec![root.clone()]);
    engine.begin_indexing();
    let uri = path_to_uri(&main);
    engine.open_document(&uri, Some(main.clone()), "", 1, text);
    let snap = engine.snapshot(&uri).expect("open");
    let req = ContextRequest::at(Position::new(4, 13), PositionEncoding::Utf8);
    let s = engine.context(&snap, &req).expect("context");
    assert!(!s.index_complete);
    assert_eq!(engine.index_counts().0, 0, "nothing indexed yet");
    assert!(shows(&s, "util.py", "def helper(x):"), "{s:#?}");
    engine.index_workspace(&|_| {});
    assert!(engine.context(&snap, &req).expect("context").index_complete);
}

/// A variable holding a call's result has the callee's declared return type: its methods
/// resolve through it (Python `-> T`, Rust `-> T` and `-> Self`, Go results).
#[test]
fn variables_assigned_from_calls_take_the_return_type() {
    let p = Project::new(&[
        (
            "svc.py",
            "class Service:\n    def run(self):\n        return 1\n\n\ndef make() -> 'Service':\n    return Service()\n",
        ),
        (
            "app.py",
            "from svc import make\n\n\ndef go():\n    s = make()\n    return s.run()\n",
        ),
        ("Cargo.toml", "[package]\nname = \"d\"\n"),
        (
            "src/lib.rs",
            "mod svc;\nuse svc::Service;\n\nfn go() -> u32 {\n    let s = Service::open();\n    let t = svc::start();\n    s.run() + t.run()\n}\n",
        ),
        (
            "src/svc.rs",
            "pub struct Service;\n\nimpl Service {\n    pub fn open() -> Self {\n        Service\n    }\n\n    pub fn run(&self) -> u32 {\n        1\n    }\n}\n\npub fn start() -> Service {\n    Service\n}\n",
        ),
        (
            "src/other.rs",
            "pub struct Other;\nimpl Other {\n    pub fn run(&self) -> u32 { 2 }\n}\n",
        ),
    ]);
    let s = p.context_at("app.py", "run()", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first.uri.ends_with("svc.py") && first.text.contains("def run(self):"),
        "{first:?}"
    );
    let s = p.context_at("src/lib.rs", "run() + t", 4096);
    let first = *definitions(&s).first().expect("definition");
    assert!(
        first.uri.ends_with("src/svc.rs") && first.text.contains("pub fn run(&self) -> u32 {"),
        "{first:?}"
    );
    assert!(
        !s.items.iter().any(|i| i.uri.ends_with("src/other.rs")),
        "{:#?}",
        definitions(&s)
    );
}
