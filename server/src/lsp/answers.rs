//! Finished answers for editors that do not handle task events (stock Neovim, Emacs, Helix):
//! written to a Markdown file and opened with `window/showDocument`, else a `window/showMessage`.

use std::path::{Path, PathBuf};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageType, ShowDocumentParams, Uri};

use crate::agents::{TaskInfo, TaskState};
use crate::config::OutputMode;
use crate::session::Session;

/// Answer files kept in the cache directory (the oldest go first).
const KEEP_FILES: usize = 50;
/// Lines of the answer a `window/showMessage` shows.
const MESSAGE_LINES: usize = 8;

/// `$XDG_CACHE_HOME/infinity-matrix/answers` (or `~/.cache/…`; the system temporary
/// directory when neither is usable).
pub fn answers_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("infinity-matrix").join("answers")
}

/// Tells the user about a task that ended, through standard LSP: an answer task's text
/// (succeeded) or its error (failed). Edit and diagnostics tasks already show through edits,
/// approvals and diagnostics.
pub async fn deliver(client: &Client, session: &Session, task: &TaskInfo, show_document: bool) {
    if task.output != OutputMode::Answer {
        return;
    }
    match task.state {
        TaskState::Succeeded => {}
        TaskState::Failed => {
            let error = task.error.as_deref().unwrap_or("unknown error");
            client
                .show_message(
                    MessageType::ERROR,
                    format!("Infinity Matrix: {} failed: {error}", task.label()),
                )
                .await;
            return;
        }
        _ => return,
    }
    let text = session.task(&task.id).map(|d| d.text).unwrap_or_default();
    let dir = answers_dir();
    let written = write_answer(&dir, task, &text);
    if show_document && let Ok(path) = &written {
        let opened = match path_uri(path) {
            Some(uri) => client
                .show_document(ShowDocumentParams {
                    uri,
                    external: Some(false),
                    take_focus: Some(false),
                    selection: None,
                })
                .await
                .unwrap_or(false),
            None => false,
        };
        if opened {
            return;
        }
    }
    let mut lines: Vec<&str> = text.lines().take(MESSAGE_LINES).collect();
    if text.lines().count() > MESSAGE_LINES {
        lines.push("…");
    }
    let whole = match &written {
        Ok(path) => format!("\n(the whole answer: {})", path.display()),
        Err(e) => format!("\n(the answer could not be saved: {e})"),
    };
    client
        .show_message(
            MessageType::INFO,
            format!(
                "Infinity Matrix: {} answered:\n{}{whole}",
                task.label(),
                lines.join("\n")
            ),
        )
        .await;
}

/// Writes the answer as `<agent>-<task id>.md` under `dir`, keeping the newest files only.
fn write_answer(dir: &Path, task: &TaskInfo, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name: String = format!("{}-{}", task.agent, task.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.md"));
    let mut head = format!("# {}\n\n", task.label());
    let mut facts = Vec::new();
    if let Some(uri) = &task.uri {
        facts.push(uri.rsplit('/').next().unwrap_or(uri).to_string());
    }
    match (&task.provider, &task.model) {
        (Some(p), Some(m)) => facts.push(format!("{p}/{m}")),
        (Some(p), None) => facts.push(p.clone()),
        _ => {}
    }
    if !facts.is_empty() {
        head.push_str(&format!("_{}_\n\n", facts.join(" · ")));
    }
    std::fs::write(&path, format!("{head}{text}\n"))?;
    prune(dir);
    Ok(path)
}

/// Removes all but the newest [`KEEP_FILES`] answer files.
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= KEEP_FILES {
        return;
    }
    files.sort();
    for (_, path) in files.iter().take(files.len() - KEEP_FILES) {
        let _ = std::fs::remove_file(path);
    }
}

fn path_uri(path: &Path) -> Option<Uri> {
    crate::uri::path_to_uri(path).parse().ok()
}
