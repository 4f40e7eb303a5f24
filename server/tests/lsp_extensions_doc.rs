//! Tidy test (as rust-analyzer's): docs/lsp-extensions.md must be updated whenever the custom
//! protocol in server/src/lsp/ext.rs changes. The doc records a hash of ext.rs.

use std::path::Path;

fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.replace("\r\n", "\n").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[test]
fn lsp_extensions_doc_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ext = std::fs::read_to_string(root.join("server/src/lsp/ext.rs")).expect("ext.rs");
    let doc = std::fs::read_to_string(root.join("docs/lsp-extensions.md"))
        .expect("docs/lsp-extensions.md");
    let expected = format!("lsp/ext.rs hash: {:016x}", fnv1a(&ext));
    assert!(
        doc.contains(&expected),
        "server/src/lsp/ext.rs changed: update docs/lsp-extensions.md to describe the change, then set its hash line to `{expected}`"
    );
    // Every method name the protocol defines is documented.
    for line in ext.lines() {
        if let Some(name) = line
            .trim()
            .strip_prefix("pub const ")
            .and_then(|rest| rest.split('"').nth(1))
        {
            assert!(
                doc.contains(name),
                "{name} is not documented in docs/lsp-extensions.md"
            );
        }
    }
}
