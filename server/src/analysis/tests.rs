//! Tests for languages, symbols, scopes, imports and identifiers over the fixture files.

use std::path::Path;

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/symbols");
/// One fixture per supported language.
pub(crate) const FIXTURE_FILES: [&str; 9] = [
    "sample.rs",
    "sample.py",
    "sample.ts",
    "sample.tsx",
    "sample.js",
    "sample.go",
    "sample.java",
    "sample.c",
    "sample.cpp",
];

fn parse(lang: Language, text: &str) -> Syntax {
    let mut parser = lang.new_parser().expect("parser");
    Syntax::parse_str(&mut parser, text).expect("tree")
}

fn fixture(file: &str) -> (Language, String, Syntax) {
    let path = Path::new(FIXTURES).join(file);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let lang = Language::from_path(&path);
    let tree = parse(lang, &text);
    (lang, text, tree)
}

fn kind_name(kind: SymbolKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("unexpected serialization {other:?}"),
    }
}

/// `depth kind name [container]`, one line per symbol, in outline order.
fn render_outline(symbols: &[Symbol]) -> Vec<String> {
    outline(symbols)
        .into_iter()
        .map(|(depth, s)| {
            let mut line = format!("{depth} {} {}", kind_name(s.kind), s.name);
            if let Some(c) = &s.container {
                line.push(' ');
                line.push_str(c);
            }
            line
        })
        .collect()
}

/// Checks the outline of a fixture against the hand-written list and `expected.json`.
fn check_outline(file: &str, expected: &str) {
    let (lang, text, tree) = fixture(file);
    assert!(!tree.has_error(), "{file} should parse cleanly");
    let syms = symbols(lang, &tree, &text);
    let got = render_outline(&syms);
    let want: Vec<String> = expected.lines().map(str::to_owned).collect();
    assert_eq!(got, want, "outline of {file}");

    // expected.json (used by the LSP integration test) must say the same thing.
    let json_path = Path::new(FIXTURES).join("expected.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).expect("expected.json"))
            .expect("valid json");
    let entries = json[file].as_array().expect("entry for fixture");
    let from_json: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["depth"],
                e["kind"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    let from_list: Vec<String> = want
        .iter()
        .map(|l| l.splitn(4, ' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        from_json, from_list,
        "expected.json and the test list for {file}"
    );

    check_invariants(&syms, &text, None);
}

fn check_invariants(syms: &[Symbol], text: &str, parent: Option<&Symbol>) {
    let mut last_start = 0;
    for s in syms {
        assert!(
            s.range.start_byte >= last_start,
            "children sorted: {}",
            s.name
        );
        last_start = s.range.start_byte;
        assert!(
            s.range.start_byte <= s.selection_range.start_byte,
            "{}",
            s.name
        );
        assert!(s.selection_range.end_byte <= s.range.end_byte, "{}", s.name);
        assert_eq!(
            &text[s.selection_range.start_byte..s.selection_range.end_byte]
                .trim_matches(|c| c == '"' || c == '\''),
            &s.name
        );
        assert!(!s.signature.is_empty(), "signature of {}", s.name);
        assert!(s.signature.len() <= 200);
        assert!(
            !s.signature.contains('\n') && !s.signature.contains("  "),
            "{:?}",
            s.signature
        );
        if let Some(p) = parent {
            assert!(
                p.range.start_byte <= s.range.start_byte && s.range.end_byte <= p.range.end_byte
            );
            assert_eq!(s.container.as_deref(), Some(p.name.as_str()));
        }
        check_invariants(&s.children, text, Some(s));
    }
}

fn find<'s>(syms: &'s [Symbol], name: &str) -> &'s Symbol {
    outline(syms)
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no symbol {name}"))
}

// ---------------------------------------------------------------------------
// Outlines (hand-written from the fixture files)
// ---------------------------------------------------------------------------

const OUTLINE_RS: &str = "\
0 constant MAX_ITEMS
0 constant GREETING
0 typeAlias ItemId
0 struct Item
1 field id Item
1 field name Item
1 field price Item
0 struct Pair
0 enum Category
1 enumMember Food Category
1 enumMember Tool Category
1 enumMember Other Category
0 trait Priced
1 typeAlias Currency Priced
1 method price Priced
1 method discounted Priced
0 impl Item
1 method new Item
1 method label Item
0 impl Item
1 typeAlias Currency Item
1 method price Item
0 impl Item
1 method fmt Item
0 module storage
1 struct Shelf storage
2 field items Shelf
1 impl Shelf storage
2 method push Shelf
1 function empty_shelf storage
0 function total_price
0 function fetch_prices
0 struct IntOrFloat
1 field i IntOrFloat
1 field f IntOrFloat
";

const OUTLINE_PY: &str = "\
0 constant MAX_RETRIES
0 constant DEFAULT_TIMEOUT
0 variable greeting
0 constant _PRIVATE_LIMIT
0 function load_orders
0 function fetch_remote
0 class OrderStatus
1 field PENDING OrderStatus
1 field SHIPPED OrderStatus
0 class Order
1 field id Order
1 field total Order
1 method __init__ Order
1 method is_large Order
1 method parse Order
1 method refresh Order
1 class Meta Order
2 field ordering Meta
2 method describe Meta
0 function summarize
0 function décoré
";

const OUTLINE_TS: &str = "\
0 constant DEFAULT_PRIORITY
0 constant LABEL
0 typeAlias TaskId
0 interface Task
1 field id Task
1 field priority Task
1 method run Task
1 method cancel Task
0 enum Status
1 enumMember Pending Status
1 enumMember Running Status
1 enumMember Done Status
0 function externalHook
0 function createTask
0 function formatTask
0 function legacyFormat
0 function idGenerator
0 class BaseScheduler
1 field queue BaseScheduler
1 constructor constructor BaseScheduler
1 method schedule BaseScheduler
1 method size BaseScheduler
0 class Scheduler
1 field timer Scheduler
1 method onTick Scheduler
1 method schedule Scheduler
1 method flush Scheduler
1 method create Scheduler
0 module Utils
1 constant VERSION Utils
1 function clamp Utils
0 module virtual:tasks
1 function register virtual:tasks
";

const OUTLINE_TSX: &str = "\
0 constant THEME_COLOR
0 typeAlias ButtonVariant
0 interface ButtonProps
1 field label ButtonProps
1 field variant ButtonProps
1 method onClick ButtonProps
1 field children ButtonProps
0 enum Size
1 enumMember Small Size
1 enumMember Large Size
0 function Button
0 function Badge
0 function Spinner
0 class Counter
1 field state Counter
1 constructor constructor Counter
1 method increment Counter
1 method componentDidMount Counter
1 method render Counter
0 function useTicker
0 function App
";

const OUTLINE_JS: &str = "\
0 constant MAX_LISTENERS
0 constant ÉTAT_INITIAL
0 function on
0 function loadConfig
0 function range
0 function debounce
0 function throttle
0 class EventBus
1 field #secret EventBus
1 field instances EventBus
1 field listeners EventBus
1 method handleError EventBus
1 constructor constructor EventBus
1 method emit EventBus
1 method count EventBus
1 method create EventBus
1 method stream EventBus
1 method #privateHelper EventBus
0 class LoggingBus
1 method emit LoggingBus
";

const OUTLINE_GO: &str = "\
0 constant DefaultCapacity
0 constant KindLRU
0 constant KindLFU
0 constant greeting
0 typeAlias Key
0 typeAlias Size
0 struct Entry
1 field Key Entry
1 field Value Entry
1 field hits Entry
0 interface Store
1 method Get Store
1 method Put Store
0 typeAlias Evictor
0 struct Stats
1 field Hits Stats
1 field Misses Stats
0 struct Cache
1 field items Cache
1 field order Cache
0 function New
0 method Get Cache
0 method Put Cache
0 method String Stats
0 method Touch Entry
0 function normalize
";

const OUTLINE_JAVA: &str = "\
0 class ShoppingCart
1 constant MAX_ITEMS ShoppingCart
1 constant CURRENCY ShoppingCart
1 field items ShoppingCart
1 field instances ShoppingCart
1 constructor ShoppingCart ShoppingCart
1 constructor ShoppingCart ShoppingCart
1 method add ShoppingCart
1 method toString ShoppingCart
1 class Item ShoppingCart
2 field name Item
2 constructor Item Item
2 method getName Item
1 enum State ShoppingCart
2 enumMember OPEN State
2 enumMember CHECKED_OUT State
2 enumMember ABANDONED State
2 field label State
2 constructor State State
2 constructor State State
2 method label State
0 interface Discount
1 constant RATE Discount
1 method apply Discount
1 method describe Discount
0 class Money
1 constructor Money Money
1 method plus Money
0 interface Audited
1 method value Audited
";

const OUTLINE_C: &str = "\
0 constant RING_CAPACITY
0 typeAlias ring_size_t
0 typeAlias compare_fn
0 struct ring
0 struct point_t
0 typeAlias node_t
0 struct node
0 enum ring_status
1 enumMember RING_OK ring_status
1 enumMember RING_FULL ring_status
1 enumMember RING_EMPTY ring_status
0 struct value
0 function ring_create
0 function ring_push
0 function main";

const OUTLINE_CPP: &str = "\
0 constant PI_APPROX
0 namespace geo
1 enum Color geo
2 enumMember Red Color
2 enumMember Green Color
2 enumMember Blue Color
1 typeAlias Scalar geo
1 struct Point geo
1 class Shape geo
2 constructor Shape Shape
2 method ~Shape Shape
2 method area Shape
2 method name Shape
1 class Circle geo
2 constructor Circle Circle
2 method area Circle
2 method operator== Circle
1 class Stack geo
2 method push Stack
2 method pop Stack
1 namespace detail geo
2 function helper detail
0 constructor Circle Circle
0 method area Circle
0 method pop Stack
0 function max_of
0 function main";

#[test]
fn outline_rust() {
    check_outline("sample.rs", OUTLINE_RS);
}

#[test]
fn outline_python() {
    check_outline("sample.py", OUTLINE_PY);
}

#[test]
fn outline_typescript() {
    check_outline("sample.ts", OUTLINE_TS);
}

#[test]
fn outline_tsx() {
    check_outline("sample.tsx", OUTLINE_TSX);
}

#[test]
fn outline_javascript() {
    check_outline("sample.js", OUTLINE_JS);
}

#[test]
fn outline_go() {
    check_outline("sample.go", OUTLINE_GO);
}

#[test]
fn outline_java() {
    check_outline("sample.java", OUTLINE_JAVA);
}

#[test]
fn outline_c() {
    check_outline("sample.c", OUTLINE_C);
}

#[test]
fn outline_cpp() {
    check_outline("sample.cpp", OUTLINE_CPP);
}

#[test]
fn expected_json_covers_every_fixture() {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("expected.json")).unwrap(),
    )
    .unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "sample.c",
            "sample.cpp",
            "sample.go",
            "sample.java",
            "sample.js",
            "sample.py",
            "sample.rs",
            "sample.ts",
            "sample.tsx"
        ]
    );
}

// ---------------------------------------------------------------------------
// Signatures and ranges
// ---------------------------------------------------------------------------

#[test]
fn signatures_rust() {
    let (lang, text, tree) = fixture("sample.rs");
    let syms = symbols(lang, &tree, &text);
    let sig = |name: &str| find(&syms, name).signature.clone();
    assert_eq!(sig("MAX_ITEMS"), "pub const MAX_ITEMS: usize = 128;");
    assert_eq!(sig("GREETING"), "static GREETING: &str = \"héllo wörld\";");
    assert_eq!(sig("Item"), "pub struct Item");
    assert_eq!(sig("new"), "pub fn new(id: ItemId, name: &str) -> Self");
    assert_eq!(sig("price"), "pub price: f64");
    let price_method = outline(&syms)
        .into_iter()
        .find(|(_, s)| s.name == "price" && s.kind == SymbolKind::Method)
        .map(|(_, s)| s.signature.clone());
    assert_eq!(price_method.as_deref(), Some("fn price(&self) -> f64;"));
    assert_eq!(
        sig("fetch_prices"),
        "pub async fn fetch_prices( ids: &[ItemId], ) -> HashMap<ItemId, f64> where ItemId: Copy,"
    );
    let impls: Vec<&str> = syms
        .iter()
        .filter(|s| s.kind == SymbolKind::Impl)
        .map(|s| s.signature.as_str())
        .collect();
    assert_eq!(
        impls,
        ["impl Item", "impl Priced for Item", "impl Display for Item"]
    );
    assert_eq!(sig("Shelf"), "pub struct Shelf<T>");
    let shelf_impl = find(&syms, "storage")
        .children
        .iter()
        .find(|s| s.kind == SymbolKind::Impl)
        .unwrap();
    assert_eq!(shelf_impl.signature, "impl<T: Clone> Shelf<T>");
    assert_eq!(
        &text[shelf_impl.selection_range.start_byte..shelf_impl.selection_range.end_byte],
        "Shelf"
    );
    // The struct's range starts at `pub struct`, after its doc comment and attributes.
    let item = find(&syms, "Item");
    assert!(text[item.range.start_byte..].starts_with("pub struct Item"));
    assert_eq!(item.range.start.line, 15);
}

#[test]
fn signatures_python() {
    let (lang, text, tree) = fixture("sample.py");
    let syms = symbols(lang, &tree, &text);
    let order = find(&syms, "Order");
    assert_eq!(order.signature, "class Order");
    // Decorated definitions include their decorators; the signature does not.
    assert!(text[order.range.start_byte..].starts_with("@dataclass\nclass Order:"));
    let parse_method = find(&syms, "parse");
    assert!(text[parse_method.range.start_byte..].starts_with("@staticmethod"));
    assert_eq!(parse_method.signature, "def parse(raw: dict) -> \"Order\"");
    assert_eq!(
        find(&syms, "fetch_remote").signature,
        "async def fetch_remote(url, *, timeout=DEFAULT_TIMEOUT)"
    );
    assert_eq!(
        find(&syms, "DEFAULT_TIMEOUT").signature,
        "DEFAULT_TIMEOUT: float = 2.5"
    );
    let decore = find(&syms, "décoré");
    assert!(text[decore.range.start_byte..].starts_with("@decorator_one\n@decorator_two"));
    assert_eq!(decore.signature, "def décoré(x)");
}

#[test]
fn signatures_typescript() {
    let (lang, text, tree) = fixture("sample.ts");
    let syms = symbols(lang, &tree, &text);
    let create = find(&syms, "createTask");
    assert_eq!(
        create.signature,
        "export function createTask(id: TaskId, run: () => Promise<void>): Task"
    );
    assert!(text[create.range.start_byte..].starts_with("export function"));
    assert_eq!(
        find(&syms, "formatTask").signature,
        "export const formatTask = (task: Task): string =>"
    );
    assert_eq!(
        find(&syms, "DEFAULT_PRIORITY").signature,
        "export const DEFAULT_PRIORITY = 5;"
    );
    assert_eq!(
        find(&syms, "BaseScheduler").signature,
        "export abstract class BaseScheduler extends EventEmitter"
    );
    assert_eq!(
        find(&syms, "externalHook").signature,
        "declare function externalHook(name: string): void;"
    );
    assert_eq!(find(&syms, "Task").signature, "export interface Task");
}

#[test]
fn signatures_go_java_c_cpp() {
    let (lang, text, tree) = fixture("sample.go");
    let syms = symbols(lang, &tree, &text);
    assert_eq!(find(&syms, "Entry").signature, "type Entry struct");
    assert_eq!(find(&syms, "Store").signature, "type Store interface");
    assert_eq!(find(&syms, "Stats").signature, "type Stats struct");
    assert_eq!(find(&syms, "KindLFU").signature, "const KindLFU");
    assert_eq!(find(&syms, "Touch").signature, "func (e *Entry) Touch()");

    let (lang, text, tree) = fixture("sample.java");
    let syms = symbols(lang, &tree, &text);
    assert_eq!(
        find(&syms, "toString").signature,
        "@Override public String toString()"
    );
    assert_eq!(
        find(&syms, "CURRENCY").signature,
        "private static final String CURRENCY = \"€\";"
    );

    let (lang, text, tree) = fixture("sample.c");
    let syms = symbols(lang, &tree, &text);
    assert_eq!(
        find(&syms, "ring_create").signature,
        "struct ring *ring_create(ring_size_t capacity)"
    );
    assert_eq!(find(&syms, "point_t").signature, "typedef struct");
    assert_eq!(
        find(&syms, "RING_CAPACITY").signature,
        "#define RING_CAPACITY 256"
    );

    let (lang, text, tree) = fixture("sample.cpp");
    let syms = symbols(lang, &tree, &text);
    let stack = find(&syms, "Stack");
    assert_eq!(stack.signature, "template <typename T> class Stack");
    assert!(text[stack.range.start_byte..].starts_with("template <typename T>"));
    assert_eq!(
        find(&syms, "Circle").signature,
        "class Circle : public Shape"
    );
    assert_eq!(
        find(&syms, "max_of").signature,
        "template <typename T> T max_of(T a, T b)"
    );
}

#[test]
fn typescript_member_decorators_are_part_of_the_range() {
    let text = "@Component({ selector: 'x' })\nexport class Widget {\n  @Input() label = '';\n  @HostListener('click')\n  onClick(): void {}\n}\n";
    let tree = parse(Language::TypeScript, text);
    let syms = symbols(Language::TypeScript, &tree, text);
    assert_eq!(
        render_outline(&syms),
        [
            "0 class Widget",
            "1 field label Widget",
            "1 method onClick Widget"
        ]
    );
    let widget = &syms[0];
    assert_eq!(widget.range.start_byte, 0);
    assert_eq!(
        widget.signature,
        "@Component({ selector: 'x' }) export class Widget"
    );
    assert!(text[widget.children[0].range.start_byte..].starts_with("@Input() label"));
    let on_click = &widget.children[1];
    assert!(text[on_click.range.start_byte..].starts_with("@HostListener"));
    assert_eq!(on_click.signature, "onClick(): void");
    let inside = text.find("void {}").unwrap();
    let chain = enclosing_scopes(Language::TypeScript, &tree, text, inside);
    assert_eq!(chain.last().map(|s| s.range), Some(on_click.range));
}

#[test]
fn multi_declarator_signatures_keep_the_keyword() {
    let text = "export const a = 1, b = () => 2;\nlet c = 3;\n";
    let tree = parse(Language::TypeScript, text);
    let syms = symbols(Language::TypeScript, &tree, text);
    let sigs: Vec<(&str, &str)> = syms
        .iter()
        .map(|s| (s.name.as_str(), s.signature.as_str()))
        .collect();
    assert_eq!(
        sigs,
        [("a", "export const a = 1"), ("b", "export const b = () =>")]
    );

    let text = "class G { static final int A = 1, B = 2; }\n";
    let tree = parse(Language::Java, text);
    let syms = symbols(Language::Java, &tree, text);
    let sigs: Vec<&str> = syms[0]
        .children
        .iter()
        .map(|s| s.signature.as_str())
        .collect();
    assert_eq!(sigs, ["static final int A = 1", "static final int B = 2"]);

    let text = "package p\nconst a, b = 1, 2\n";
    let tree = parse(Language::Go, text);
    let syms = symbols(Language::Go, &tree, text);
    assert_eq!(render_outline(&syms), ["0 constant a", "0 constant b"]);
    assert_eq!(syms[1].signature, "const a, b = 1, 2");
}

#[test]
fn long_signatures_are_truncated_on_a_char_boundary() {
    let params: String = (0..80).map(|i| format!("é{i}: u8, ")).collect();
    let text = format!("fn long({params}) {{}}\n");
    let tree = parse(Language::Rust, &text);
    let syms = symbols(Language::Rust, &tree, &text);
    assert_eq!(syms.len(), 1);
    assert!(syms[0].signature.len() <= 200 && syms[0].signature.len() > 190);
    assert!(syms[0].signature.starts_with("fn long(é0: u8, é1"));
}

// ---------------------------------------------------------------------------
// Enclosing scopes
// ---------------------------------------------------------------------------

fn scopes_at(file: &str, needle: &str) -> Vec<String> {
    let (lang, text, tree) = fixture(file);
    let byte = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in {file}"));
    enclosing_scopes(lang, &tree, &text, byte)
        .iter()
        .map(|s| {
            assert!(s.children.is_empty());
            format!("{} {}", kind_name(s.kind), s.name)
        })
        .collect()
}

#[test]
fn enclosing_scopes_per_language() {
    assert_eq!(
        scopes_at("sample.rs", "format!(\"#{}"),
        ["impl Item", "method label"]
    );
    assert_eq!(
        scopes_at("sample.rs", "self.items.push(item)"),
        ["module storage", "impl Shelf", "method push"]
    );
    // Nested functions are not symbols: the innermost scope is the outer function.
    assert_eq!(scopes_at("sample.rs", "x\n    }"), ["function total_price"]);
    assert_eq!(
        scopes_at("sample.rs", "Tool {"),
        ["enum Category", "enumMember Tool"]
    );
    assert_eq!(
        scopes_at("sample.rs", "use std::collections"),
        Vec::<String>::new()
    );
    assert_eq!(
        scopes_at("sample.py", "return \"meta\""),
        ["class Order", "class Meta", "method describe"]
    );
    assert_eq!(
        scopes_at("sample.py", "@staticmethod"),
        ["class Order", "method parse"]
    );
    assert_eq!(
        scopes_at("sample.ts", "this.queue = []"),
        ["class Scheduler", "method flush"]
    );
    assert_eq!(
        scopes_at("sample.ts", "Math.min"),
        ["module Utils", "function clamp"]
    );
    assert_eq!(
        scopes_at("sample.tsx", "super(props)"),
        ["class Counter", "constructor constructor"]
    );
    assert_eq!(
        scopes_at("sample.js", "console.log(event)"),
        ["class LoggingBus", "method emit"]
    );
    assert_eq!(
        scopes_at("sample.go", "v, ok := c.items[key]"),
        ["method Get"]
    );
    assert_eq!(
        scopes_at("sample.go", "Put(key Key, value any)"),
        ["interface Store", "method Put"]
    );
    assert_eq!(
        scopes_at("sample.java", "return label;"),
        ["class ShoppingCart", "enum State", "method label"]
    );
    assert_eq!(
        scopes_at("sample.c", "r->data[r->head++]"),
        ["function ring_push"]
    );
    assert_eq!(
        scopes_at("sample.cpp", "items_.push_back(value)"),
        ["namespace geo", "class Stack", "method push"]
    );
    assert_eq!(scopes_at("sample.cpp", "items_.pop_back()"), ["method pop"]);
}

#[test]
fn enclosing_scopes_match_symbols() {
    // Every symbol's chain ends with the symbol itself, with the same fields.
    for file in FIXTURE_FILES {
        let (lang, text, tree) = fixture(file);
        let syms = symbols(lang, &tree, &text);
        for (depth, s) in outline(&syms) {
            if s.kind == SymbolKind::Field {
                // Fields are not scopes: a cursor on one is in its type.
                continue;
            }
            let chain = enclosing_scopes(lang, &tree, &text, s.selection_range.start_byte);
            let last = chain
                .last()
                .unwrap_or_else(|| panic!("{file}: no scope for {}", s.name));
            // `typedef struct node {...} node_t;` gives two sibling symbols, the alias
            // (the whole typedef) and the struct inside it: both contain the struct.
            let typedef_struct = matches!(lang, Language::C | Language::Cpp)
                && chain.len() == depth + 2
                && chain[chain.len() - 2].kind == SymbolKind::TypeAlias;
            assert!(
                chain.len() == depth + 1 || typedef_struct,
                "{file}: {}",
                s.name
            );
            assert_eq!(
                (
                    &last.name,
                    last.kind,
                    last.range,
                    last.selection_range,
                    &last.container,
                    &last.signature
                ),
                (
                    &s.name,
                    s.kind,
                    s.range,
                    s.selection_range,
                    &s.container,
                    &s.signature
                ),
                "{file}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Imports
// ---------------------------------------------------------------------------

fn imports_of(file: &str) -> Vec<(String, Option<String>)> {
    let (lang, text, tree) = fixture(file);
    imports(lang, &tree, &text)
        .into_iter()
        .map(|i| (i.text, i.module))
        .collect()
}

fn modules(file: &str) -> Vec<String> {
    imports_of(file)
        .into_iter()
        .map(|(_, m)| m.unwrap_or_default())
        .collect()
}

#[test]
fn imports_per_language() {
    assert_eq!(
        modules("sample.rs"),
        [
            "std::collections",
            "std::fmt",
            "crate::util",
            "serde",
            "super"
        ]
    );
    assert_eq!(
        imports_of("sample.rs")[1].0,
        "use std::fmt::{self, Display};"
    );
    assert_eq!(
        modules("sample.py"),
        [
            "__future__",
            "os",
            "sys",
            "json",
            "collections",
            ".models",
            ".."
        ]
    );
    assert_eq!(imports_of("sample.py")[3].0, "import sys, json as js");
    assert_eq!(
        modules("sample.ts"),
        [
            "events",
            "node:path",
            "./config",
            "../lib/helpers",
            "fs",
            "./legacy"
        ]
    );
    assert_eq!(
        imports_of("sample.ts")[5].0,
        "const legacy = require(\"./legacy\");"
    );
    assert_eq!(
        modules("sample.tsx"),
        ["react", "react", "./Button.module.css"]
    );
    assert_eq!(
        modules("sample.js"),
        ["fs/promises", "./utils.js", "path", "util", "./polyfills"]
    );
    assert_eq!(
        modules("sample.go"),
        [
            "fmt",
            "errors",
            "strings",
            "embed",
            "github.com/example/project/internal/list"
        ]
    );
    let go = imports_of("sample.go");
    assert_eq!(go[0].0, "import \"fmt\"");
    assert_eq!(go[2].0, "import str \"strings\"");
    assert_eq!(
        modules("sample.java"),
        [
            "java.util.ArrayList",
            "java.util.List",
            "java.util.concurrent",
            "java.util.Objects"
        ]
    );
    assert_eq!(
        imports_of("sample.java")[3].0,
        "import static java.util.Objects.requireNonNull;"
    );
    assert_eq!(modules("sample.c"), ["stdio.h", "stdlib.h", "ring.h"]);
    assert_eq!(imports_of("sample.c")[0].0, "#include <stdio.h>");
    assert_eq!(
        modules("sample.cpp"),
        ["iostream", "vector", "shapes/shape.hpp"]
    );
}

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

#[test]
fn identifiers_in_function_bodies() {
    let (lang, text, tree) = fixture("sample.rs");
    let syms = symbols(lang, &tree, &text);
    let total = find(&syms, "total_price");
    let ids = identifiers_in(&tree, &text, total.range.start_byte, total.range.end_byte);
    // Primitive types (`f64`) and keywords are not identifiers; `x` and `i` are too short.
    assert_eq!(
        ids,
        [
            "total_price",
            "items",
            "Item",
            "helper",
            "iter",
            "map",
            "price",
            "sum"
        ]
    );

    let (lang, text, tree) = fixture("sample.ts");
    let syms = symbols(lang, &tree, &text);
    let create = find(&syms, "create");
    let ids = identifiers_in(&tree, &text, create.range.start_byte, create.range.end_byte);
    assert_eq!(ids, ["create", "Scheduler"]);

    let (lang, text, tree) = fixture("sample.go");
    let syms = symbols(lang, &tree, &text);
    let string = find(&syms, "String");
    let ids = identifiers_in(&tree, &text, string.range.start_byte, string.range.end_byte);
    // Go's predeclared types (`string`) are plain type identifiers.
    assert_eq!(
        ids,
        [
            "Stats", "String", "string", "fmt", "Sprintf", "Hits", "Misses"
        ]
    );

    // A range starting mid-file and cutting an identifier keeps only whole names.
    let (_, text, tree) = fixture("sample.py");
    let start = text.find("MAX_RETRIES").unwrap() + 1;
    let end = text.find("greeting").unwrap() + 4;
    assert_eq!(
        identifiers_in(&tree, &text, start, end),
        ["DEFAULT_TIMEOUT", "float"]
    );
    assert!(identifiers_in(&tree, &text, end, start).is_empty());
    assert!(identifiers_in(&tree, &text, text.len() + 10, text.len() + 20).is_empty());
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

/// Runs every function on a text and checks nothing panics.
fn exercise(lang: Language, text: &str) {
    let tree = parse(lang, text);
    let syms = symbols(lang, &tree, text);
    let _ = outline(&syms);
    let _ = flatten(syms);
    let _ = imports(lang, &tree, text);
    let len = text.len();
    for byte in [0, 1, len / 3, len / 2, len.saturating_sub(1), len, len + 5] {
        let _ = enclosing_scopes(lang, &tree, text, byte);
        let _ = identifiers_in(&tree, text, byte, byte + 64);
    }
    let _ = identifiers_in(&tree, text, 0, usize::MAX);
    // A tree that does not match the text must not panic either.
    let short = text.get(..len / 2).unwrap_or("");
    let _ = symbols(lang, &tree, short);
    let _ = imports(lang, &tree, short);
    let _ = enclosing_scopes(lang, &tree, short, len / 2);
    let _ = identifiers_in(&tree, short, 0, len);
}

#[test]
fn plain_text_has_nothing() {
    assert!(Language::PlainText.grammar().is_none());
    assert!(Language::PlainText.new_parser().is_none());
    let tree = parse(Language::Rust, "fn main() {}");
    assert!(symbols(Language::PlainText, &tree, "fn main() {}").is_empty());
    assert!(imports(Language::PlainText, &tree, "fn main() {}").is_empty());
    assert!(enclosing_scopes(Language::PlainText, &tree, "fn main() {}", 5).is_empty());
}

#[test]
fn empty_files() {
    for &lang in Language::all() {
        let tree = parse(lang, "");
        assert!(symbols(lang, &tree, "").is_empty());
        assert!(imports(lang, &tree, "").is_empty());
        assert!(enclosing_scopes(lang, &tree, "", 0).is_empty());
        assert!(identifiers_in(&tree, "", 0, 10).is_empty());
    }
}

#[test]
fn garbage_does_not_panic() {
    // A deterministic xorshift generator: no extra dependencies.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "<",
        ">",
        ";",
        ":",
        ",",
        ".",
        "=",
        "\n",
        "  ",
        "\t",
        "\"",
        "'",
        "`",
        "#",
        "@",
        "/*",
        "*/",
        "//",
        "fn",
        "def",
        "class",
        "struct",
        "impl",
        "mod",
        "func",
        "type",
        "interface",
        "enum",
        "export",
        "import",
        "from",
        "use",
        "namespace",
        "template",
        "typedef",
        "#include",
        "#define",
        "package",
        "const",
        "static",
        "final",
        "Foo",
        "bar",
        "x",
        "é",
        "日本",
        "\u{0}",
        "\u{feff}",
        "🦀",
        "=>",
        "->",
        "::",
        "*",
        "&",
    ];
    for &lang in Language::all() {
        for _ in 0..20 {
            let len = (next() % 400) as usize;
            let text: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            exercise(lang, &text);
        }
    }
}

#[test]
fn deeply_nested_broken_code_does_not_panic() {
    let n = 3000;
    let cases: Vec<(Language, String)> = vec![
        (Language::Rust, "mod a { ".repeat(n)),
        (Language::Rust, "impl A { fn f() { ".repeat(n)),
        (
            Language::Python,
            (0..300)
                .map(|i| format!("{}class C{i}:\n", " ".repeat(i)))
                .collect(),
        ),
        (
            Language::TypeScript,
            "namespace A { class B { m() { ".repeat(n),
        ),
        (Language::Tsx, "<div>{(".repeat(n)),
        (Language::JavaScript, "function f() { class C { ".repeat(n)),
        (Language::Go, "func f() { type T struct { ".repeat(n)),
        (Language::Java, "class A { enum B { C; class D { ".repeat(n)),
        (Language::C, "#ifdef X\nstruct s { ".repeat(n)),
        (
            Language::Cpp,
            "namespace a { template <class T> class B { ".repeat(n),
        ),
        (Language::Cpp, "(".repeat(20 * n)),
        (
            Language::Cpp,
            "template <class T> ".repeat(n) + "class X {};",
        ),
        (Language::Rust, "mod a { ".repeat(n) + &"}".repeat(n)),
        (Language::Cpp, "namespace a { ".repeat(n) + &"}".repeat(n)),
        (Language::Java, "class A { ".repeat(n) + &"}".repeat(n)),
        (Language::Cpp, "extern \"C\" ".repeat(n) + "int f() {}"),
        (
            Language::TypeScript,
            "export declare ".repeat(n) + "function f(): void;",
        ),
        (Language::Python, "@d\n".repeat(n) + "def f(): pass\n"),
    ];
    for (lang, text) in cases {
        exercise(lang, &text);
        let tree = parse(lang, &text);
        let _ = enclosing_scopes(lang, &tree, &text, text.len() - 1);
        let _ = enclosing_scopes(lang, &tree, &text, text.len() / 2);
    }
    // Well-formed deep nesting is cut off at a fixed depth rather than overflowing the stack.
    let text = "mod a { ".repeat(n) + &"}".repeat(n);
    let tree = parse(Language::Rust, &text);
    let syms = symbols(Language::Rust, &tree, &text);
    let depth = outline(&syms).iter().map(|(d, _)| *d).max().unwrap_or(0);
    assert!((10..100).contains(&depth), "{depth}");
    let chain = enclosing_scopes(Language::Rust, &tree, &text, n * 8);
    assert_eq!(chain.len(), depth + 1);
}

#[test]
fn every_language_parses_its_fixture_without_errors() {
    for &lang in Language::all() {
        assert!(lang.grammar().is_some(), "{lang:?}");
    }
    for file in FIXTURE_FILES {
        let (lang, text, tree) = fixture(file);
        assert!(!tree.has_error(), "{file}");
        exercise(lang, &text);
    }
}

// ---------------------------------------------------------------------------
// Languages
// ---------------------------------------------------------------------------

#[test]
fn language_detection() {
    let p = |s: &str| Language::from_path(Path::new(s));
    assert_eq!(p("src/main.rs"), Language::Rust);
    assert_eq!(p("a/b.pyi"), Language::Python);
    assert_eq!(p("x.mts"), Language::TypeScript);
    assert_eq!(p("x.tsx"), Language::Tsx);
    assert_eq!(p("x.jsx"), Language::JavaScript);
    assert_eq!(p("x.cjs"), Language::JavaScript);
    assert_eq!(p("main.go"), Language::Go);
    assert_eq!(p("A.java"), Language::Java);
    assert_eq!(p("x.h"), Language::C);
    assert_eq!(p("x.hpp"), Language::Cpp);
    assert_eq!(p("x.cc"), Language::Cpp);
    assert_eq!(p("README"), Language::PlainText);
    assert_eq!(p("notes.txt"), Language::PlainText);

    assert_eq!(
        Language::from_language_id("typescriptreact"),
        Some(Language::Tsx)
    );
    assert_eq!(
        Language::from_language_id("javascriptreact"),
        Some(Language::JavaScript)
    );
    assert_eq!(Language::from_language_id("fundamental"), None);

    assert_eq!(Language::detect("", Path::new("lib.rs")), Language::Rust);
    assert_eq!(
        Language::detect("fundamental", Path::new("x.py")),
        Language::Python
    );
    assert_eq!(
        Language::detect("fundamental", Path::new("x.unknown")),
        Language::PlainText
    );
    assert_eq!(Language::detect("go", Path::new("x.txt")), Language::Go);

    for &lang in Language::all() {
        assert_eq!(serde_json::to_value(lang).unwrap(), lang.name());
        assert!(lang.new_parser().is_some());
    }
    assert_eq!(
        serde_json::to_value(Language::PlainText).unwrap(),
        "plaintext"
    );
}

// ---------------------------------------------------------------------------
// Throughput (run with `cargo test --release -- --ignored throughput --nocapture`)
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Segmented syntax
// ---------------------------------------------------------------------------

/// A large file of every language splits into segments, and the segments read exactly as
/// one tree for the whole file: the same top-level nodes, the same symbols and imports.
#[test]
fn large_files_of_every_language_split_and_read_as_one_tree() {
    for file in FIXTURE_FILES {
        let (lang, text, _) = fixture(file);
        // Repeat the body (Go: without its package clause) until the file is large.
        let body: String = if lang == Language::Go {
            text.lines()
                .filter(|l| !l.starts_with("package "))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            text.clone()
        };
        let mut big = text.clone();
        while big.len() < 3 * SPLIT_MIN_BYTES {
            big.push('\n');
            big.push_str(&body);
        }
        let mut parser = lang.new_parser().expect("parser");
        let whole = Syntax::from_tree(parser.parse(&big, None).expect("tree"));
        assert!(!whole.has_error(), "{file} repeated parses cleanly");
        let split = Syntax::parse_str(&mut parser, &big).expect("tree");
        assert!(split.tree_count() > 1, "{file} is split");
        assert_eq!(split.top_level_sexps(), whole.top_level_sexps(), "{file}");
        assert_eq!(
            symbols(lang, &split, &big),
            symbols(lang, &whole, &big),
            "{file}"
        );
        assert_eq!(
            imports(lang, &split, &big),
            imports(lang, &whole, &big),
            "{file}"
        );
        // The scope chain and the identifiers at a spot deep in the file agree too.
        let spot = big.len() * 2 / 3;
        assert_eq!(
            enclosing_scopes(lang, &split, &big, spot),
            enclosing_scopes(lang, &whole, &big, spot),
            "{file}"
        );
        assert_eq!(
            identifiers_in(&split, &big, spot - 2000, spot + 2000),
            identifiers_in(&whole, &big, spot - 2000, spot + 2000),
            "{file}"
        );
    }
}
