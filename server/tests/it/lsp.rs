//! End-to-end LSP tests: the real binary over real Content-Length framed stdio.

use crate::support;

use serde_json::{Value, json};
use support::{LspClient, copy_fixture, file_uri};

fn project() -> tempfile::TempDir {
    let dir = copy_fixture("project");
    // Created here, not in the repo: git itself would ignore them.
    std::fs::create_dir_all(dir.path().join("node_modules/junk")).unwrap();
    std::fs::write(
        dir.path().join("node_modules/junk/index.js"),
        "function shouldNotBeIndexed() {}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("gen")).unwrap();
    std::fs::write(
        dir.path().join("gen/out.js"),
        "function ignoredByGitignore() {}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".gitignore"), "gen/\n").unwrap();
    let mut binary = b"fn looks_like_rust() {}\n".to_vec();
    binary.extend_from_slice(&[0, 159, 146, 150, 0, 1, 2]);
    std::fs::write(dir.path().join("src/blob.rs"), binary).unwrap();
    dir
}

/// The index updates in the background: asks workspace/symbol until `query` gives `want`
/// (bounded; fails the test otherwise).
fn symbols_eventually(c: &mut LspClient, query: &str, want: &[&str]) {
    let mut got = Vec::new();
    for _ in 0..250 {
        let r = c
            .request("workspace/symbol", json!({ "query": query }))
            .unwrap();
        got = names(&r);
        if got == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("workspace/symbol {query:?} gave {got:?}, expected {want:?}");
}

/// Writes `text` to `root/rel`, creating folders; returns the path.
fn write_file(root: &std::path::Path, rel: &str, text: &str) -> std::path::PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn names(result: &Value) -> Vec<String> {
    result
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn handshake_declares_capabilities_and_negotiates_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    let init = c.initialize(dir.path(), json!({}));
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    assert_eq!(caps["documentSymbolProvider"], true);
    assert_eq!(caps["workspaceSymbolProvider"], true);
    assert_eq!(caps["codeActionProvider"], true);
    assert!(caps["executeCommandProvider"]["commands"].is_array());
    assert_eq!(init["serverInfo"]["name"], "infinity-matrix");
    c.shutdown();

    let mut c = LspClient::spawn();
    let init = c.initialize(
        dir.path(),
        json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}),
    );
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    c.shutdown();
}

#[test]
fn requests_after_shutdown_are_rejected_and_exit_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    // Before initialize: the spec's "server not initialized" error.
    let early = c.request("workspace/symbol", json!({"query": ""}));
    assert_eq!(early.unwrap_err()["code"], -32002);
    c.initialize(dir.path(), json!({}));
    assert!(c.request("shutdown", Value::Null).is_ok());
    // After shutdown: the spec's InvalidRequest, and the server still reads until `exit`.
    let late = c.request("workspace/symbol", json!({"query": ""}));
    assert_eq!(late.unwrap_err()["code"], -32600);
    c.exit();
}

/// A server on an empty workspace with one Rust document `name` open.
fn server_with_open_document(name: &str, text: &str) -> (tempfile::TempDir, LspClient, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    c.initialize(dir.path(), json!({}));
    let uri = file_uri(&dir.path().join(name));
    c.open(&uri, "rust", text);
    (dir, c, uri)
}

#[test]
fn incremental_sync_in_utf16_with_emoji_and_crlf() {
    let (_dir, mut c, uri) =
        server_with_open_document("a.rs", "fn a() {}\r\n// 😀 x\r\nfn b() {}\r\n");
    // Replace the "x" after the emoji: UTF-16 column 6 ("// " = 3, emoji = 2 units, space = 1).
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 1, "character": 6}, "end": {"line": 1, "character": 7}}, "text": "fn c() {}"}]}),
    );
    let ctx = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0},
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}}}),
        )
        .unwrap();
    assert_eq!(ctx["items"][0]["kind"], "selection");
    assert_eq!(
        ctx["items"][0]["text"],
        "fn a() {}\r\n// 😀 fn c() {}\r\nfn b() {}\r\n"
    );
    c.shutdown();
}

#[test]
fn document_symbol_lines_count_a_lone_cr_as_the_client_does() {
    // The client sees four lines (CRLF, lone CR, LF); tree-sitter counts rows by LF only.
    let (_dir, mut c, uri) =
        server_with_open_document("cr.rs", "fn a() {}\r\nfn b() {}\rfn c() {}\nfn d() {}\n");
    let result = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    let lines: Vec<(String, u64)> = result
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["selectionRange"]["start"]["line"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
        .iter()
        .map(|(n, l)| (n.to_string(), *l))
        .collect();
    assert_eq!(lines, want);
    c.shutdown();
}

#[test]
fn workspace_symbol_lines_count_a_lone_cr_as_the_client_does() {
    // A closed file (read by the tag scanner) and an open one (tree-sitter), each with a CRLF,
    // a lone CR and an LF: the client sees lines 0, 1, 2.
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "closed.rs",
        "fn shut_a() {}\r\nfn shut_b() {}\rfn shut_c() {}\n",
    );
    let mut c = LspClient::spawn();
    c.initialize_and_index(dir.path());
    let uri = file_uri(&dir.path().join("open.rs"));
    c.open(
        &uri,
        "rust",
        "fn open_a() {}\r\nfn open_b() {}\rfn open_c() {}\n",
    );
    for prefix in ["shut_", "open_"] {
        let want: Vec<(String, u64)> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(line, n)| (format!("{prefix}{n}"), line as u64))
            .collect();
        let mut found = Vec::new();
        for _ in 0..250 {
            let r = c
                .request("workspace/symbol", json!({ "query": prefix }))
                .unwrap();
            found = r
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("").to_string(),
                        s["location"]["range"]["start"]["line"]
                            .as_u64()
                            .unwrap_or(99),
                    )
                })
                .filter(|(n, _)| n.starts_with(prefix))
                .collect::<Vec<_>>();
            found.sort();
            if found.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found, want, "{prefix}");
    }
    c.shutdown();
}

#[test]
fn document_symbols_for_every_language_match_the_fixtures() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/symbols");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap())
            .unwrap();
    let expected = expected.as_object().expect("expected.json is an object");
    assert!(expected.len() >= 9, "one fixture per language");
    let mut c = LspClient::spawn();
    c.initialize(&fixtures, json!({}));
    for (file, want) in expected {
        let path = fixtures.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let uri = file_uri(&path);
        // Language ids as editors send them; "" exercises detection from the path.
        let lang = match path.extension().and_then(|e| e.to_str()) {
            Some("rs") => "rust",
            Some("py") => "python",
            Some("tsx") => "typescriptreact",
            Some("ts") => "typescript",
            Some("go") => "go",
            _ => "",
        };
        c.open(&uri, lang, &text);
        let result = c
            .request(
                "textDocument/documentSymbol",
                json!({"textDocument": {"uri": uri}}),
            )
            .unwrap();
        let mut got = Vec::new();
        fn walk(list: &Value, depth: usize, out: &mut Vec<(String, u64, usize)>) {
            for s in list.as_array().into_iter().flatten() {
                out.push((
                    s["name"].as_str().unwrap_or("").to_string(),
                    s["kind"].as_u64().unwrap_or(0),
                    depth,
                ));
                walk(&s["children"], depth + 1, out);
            }
        }
        walk(&result, 0, &mut got);
        let want: Vec<(String, u64, usize)> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let kind = match w["kind"].as_str().unwrap() {
                    "module" => 2,
                    "namespace" => 3,
                    "class" => 5,
                    "method" => 6,
                    "field" => 8,
                    "constructor" => 9,
                    "enum" => 10,
                    "interface" | "trait" => 11,
                    "function" => 12,
                    "variable" => 13,
                    "constant" => 14,
                    "impl" => 19,
                    "enumMember" => 22,
                    "struct" => 23,
                    "type" | "typeAlias" => 26,
                    other => panic!("unknown kind {other}"),
                };
                (
                    w["name"].as_str().unwrap().to_string(),
                    kind,
                    w["depth"].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(got, want, "symbols of {file}");
        // Every range contains its selection range.
        fn check_ranges(list: &Value) {
            for s in list.as_array().into_iter().flatten() {
                let r = &s["range"];
                let sel = &s["selectionRange"];
                let key = |p: &Value| {
                    (
                        p["line"].as_u64().unwrap(),
                        p["character"].as_u64().unwrap(),
                    )
                };
                assert!(
                    key(&r["start"]) <= key(&sel["start"]) && key(&sel["end"]) <= key(&r["end"]),
                    "{s}"
                );
                check_ranges(&s["children"]);
            }
        }
        check_ranges(&result);
    }
    c.shutdown();
}

#[test]
fn workspace_symbol_is_fuzzy_ranked_and_honours_ignores() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize_and_index(dir.path());
    let result = c
        .request("workspace/symbol", json!({"query": "helper"}))
        .unwrap();
    let got = names(&result);
    assert_eq!(got.iter().filter(|n| *n == "helper").count(), 2, "{got:?}");
    let result = c
        .request("workspace/symbol", json!({"query": "lngfn"}))
        .unwrap();
    assert_eq!(
        names(&result).first().map(String::as_str),
        Some("long_function")
    );
    let result = c
        .request("workspace/symbol", json!({"query": "sqr"}))
        .unwrap();
    let first = &result[0];
    assert_eq!(first["name"], "square");
    assert_eq!(first["containerName"], "Shape");
    assert!(
        first["location"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/src/shapes.rs")
    );
    assert_eq!(first["location"]["range"]["start"]["line"], 6);
    for hidden in [
        "shouldNotBeIndexed",
        "ignoredByGitignore",
        "ignoredByDotIgnore",
        "looks_like_rust",
    ] {
        let r = c
            .request("workspace/symbol", json!({"query": hidden}))
            .unwrap();
        assert!(
            !names(&r).iter().any(|n| n == hidden),
            "{hidden} should not be indexed"
        );
    }
    // A python symbol, and progress was reported with the standard notifications.
    let r = c
        .request("workspace/symbol", json!({"query": "greeting"}))
        .unwrap();
    assert_eq!(names(&r).first().map(String::as_str), Some("greeting"));
    assert!(
        c.server_requests
            .iter()
            .any(|r| r["method"] == "window/workDoneProgress/create")
    );
    assert!(
        c.notifications
            .iter()
            .any(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "begin")
    );
    assert!(
        c.notifications
            .iter()
            .any(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end")
    );
    c.shutdown();
}

#[test]
fn watched_file_events_follow_the_walk_rules_and_cover_whole_folders() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize(
        dir.path(),
        json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}),
    );
    c.wait_indexed();
    let created = |paths: &[&std::path::Path], typ: u32| {
        let changes: Vec<Value> = paths
            .iter()
            .map(|p| json!({"uri": file_uri(p), "type": typ}))
            .collect();
        json!({ "changes": changes })
    };
    // Files the walk would skip (ignored by .gitignore, under node_modules, hidden), then
    // one it would index, in one notification (handled in order).
    let root = dir.path();
    let ignored = root.join("gen/late.js");
    std::fs::write(&ignored, "function lateButIgnored() {}\n").unwrap();
    let vendored = root.join("node_modules/junk/late.js");
    std::fs::write(&vendored, "function lateInNodeModules() {}\n").unwrap();
    std::fs::create_dir_all(root.join("src/.cache")).unwrap();
    let hidden = root.join("src/.cache/h.rs");
    std::fs::write(&hidden, "pub fn late_and_hidden() {}\n").unwrap();
    let control = root.join("src/control.rs");
    std::fs::write(&control, "pub fn control_after_skipped() {}\n").unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        created(&[&ignored, &vendored, &hidden, &control], 1),
    );
    symbols_eventually(&mut c, "control_after_skipped", &["control_after_skipped"]);
    for skipped in ["lateButIgnored", "lateInNodeModules", "late_and_hidden"] {
        let r = c
            .request("workspace/symbol", json!({ "query": skipped }))
            .unwrap();
        assert!(!names(&r).iter().any(|n| n == skipped), "{skipped}");
    }
    // A folder appears with files in it (and below it): the event names only the folder.
    let folder = root.join("src/newmod");
    std::fs::create_dir_all(folder.join("deep")).unwrap();
    std::fs::write(folder.join("a.rs"), "pub fn alpha_created_folder() {}\n").unwrap();
    std::fs::write(
        folder.join("deep/b.rs"),
        "pub fn beta_nested_created() {}\n",
    )
    .unwrap();
    c.notify("workspace/didChangeWatchedFiles", created(&[&folder], 1));
    symbols_eventually(&mut c, "alpha_created_folder", &["alpha_created_folder"]);
    symbols_eventually(&mut c, "beta_nested_created", &["beta_nested_created"]);
    // The folder is deleted: everything under it leaves the index.
    std::fs::remove_dir_all(&folder).unwrap();
    c.notify("workspace/didChangeWatchedFiles", created(&[&folder], 3));
    symbols_eventually(&mut c, "alpha_created_folder", &[]);
    symbols_eventually(&mut c, "beta_nested_created", &[]);
    c.shutdown();
}

#[test]
fn index_settings_and_client_capabilities_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| write_file(root, rel, text);
    write("src/small.rs", "pub fn small_enough() {}\n");
    let padding = "// padding\n".repeat(100);
    write(
        "src/big.rs",
        &format!("pub fn too_big_to_index() {{}}\n{padding}"),
    );
    write("vendorlib/v.rs", "pub fn in_excluded_dir() {}\n");
    let notes = write("notes.txt", "plain text: no grammar, no symbols\n");
    let mut c = LspClient::spawn();
    // No dynamic registration for watched files: no watcher is registered.
    c.initialize_with(
        root,
        json!({"window": {"workDoneProgress": true}}),
        json!({"maxFileSizeBytes": 600, "excludeDirs": ["vendorlib"]}),
    );
    c.wait_indexed();
    symbols_eventually(&mut c, "small_enough", &["small_enough"]);
    symbols_eventually(&mut c, "too_big_to_index", &[]);
    symbols_eventually(&mut c, "in_excluded_dir", &[]);
    assert!(
        !c.server_requests
            .iter()
            .any(|r| r["method"] == "client/registerCapability"),
        "{:?}",
        c.server_requests
    );
    // A plain-text document: no symbols, and context still answers.
    let uri = file_uri(&notes);
    c.open(&uri, "plaintext", &std::fs::read_to_string(&notes).unwrap());
    let symbols = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    assert_eq!(symbols, json!([]));
    let ctx = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 3},
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 10}}}),
        )
        .unwrap();
    assert_eq!(ctx["items"][0]["kind"], "selection");
    assert_eq!(ctx["items"][0]["text"], "plain text");
    c.shutdown();
}

/// A document over the parse limit is mirrored exactly but never parsed: no symbols, no
/// index entries from it, edits and context by lines still exact; one under it is parsed.
#[test]
fn documents_over_the_parse_limit_are_plain_text_but_mirrored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    let root = file_uri(dir.path());
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": root, "capabilities": {},
               "initializationOptions": {"maxParseBytes": 4096}}),
    )
    .unwrap();
    c.notify("initialized", json!({}));
    let big: String = (0..400)
        .map(|i| format!("fn huge_fn_{i}() {{}}\n"))
        .collect();
    assert!(big.len() > 4096);
    let small = "fn small_fn() {}\n";
    let big_uri = file_uri(&dir.path().join("big.rs"));
    let small_uri = file_uri(&dir.path().join("small.rs"));
    c.open(&big_uri, "rust", &big);
    c.open(&small_uri, "rust", small);
    let symbols = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": big_uri}}),
        )
        .unwrap();
    assert_eq!(symbols, json!([]), "not parsed");
    let symbols = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": small_uri}}),
        )
        .unwrap();
    assert_eq!(symbols[0]["name"], "small_fn");
    // Edits still apply exactly: replace the last function's name.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": big_uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 399, "character": 3}, "end": {"line": 399, "character": 14}},
                                   "text": "edited"}]}),
    );
    let ctx = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": big_uri}, "position": {"line": 399, "character": 0},
                   "range": {"start": {"line": 399, "character": 0}, "end": {"line": 400, "character": 0}}}),
        )
        .unwrap();
    assert_eq!(ctx["items"][0]["kind"], "selection");
    assert_eq!(ctx["items"][0]["text"], "fn edited() {}\n");
    // No index entry comes from it either.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let hits = c
        .request("workspace/symbol", json!({"query": "huge_fn"}))
        .unwrap();
    assert_eq!(hits, json!([]), "{hits}");
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": big_uri}}),
    );
    c.shutdown();
}

#[test]
fn index_follows_saves_watched_files_and_open_buffers() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize(
        dir.path(),
        json!({"window": {"workDoneProgress": true}, "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}),
    );
    c.wait_indexed();
    assert!(
        c.server_requests
            .iter()
            .any(|r| r["method"] == "client/registerCapability"
                && r["params"]["registrations"][0]["method"] == "workspace/didChangeWatchedFiles")
    );
    // A new file appears on disk and the watcher reports it.
    let new_file = dir.path().join("src/fresh.rs");
    std::fs::write(&new_file, "pub fn brand_new_function() {}\n").unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": file_uri(&new_file), "type": 1}]}),
    );
    symbols_eventually(&mut c, "brand_new_function", &["brand_new_function"]);
    // Deleted.
    std::fs::remove_file(&new_file).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": file_uri(&new_file), "type": 3}]}),
    );
    symbols_eventually(&mut c, "brand_new_function", &[]);
    // An open buffer's edits reach the index after a save.
    let util = dir.path().join("src/util.rs");
    let uri = file_uri(&util);
    c.open(&uri, "rust", &std::fs::read_to_string(&util).unwrap());
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "pub fn typed_in_editor() {}\n"}]}),
    );
    c.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
    let mut found = false;
    for _ in 0..200 {
        let r = c
            .request("workspace/symbol", json!({"query": "typed_in_editor"}))
            .unwrap();
        if names(&r) == vec!["typed_in_editor"] {
            found = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(found, "the saved buffer's new function reached the index");
    c.shutdown();
}

#[test]
fn context_includes_cross_file_definitions_in_rank_order_within_budget() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize_and_index(dir.path());
    let main = dir.path().join("src/main.rs");
    let uri = file_uri(&main);
    c.open(&uri, "rust", &std::fs::read_to_string(&main).unwrap());
    // Cursor inside `compute`.
    let ctx = c
        .request("infinityMatrix/context", json!({"textDocument": {"uri": uri}, "position": {"line": 14, "character": 10},
            "diagnostics": [{"range": {"start": {"line": 15, "character": 4}, "end": {"line": 15, "character": 11}},
                             "message": "unused variable", "severity": 2, "source": "rustc"}]}))
        .unwrap();
    let items = ctx["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "enclosingSymbol", "{kinds:?}");
    assert!(
        items[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("/// Adds everything up.\nfn compute")
    );
    assert!(
        items[0]["reason"]
            .as_str()
            .unwrap()
            .contains("function compute")
    );
    assert_eq!(kinds[1], "imports");
    let defs: Vec<&Value> = items.iter().filter(|i| i["kind"] == "definition").collect();
    let def_text = |name: &str| {
        defs.iter().find(|d| {
            d["reason"]
                .as_str()
                .unwrap()
                .contains(&format!(" {name} used here"))
        })
    };
    // Same file first, then same directory, then the workspace.
    let local = def_text("local_add").expect("local_add definition");
    assert!(local["reason"].as_str().unwrap().contains("same file"));
    let helper = defs
        .iter()
        .position(|d| d["text"].as_str().unwrap().contains("x * 2"))
        .expect("util::helper body");
    let far_helper = defs
        .iter()
        .position(|d| d["text"].as_str().unwrap().contains("x + 1"));
    if let Some(far) = far_helper {
        assert!(far > helper, "the imported helper ranks above the far one");
    }
    assert!(
        defs[helper]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/src/util.rs")
    );
    let long = def_text("long_function").expect("long_function");
    assert!(
        long["text"]
            .as_str()
            .unwrap()
            .starts_with("pub fn long_function(x: i32) -> i32 {\n    let mut acc = x;\n"),
        "a definition within its share comes whole: {long}"
    );
    // With a smaller budget the same definition is a skeleton of verbatim lines: its header,
    // one marker naming the elided lines, its closing line.
    let small = c
        .request("infinityMatrix/context", json!({"textDocument": {"uri": uri}, "position": {"line": 14, "character": 10}, "budgetTokens": 600}))
        .unwrap();
    let skeleton = small["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reason"].as_str().unwrap().contains("long_function"))
        .expect("long_function in the small snapshot");
    assert_eq!(
        skeleton["text"], "pub fn long_function(x: i32) -> i32 {\n    ⋯ lines 7-38 elided\n}\n",
        "{skeleton}"
    );
    assert_eq!(skeleton["elided"], json!([[6, 37]]));
    assert!(
        skeleton["reason"]
            .as_str()
            .unwrap()
            .starts_with("skeleton of long definition")
    );
    assert!(
        def_text("area").is_some() && def_text("square").is_some() && def_text("Shape").is_some()
    );
    assert!(kinds.contains(&"diagnostics"));
    assert!(kinds.contains(&"outline"));
    let total: u64 = items.iter().map(|i| i["tokens"].as_u64().unwrap()).sum();
    assert_eq!(ctx["totalTokens"].as_u64().unwrap(), total);
    assert!(total <= 4096);
    let rendered = ctx["rendered"].as_str().unwrap();
    assert!(rendered.contains("src/util.rs:1-4"), "{rendered}");
    assert!(rendered.contains("src/main.rs:12-17"), "{rendered}");

    // A small budget holds, keeps the priority order, and is deterministic.
    let small = |c: &mut LspClient| {
        c.request("infinityMatrix/context", json!({"textDocument": {"uri": uri}, "position": {"line": 14, "character": 10}, "budgetTokens": 60}))
            .unwrap()
    };
    let a = small(&mut c);
    let b = small(&mut c);
    assert_eq!(a, b);
    assert!(a["totalTokens"].as_u64().unwrap() <= 60);
    assert_eq!(a["budgetTokens"], 60);
    assert_eq!(a["items"][0]["kind"], "enclosingSymbol");
    c.shutdown();
}

#[test]
fn context_items_come_in_priority_order_with_every_definition_tier() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| write_file(root, rel, text);
    let main = write(
        "app/main.py",
        "from models.user import make_user\n\n\ndef tidy(s):\n    return s.strip()\n\n\n\
         def run(name):\n    u = make_user(name)\n    return shout(u) + tidy(name) + far_away()\n",
    );
    let helpers = write(
        "app/helpers.py",
        "def shout(x):\n    return str(x).upper()\n\n\ndef unused():\n    return 1\n",
    );
    write(
        "models/user.py",
        "def make_user(name):\n    return {'name': name}\n",
    );
    write("misc/other.py", "def far_away():\n    return 42\n");
    let mut c = LspClient::spawn();
    c.initialize_and_index(root);
    // An edit in another open file: it comes last, as a recent edit.
    let helpers_uri = file_uri(&helpers);
    c.open(
        &helpers_uri,
        "python",
        &std::fs::read_to_string(&helpers).unwrap(),
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": helpers_uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "text": "# edited\n"}]}),
    );
    let uri = file_uri(&main);
    c.open(&uri, "python", &std::fs::read_to_string(&main).unwrap());
    let ctx = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": uri}, "position": {"line": 8, "character": 8},
                   "range": {"start": {"line": 8, "character": 4}, "end": {"line": 8, "character": 9}},
                   "diagnostics": [{"range": {"start": {"line": 8, "character": 4}, "end": {"line": 8, "character": 5}},
                                    "message": "u is never read", "severity": 2},
                                   {"range": {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 3}},
                                    "message": "outside the selection", "severity": 2}]}),
        )
        .unwrap();
    let items = ctx["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "selection",
            "enclosingSymbol",
            "imports",
            "definition",
            "definition",
            "diagnostics",
            "outline",
            "recentEdit"
        ],
        "{ctx}"
    );
    assert_eq!(items[0]["text"], "u = m");
    // Resolved names by distance from the cursor: through the import, then the file's own.
    // `shout` and `far_away` are neither defined nor imported here: in Python such a name is
    // a builtin (or an error), so no definition is guessed for it by name.
    let tiers: Vec<(&str, &str)> = items
        .iter()
        .filter(|i| i["kind"] == "definition")
        .map(|i| {
            let reason = i["reason"].as_str().unwrap();
            let name = ["tidy", "shout", "make_user", "far_away"]
                .into_iter()
                .find(|n| reason.contains(&format!(" {n} used here")))
                .unwrap_or("?");
            let tier = ["same file", "resolved", "guessed by name"]
                .into_iter()
                .find(|t| reason.contains(t))
                .unwrap_or("?");
            (name, tier)
        })
        .collect();
    assert_eq!(tiers, [("make_user", "resolved"), ("tidy", "same file")]);
    assert!(
        !items
            .iter()
            .any(|i| i["uri"].as_str().unwrap().ends_with("/misc/other.py")),
        "{ctx}"
    );
    let recent = &items[7];
    assert!(recent["uri"].as_str().unwrap().ends_with("/app/helpers.py"));
    assert!(recent["text"].as_str().unwrap().contains("# edited"));
    // Only the diagnostics for the selected range.
    let diagnostics = items[5]["text"].as_str().unwrap();
    assert!(diagnostics.contains("u is never read"), "{diagnostics}");
    assert!(
        !diagnostics.contains("outside the selection"),
        "{diagnostics}"
    );
    c.shutdown();
}

/// On the multi-file fixture, in each language, the symbol at the cursor resolves through the
/// file's imports to its definition in another file, shown first and as verbatim lines.
#[test]
fn context_resolves_the_cursor_symbol_across_files_in_every_language() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize_and_index(dir.path());
    // (file, language id, text at the cursor, defining file, a line it must show)
    let cases = [
        (
            "src/main.rs",
            "rust",
            "square(n)",
            "src/shapes.rs",
            "    pub fn square(side: i32) -> Shape {",
        ),
        (
            "src/main.rs",
            "rust",
            "helper(n)",
            "src/util.rs",
            "pub fn helper(x: i32) -> i32 {",
        ),
        (
            "python/app.py",
            "python",
            "User(name)",
            "python/models.py",
            "class User:",
        ),
        (
            "python/app.py",
            "python",
            "greeting()",
            "python/models.py",
            "    def greeting(self):",
        ),
        (
            "web/src/app.ts",
            "typescript",
            "Customer):",
            "web/src/models/index.ts",
            "export interface Customer {",
        ),
        (
            "web/src/app.ts",
            "typescript",
            "greeter()",
            "web/src/greeter.ts",
            "export function makeGreeter(): Greeter {",
        ),
        (
            "web/src/app.ts",
            "typescript",
            "greet(c)",
            "web/src/greeter.ts",
            "  greet(c: Customer): string {",
        ),
        (
            "go/cmd/main.go",
            "go",
            "NewStore()",
            "go/store/store.go",
            "func NewStore() *Store {",
        ),
        (
            "go/cmd/main.go",
            "go",
            "Get(\"apples\")",
            "go/store/store.go",
            "func (s *Store) Get(key string) int {",
        ),
        (
            "java/com/shop/app/Checkout.java",
            "java",
            "Order(3)",
            "java/com/shop/model/Order.java",
            "public class Order {",
        ),
        (
            "java/com/shop/app/Checkout.java",
            "java",
            "getTotal()",
            "java/com/shop/model/Order.java",
            "    public int getTotal() {",
        ),
    ];
    for (rel, lang, needle, def_file, def_line) in cases {
        let path = dir.path().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let uri = file_uri(&path);
        c.open(&uri, lang, &text);
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {rel}"));
        let line = text[..at].matches('\n').count();
        let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        let ctx = c
            .request(
                "infinityMatrix/context",
                json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}),
            )
            .unwrap();
        assert_eq!(ctx["indexComplete"], true);
        let first = ctx["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == "definition")
            .unwrap_or_else(|| panic!("{rel} {needle}: no definition in {ctx}"));
        assert!(
            first["uri"].as_str().unwrap().ends_with(def_file),
            "{rel} {needle}: first definition {first}"
        );
        assert!(
            first["text"]
                .as_str()
                .unwrap()
                .lines()
                .any(|l| l == def_line),
            "{rel} {needle}: {def_line:?} in {first}"
        );
        assert!(
            first["reason"].as_str().unwrap().contains("(resolved)"),
            "{rel} {needle}: {first}"
        );
    }
    c.shutdown();
}

#[test]
fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let dir = project();
    let mut c = LspClient::spawn();
    c.initialize_and_index(dir.path());
    let uri = file_uri(&dir.path().join("src/main.rs"));
    c.open(&uri, "rust", "fn main() {}\n");
    // Malformed JSON, then a message that is JSON but not JSON-RPC.
    c.send_raw(b"{this is not json");
    let parse_error = c.response_to(Value::Null);
    assert_eq!(parse_error["error"]["code"], -32700, "{parse_error}");
    c.send_raw(b"[1, 2, 3]");
    let invalid = c.response_to(Value::Null);
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    // Unknown request method: MethodNotFound.
    let err = c
        .request("infinityMatrix/doesNotExist", json!({}))
        .unwrap_err();
    assert_eq!(err["code"], -32601);
    // Unknown notification: ignored.
    c.notify("infinityMatrix/unknownNotification", json!({}));
    // Out-of-range position.
    let err = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": uri}, "position": {"line": 999, "character": 0}}),
        )
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(
        err["message"].as_str().unwrap().contains("line 999"),
        "{err}"
    );
    // Column past the line end is clamped, not an error.
    c.request(
        "infinityMatrix/context",
        json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 500}}),
    )
    .unwrap();
    // Unknown document.
    let err = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": "file:///nowhere/x.rs"}}),
        )
        .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("not open"));
    // Stale version: ignored and logged, the mirror is unchanged.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 5},
        "contentChanges": [{"text": "fn five() {}\n"}]}),
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3},
        "contentChanges": [{"text": "fn stale() {}\n"}]}),
    );
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    assert_eq!(names(&syms), vec!["five"]);
    c.wait_notification(|n| {
        n["method"] == "window/logMessage"
            && n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("stale version 3"))
    });
    // An edit with an out-of-range line: rejected with a log message, mirror intact.
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 6},
        "contentChanges": [{"range": {"start": {"line": 50, "character": 0}, "end": {"line": 51, "character": 0}}, "text": "x"}]}));
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    assert_eq!(names(&syms), vec!["five"]);
    // Unknown command.
    let err = c
        .request(
            "workspace/executeCommand",
            json!({"command": "nope", "arguments": null}),
        )
        .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("unknown command"),
        "{err}"
    );
    // A 20 MB file, a binary file and invalid UTF-8 on disk.
    let mut big = String::from("fn huge() {\n");
    big.push_str(&"    let value = compute(1, 2, 3);\n".repeat(20 * 1024 * 1024 / 34));
    big.push_str("}\nfn after_the_big_one() {}\n");
    assert!(big.len() > 20_000_000);
    let big_uri = file_uri(&dir.path().join("big.rs"));
    c.open(&big_uri, "rust", &big);
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": big_uri}}),
        )
        .unwrap();
    // Over the parse limit (2 MiB by default): mirrored, not parsed, no symbols.
    assert_eq!(syms, json!([]));
    let last_line = big.lines().count() as u32 - 1;
    let ctx = c
        .request(
            "infinityMatrix/context",
            json!({"textDocument": {"uri": big_uri}, "position": {"line": last_line, "character": 0},
                   "range": {"start": {"line": last_line, "character": 0}, "end": {"line": last_line, "character": 25}}}),
        )
        .unwrap();
    assert_eq!(ctx["items"][0]["text"], "fn after_the_big_one() {}");
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": big_uri}}),
    );
    let bad_utf8 = dir.path().join("src/latin1.rs");
    std::fs::write(
        &bad_utf8,
        b"pub fn caf\xe9() {}\npub fn after_bad_bytes() {}\n",
    )
    .unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": file_uri(&bad_utf8), "type": 1}]}),
    );
    let bin = dir.path().join("src/blob.rs");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": file_uri(&bin), "type": 2}]}),
    );
    symbols_eventually(&mut c, "after_bad_bytes", &["after_bad_bytes"]);
    let r = c
        .request("workspace/symbol", json!({"query": "looks_like_rust"}))
        .unwrap();
    assert!(names(&r).is_empty());
    // Still serving normally.
    let r = c
        .request("workspace/symbol", json!({"query": "helper"}))
        .unwrap();
    assert!(!names(&r).is_empty());
    assert!(c.is_alive());
    c.shutdown();
}

/// 1,000 edits interleaved with requests, all pipelined without waiting: every request must
/// see exactly the edits sent before it, although the server runs handlers concurrently.
#[test]
fn one_thousand_interleaved_edits_and_requests_stay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    c.initialize(dir.path(), json!({}));
    let uri = file_uri(&dir.path().join("order.rs"));
    c.open(&uri, "rust", "");
    let mut expected = Vec::new();
    for i in 0..1000u32 {
        // Insert a new function at the top (line 0), so every edit shifts the rest.
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": i + 2},
                   "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                                       "text": format!("fn f{i}() {{}}\n")}]}),
        );
        let id = if i % 2 == 0 {
            c.send_request(
                "textDocument/documentSymbol",
                json!({"textDocument": {"uri": uri}}),
            )
        } else {
            c.send_request("infinityMatrix/context", json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0},
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}}))
        };
        expected.push((i, id));
    }
    for (i, id) in expected {
        let resp = c.response(id);
        let result = &resp["result"];
        if i % 2 == 0 {
            let n = result.as_array().map(|a| a.len()).unwrap_or(0);
            assert_eq!(
                n as u32,
                i + 1,
                "documentSymbol after edit {i} saw {n} functions"
            );
            assert_eq!(result[0]["name"], format!("f{i}"));
        } else {
            assert_eq!(
                result["items"][0]["text"],
                format!("fn f{i}() {{}}\n"),
                "context after edit {i}"
            );
        }
    }
    c.shutdown();
}

/// With `treeCacheSize: 1` every request alternates between two documents, so each one's tree
/// is dropped and rebuilt in turn; answers, edits included, must stay exact.
#[test]
fn documents_whose_tree_was_dropped_still_answer_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    let root = file_uri(dir.path());
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": root, "capabilities": {},
               "initializationOptions": {"treeCacheSize": 1}}),
    )
    .expect("initialize");
    c.notify("initialized", json!({}));
    let a = file_uri(&dir.path().join("a.rs"));
    let b = file_uri(&dir.path().join("b.rs"));
    c.open(&a, "rust", "fn alpha() {}\n");
    c.open(&b, "rust", "struct Beta;\nfn beta() {}\n");
    let names = |c: &mut LspClient, uri: &str| -> Vec<String> {
        let r = c
            .request(
                "textDocument/documentSymbol",
                json!({"textDocument": {"uri": uri}}),
            )
            .expect("documentSymbol");
        r.as_array()
            .expect("nested symbols")
            .iter()
            .filter_map(|s| s["name"].as_str().map(String::from))
            .collect()
    };
    for round in 0..3 {
        assert_eq!(names(&mut c, &a), ["alpha"], "round {round}");
        assert_eq!(names(&mut c, &b), ["Beta", "beta"], "round {round}");
    }
    // An edit to the document whose tree was just dropped (b holds the only cached tree).
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": a, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 0, "character": 3},
                                             "end": {"line": 0, "character": 8}},
                                   "text": "gamma"}]}),
    );
    assert_eq!(names(&mut c, &a), ["gamma"]);
    assert_eq!(names(&mut c, &b), ["Beta", "beta"]);
    c.shutdown();
}
