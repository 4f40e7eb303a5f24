//! Tests of the lexical tag scanner: per language, against tree-sitter on the fixtures, and no panics on any input.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;

use crate::analysis::text::MAX_SIGNATURE;

use super::*;
use crate::analysis;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/symbols");
use crate::analysis::tests::FIXTURE_FILES as FILES;

/// (name, kind, selection line, container)
type Key = (String, &'static str, u32, Option<String>);

fn keys(symbols: &[Symbol]) -> BTreeSet<Key> {
    symbols
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.kind.as_str(),
                s.selection_range.start.line,
                s.container.clone(),
            )
        })
        .collect()
}

fn tree_sitter_symbols(lang: Language, text: &str) -> Vec<Symbol> {
    let mut parser = lang.new_parser().expect("parser");
    let tree = analysis::Syntax::parse_str(&mut parser, text).expect("tree");
    analysis::flatten(analysis::symbols(lang, &tree, text))
}

fn fixture(file: &str) -> (Language, String) {
    let path = Path::new(FIXTURES).join(file);
    let text = std::fs::read_to_string(&path).expect("fixture");
    (Language::from_path(&path), text)
}

/// `kind name [container]` lines, in position order.
fn render(lang: Language, text: &str) -> Vec<String> {
    scan(lang, text)
        .iter()
        .map(|s| match &s.container {
            Some(c) => format!("{} {} {c}", s.kind.as_str(), s.name),
            None => format!("{} {}", s.kind.as_str(), s.name),
        })
        .collect()
}

fn check_invariants(text: &str, symbols: &[Symbol]) {
    let starts = crate::analysis::text::line_starts(text.as_bytes());
    for s in symbols {
        assert!(s.children.is_empty(), "flat: {}", s.name);
        assert!(
            s.range.start_byte <= s.range.end_byte,
            "{} {:?} {:?}",
            s.name,
            s.kind,
            s.range
        );
        assert!(s.range.end_byte <= text.len(), "{}", s.name);
        assert!(
            s.range.start_byte <= s.selection_range.start_byte
                && s.selection_range.end_byte <= s.range.end_byte,
            "selection inside range: {}",
            s.name
        );
        assert!(!s.name.is_empty());
        assert!(s.signature.len() <= MAX_SIGNATURE);
        assert!(!s.signature.contains('\n'));
        // Points agree with bytes.
        for (byte, point) in [
            (s.range.start_byte, s.range.start),
            (s.range.end_byte, s.range.end),
            (s.selection_range.start_byte, s.selection_range.start),
        ] {
            // lines as the client counts them: \n, \r\n and a lone \r
            let line = starts.partition_point(|&s| s <= byte) - 1;
            let line_start = starts[line];
            let line = line as u32;
            assert_eq!(point.line, line, "line of {} at {byte}", s.name);
            assert_eq!(
                point.col as usize,
                byte - line_start,
                "col of {} at {byte}",
                s.name
            );
        }
    }
}

/// On every fixture the scanner finds exactly what tree-sitter finds: same names, kinds,
/// selection lines and containers, and the same signatures and selection ranges.
#[test]
fn fixtures_agree_with_tree_sitter() {
    for file in FILES {
        let (lang, text) = fixture(file);
        let ts = tree_sitter_symbols(lang, &text);
        let ours = scan(lang, &text);
        check_invariants(&text, &ours);
        let (ts_keys, our_keys) = (keys(&ts), keys(&ours));
        let missing: Vec<_> = ts_keys.difference(&our_keys).collect();
        let extra: Vec<_> = our_keys.difference(&ts_keys).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{file}: missing {missing:?}, extra {extra:?}"
        );
        for t in &ts {
            let o = ours
                .iter()
                .find(|o| {
                    o.name == t.name && o.kind == t.kind && o.selection_range == t.selection_range
                })
                .unwrap_or_else(|| panic!("{file}: selection range of {}", t.name));
            assert_eq!(o.signature, t.signature, "{file}: signature of {}", t.name);
            assert_eq!(
                o.range.start.line, t.range.start.line,
                "{file}: range start of {}",
                t.name
            );
            assert_eq!(
                o.range.end.line, t.range.end.line,
                "{file}: range end of {}",
                t.name
            );
        }
    }
}

/// Lines end as the client ends them: with CRLF the scanner finds what it finds with LF,
/// and with a lone CR (same bytes as LF) its points still follow the client's lines.
#[test]
fn crlf_and_lone_cr_lines_are_counted_as_the_client_counts_them() {
    for file in FILES {
        let (lang, text) = fixture(file);
        let crlf = text.replace('\n', "\r\n");
        let ours = scan(lang, &crlf);
        check_invariants(&crlf, &ours);
        assert_eq!(keys(&ours), keys(&scan(lang, &text)), "{file} with CRLF");
        let cr = text.replace('\n', "\r");
        check_invariants(&cr, &scan(lang, &cr));
    }
    let symbols = scan(Language::Rust, "fn a() {}\rfn b() {}\r\nfn c() {}\n");
    let lines: Vec<(&str, u32)> = symbols
        .iter()
        .map(|s| (s.name.as_str(), s.selection_range.start.line))
        .collect();
    assert_eq!(lines, [("a", 0), ("b", 1), ("c", 2)]);
}

#[test]
fn index_sources_give_the_same_signatures() {
    for file in FILES {
        let (lang, text) = fixture(file);
        let with = scan(lang, &text);
        let without = scan_for_index(lang, &text);
        assert_eq!(with.len(), without.len());
        for (s, (t, source)) in with.iter().zip(&without) {
            assert!(t.signature.is_empty());
            assert_eq!(s.signature, source.read(&text), "{file}: {}", s.name);
        }
    }
}

#[test]
fn plain_text_has_no_symbols() {
    assert!(scan(Language::PlainText, "fn main() {}").is_empty());
}

#[test]
fn rust_skips_comments_strings_and_bodies() {
    let text = r####"
/* fn in_comment() {} /* nested */ fn still_comment() {} */
// fn line_comment() {}
const RAW: &str = r#"fn in_raw() { "}"#;
static CH: char = '{';
fn lifetimes<'a>(x: &'a str) -> &'a str { let _c = '}'; let _s = "fn in_string() {"; x }
pub(crate) async unsafe fn modifiers() {}
impl<'a, T: Fn() -> u8> fmt::Display for crate::Wrapper<'a, T> where T: Clone {
    fn fmt(&self) {}
}
impl<T> Vec<T> { pub const fn len(&self) -> usize { fn inner() {} 0 } }
macro_rules! m { () => { fn in_macro() {} } }
extern "C" { fn c_fn(x: i32); }
mod outer { pub mod inner { pub trait T { type A; const C: u8; fn m(&self); } } }
enum E { #[default] A, B(u8), C { x: u8 } = 3 }
struct Unit;
"####;
    assert_eq!(
        render(Language::Rust, text),
        [
            "constant RAW",
            "constant CH",
            "function lifetimes",
            "function modifiers",
            "impl Wrapper",
            "method fmt Wrapper",
            "impl Vec",
            "method len Vec",
            "function c_fn",
            "module outer",
            "module inner outer",
            "trait T inner",
            "type A T",
            "constant C T",
            "method m T",
            "enum E",
            "enumMember A E",
            "enumMember B E",
            "enumMember C E",
            "struct Unit",
        ]
    );
}

#[test]
fn python_blocks_by_indentation() {
    let text = "\
X = '''
def in_string():
    pass
'''
class A(Base):
    \"\"\"doc
def not_a_def(): \"\"\"
    Y = 1
    def m(self, s=\"def x(): #\"):  # def in_comment():
        def inner():
            pass
    @property
    async def p(self): return 1
    class B:
        def n(self): ...
def f(
    a,
): pass
if True:
    def hidden(): pass
type Alias = int
";
    assert_eq!(
        render(Language::Python, text),
        [
            "constant X",
            "class A",
            "field Y A",
            "method m A",
            "method p A",
            "class B A",
            "method n B",
            "function f",
            "type Alias",
        ]
    );
}

#[test]
fn javascript_templates_regexes_and_declarations() {
    let text = "\
const re = /[}{]/g, tpl = `x ${ `nested ${ {a: 1}.a }` } }`;
function f() { const inner = () => {}; }
export default class C extends mixin(A, B) {
  static #count = 0;
  field = 1;
  arrow = async (x) => { return x / 2; };
  get value() { return this.#count; }
  static async *gen() {}
  'quoted'() {}
}
module.exports = function notDeclared() {};
let g = function () {};
var h = x => x * 2
const NOT_FN = f(() => 1)
";
    assert_eq!(
        render(Language::JavaScript, text),
        [
            "constant re",
            "constant tpl",
            "function f",
            "class C",
            "field #count C",
            "field field C",
            "method arrow C",
            "method value C",
            "method gen C",
            "method quoted C",
            "function g",
            "function h",
            "constant NOT_FN",
        ]
    );
}

#[test]
fn typescript_types_and_namespaces() {
    let text = "\
export interface I<T extends { a: number }> { m<U>(x: U): T; p: string; q?(): void }
export type T<K> = { [P in keyof K]: K[P] };
declare namespace N.M { function g(): void; }
abstract class A { abstract m(): void; private constructor(readonly x: number) {} }
export const F: Foo<{ a: 1 }> = ({ a }): number => a;
const enum E { A = 1, 'B' }
";
    assert_eq!(
        render(Language::TypeScript, text),
        [
            "interface I",
            "method m I",
            "field p I",
            "method q I",
            "type T",
            "module N.M",
            "function g N.M",
            "class A",
            "method m A",
            "constructor constructor A",
            "function F",
            "enum E",
            "enumMember A E",
            "enumMember B E",
        ]
    );
}

#[test]
fn go_functions_types_and_constants() {
    let text = "\
package p
// func commented() {}
var s = `func inRaw() {
}`
func (r *Ring[T]) Push(v T) (ok bool) { if true { return } ; return }
func Decl() interface{}
func Lit() struct{ a int } { return struct{ a int }{} }
type (
	A [4]int
	G[K comparable] struct{ k K }
	I interface {
		M() string
	}
)
const (
	X, Y = 1, 2
	Z
)
";
    assert_eq!(
        render(Language::Go, text),
        [
            "method Push Ring",
            "function Decl",
            "function Lit",
            "type A",
            "struct G",
            "field k G",
            "interface I",
            "method M I",
            "constant X",
            "constant Y",
            "constant Z",
        ]
    );
}

#[test]
fn java_members() {
    let text = "\
@SuppressWarnings(\"x\") public final class Outer<T extends Comparable<T>> extends Base implements I {
    static final int A = 1, B = 2;
    private String s = \"class Fake {\";
    static { init(); }
    public <U> java.util.List<U> generic(U[] xs) throws Exception { return null; }
    Outer() { this(1); }
    abstract void abs();
    interface Inner { int K = 3; void run(); }
    enum E { X { void over() {} }, Y; void m() {} }
}
";
    assert_eq!(
        render(Language::Java, text),
        [
            "class Outer",
            "constant A Outer",
            "constant B Outer",
            "field s Outer",
            "method generic Outer",
            "constructor Outer Outer",
            "method abs Outer",
            "interface Inner Outer",
            "constant K Inner",
            "method run Inner",
            "enum E Outer",
            "enumMember X E",
            "enumMember Y E",
            "method m E",
        ]
    );
}

#[test]
fn c_declarations() {
    let text = "\
#define MAX 10 /* a comment
   spanning lines { */
#define FN(a) (a)
#if 0
int dead_code(void) {
#endif
static int (*handler)(int) = 0;
int table[] = { 1, 2 };
extern \"C\" { int c_api(void); }
typedef void (*cb_t)(void *), other_t;
struct s *make(void) { return 0; }
enum e { A, B = 2 };
int main(int argc, char **argv) { if (argc) { return 1; } return 0; }
";
    assert_eq!(
        render(Language::C, text),
        [
            "constant MAX",
            "type cb_t",
            "type other_t",
            "function make",
            "enum e",
            "enumMember A e",
            "enumMember B e",
            "function main",
        ]
    );
}

#[test]
fn cpp_classes_and_qualified_definitions() {
    let text = "\
namespace a::b { class K final : public Base<int> { public: K(); ~K(); int get() const { return 0; } operator bool() const; }; }
auto a::b::K::get2() -> int { return 1; }
template <typename T> struct S<T*> { void f(); };
a::b::K::K() : x_{1}, y_(2) {}
const char *s = R\"x(int fake() {)x\";
";
    assert_eq!(
        render(Language::Cpp, text),
        [
            "namespace a::b",
            "class K a::b",
            "constructor K K",
            "method ~K K",
            "method get K",
            "method operator bool K",
            "method get2 K",
            "struct S",
            "method f S",
            "constructor K K",
        ]
    );
}

/// Every fixture cut at every 97th byte (on a char boundary) scans without panicking and
/// with consistent ranges.
#[test]
fn truncated_fixtures_never_panic() {
    for file in FILES {
        let (lang, text) = fixture(file);
        let mut cut = 0;
        while cut <= text.len() {
            let mut end = cut;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let part = &text[..end];
            check_invariants(part, &scan(lang, part));
            // The same text read as every other language.
            for other in Language::all() {
                let _ = scan(*other, part);
            }
            cut += 97;
        }
    }
}

fn languages() -> impl Strategy<Value = Language> {
    prop::sample::select(Language::all().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes (read lossily, as the walk does) never make the scanner panic.
    #[test]
    fn random_bytes_never_panic(lang in languages(), bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        check_invariants(&text, &scan(lang, &text));
    }

    /// Token soup made of the characters that drive the scanner.
    #[test]
    fn syntax_soup_never_panics(
        lang in languages(),
        parts in prop::collection::vec(prop::sample::select(vec![
            "fn ", "struct ", "impl ", "for ", "class ", "def ", "function ", "func ", "type ",
            "enum ", "const ", "interface ", "namespace ", "template ", "typedef ", "operator",
            "#define X 1\n", "#", "\n", "    ", "\t", "{", "}", "(", ")", "[", "]", "<", ">",
            ":", "::", ";", ",", "=", "=>", "->", "'", "\"", "`", "${", "/", "*", "/*", "*/",
            "//", "r#\"", "\"#", "'''", "\"\"\"", "\\", "@", "~", "x", "Name", "é", "∞", "_",
        ]), 0..80)
    ) {
        let text: String = parts.concat();
        check_invariants(&text, &scan(lang, &text));
    }
}

/// The kinds code refers to (fields, attributes, module variables, type-literal members) are
/// found by both extractors alike, and nothing is invented from type arguments or calls.
#[test]
fn fields_attributes_and_variables_agree_with_tree_sitter() {
    let cases: &[(Language, &str, &[&str])] = &[
        (
            Language::Python,
            "Headers = Union[str, bytes]\nDEFAULT_LIMITS = Limits(max=3)\nclient = Client()\nAlias: TypeAlias = int\n\n\nclass C:\n    timeout: float = 5.0\n    name: str\n    x = 1\n\n    def __init__(self, a):\n        self.a = a\n        self.b: int = 0\n        self.a = 2\n        if a:\n            self.c = 1\n",
            &[
                "Headers type",
                "DEFAULT_LIMITS constant",
                "client variable",
                "Alias type",
                "timeout field",
                "name field",
                "x field",
                "a field",
                "b field",
            ],
        ),
        (
            Language::Rust,
            "pub struct S {\n    #[serde(default)]\n    pub a: u32,\n    pub(crate) b: Vec<(u8, u8)>,\n    c: std::collections::HashMap<K, V>,\n}\npub struct T(u8);\n",
            &["a field", "b field", "c field"],
        ),
        (
            Language::TypeScript,
            "export const t = new RequestType<Params, Item[] | null, void>(method);\nexport const u = foo<Bar, Baz>(x), v = 2;\ninterface I {\n  a: string;\n  b?: number;\n  m(): void;\n}\ntype L = {\n  x: number;\n  y(): string;\n};\nclass C {\n  private f: F;\n  g = 1;\n  #h = 2;\n  k = () => 2;\n}\n",
            &[
                "a field", "b field", "x field", "f field", "g field", "#h field",
            ],
        ),
        (
            Language::Go,
            "package p\n\ntype S struct {\n\tA, B int\n\tname string `json:\"n\"`\n\tio.Reader\n\t*Embedded\n}\n",
            &["A field", "B field", "name field"],
        ),
        (
            Language::Java,
            "class K {\n    private Client cl;\n    int a = 1, b;\n    static final int MAX = 3;\n}\n",
            &["cl field", "a field", "b field", "MAX constant"],
        ),
    ];
    for (lang, text, want) in cases {
        let scanned = scan(*lang, text);
        let tree = tree_sitter_symbols(*lang, text);
        assert_eq!(
            keys(&scanned),
            keys(&tree),
            "{lang:?}: scanner vs tree-sitter\n{text}"
        );
        let found: Vec<String> = scanned
            .iter()
            .map(|s| format!("{} {}", s.name, s.kind.as_str()))
            .collect();
        for w in *want {
            assert!(found.iter().any(|f| f == w), "{lang:?}: {w} in {found:?}");
        }
        for junk in ["Item", "void", "Bar", "Baz", "Params"] {
            assert!(
                !found.iter().any(|f| f.starts_with(&format!("{junk} "))),
                "{lang:?}: {junk} invented: {found:?}"
            );
        }
    }
}

/// A type alias whose last line ends in a type's closing `>` ends there: the declaration on
/// the next line is a symbol of its own, not part of the alias.
#[test]
fn a_type_alias_ending_in_type_arguments_ends_before_the_next_declaration() {
    let text = "export type A<\n  T = unknown,\n> =\n  | X<T, E>\n  | Y<T, E>\n\n/** doc */\nexport type B<T> = Z<T>\nexport function f() {}\n";
    let found = render(Language::TypeScript, text);
    assert_eq!(found, ["type A", "type B", "function f"]);
    let syms = scan(Language::TypeScript, text);
    let a = syms.iter().find(|s| s.name == "A").expect("A");
    assert_eq!(a.range.end.line, 4, "{a:?}");
    assert_eq!(
        keys(&syms),
        keys(&tree_sitter_symbols(Language::TypeScript, text))
    );
}
