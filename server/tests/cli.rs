//! The command-line front end, run as a real process.

mod support;

use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_infinity-matrix"))
}

#[test]
fn version_and_help_on_every_command() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("infinity-matrix {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        vec!["--help"],
        vec!["lsp", "--help"],
        vec!["context", "--help"],
        vec!["symbols", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: infinity-matrix"),
            "{args:?}"
        );
    }
}

#[test]
fn context_prints_the_snapshot_with_cross_file_definitions() {
    let dir = support::copy_fixture("project");
    let file = dir.path().join("src/main.rs");
    let out = bin()
        .args(["context", &format!("{}:15:10", file.display()), "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("### Enclosing symbol: src/main.rs:12-17"),
        "{text}"
    );
    assert!(text.contains("### Definition: src/util.rs:1-4"), "{text}");
    assert!(text.contains("x * 2"));

    let out = bin()
        .args([
            "context",
            &format!("{}:15:10", file.display()),
            "--json",
            "--budget",
            "80",
            "--root",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["totalTokens"].as_u64().unwrap() <= 80);
    assert_eq!(v["budgetTokens"], 80);
    assert_eq!(v["items"][0]["kind"], "enclosingSymbol");
}

#[test]
fn context_reports_bad_locations_clearly() {
    let dir = support::copy_fixture("project");
    let file = dir.path().join("src/main.rs");
    for (loc, msg) in [
        (format!("{}:999:1", file.display()), "past the end"),
        (format!("{}:x:1", file.display()), "not a number"),
        ("/no/such/file.rs:1:1".to_string(), "cannot open"),
        (format!("{}:0:1", file.display()), "1-based"),
    ] {
        let out = bin().args(["context", &loc]).output().unwrap();
        assert!(!out.status.success(), "{loc}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{loc}: {err}");
        assert!(out.stdout.is_empty(), "errors never go to stdout");
    }
}

#[test]
fn symbols_lists_a_file_and_a_directory() {
    let dir = support::copy_fixture("project");
    let out = bin()
        .args(["symbols"])
        .arg(dir.path().join("src/shapes.rs"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("2:12 struct pub struct Shape"),
        "{text}"
    );
    assert!(lines[1].starts_with("  3:5 field side: i32"), "{text}");
    assert!(
        lines[3].starts_with("  7:12 method pub fn square(side: i32) -> Shape"),
        "{text}"
    );

    let out = bin()
        .args(["symbols", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"helper".to_string()) && names.contains(&"greeting".to_string()));
    assert!(!names.contains(&"ignoredByDotIgnore".to_string()));
}
