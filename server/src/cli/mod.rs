//! The command-line front end: `lsp`, `context`, `symbols`, `run`, `doctor`, `audit`, `model` — thin adapters over the session.

mod agent_commands;
mod json;
mod model_commands;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, Subcommand};

use crate::analysis::{self, Language};
use crate::context::DEFAULT_BUDGET_TOKENS;
use crate::documents::{Position, parse_str};

#[derive(Parser, Debug)]
#[command(
    name = "infinity-matrix",
    version,
    about = "Infinity Matrix: code context capture and AI agent dispatch, as a language server and a CLI"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the Language Server Protocol on stdin/stdout.
    Lsp,
    /// Serve the Agent Client Protocol on stdin/stdout (an agent for Zed, JetBrains,
    /// CodeCompanion, agent-shell): each session's cwd is its workspace.
    Acp,
    /// Serve the Model Context Protocol (tools, agent prompts) for a workspace: stdio by
    /// default, or Streamable HTTP on a loopback address with a bearer token.
    Mcp {
        /// Workspace root (default: the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Serve Streamable HTTP on this loopback address (e.g. 127.0.0.1:8848; port 0 picks
        /// one) at path /mcp instead of stdio.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// With --http: read the bearer token from this file (default: make one and print it
        /// once on stderr).
        #[arg(long, value_name = "FILE", requires = "http")]
        token_file: Option<PathBuf>,
    },
    /// Print the context snapshot a model would get for a position in a file.
    Context {
        /// FILE:LINE:COL (1-based line and column, the column counted in characters).
        location: String,
        /// Workspace root to index first (default: the git root above FILE, else its directory).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Token budget.
        #[arg(long, default_value_t = DEFAULT_BUDGET_TOKENS)]
        budget: usize,
        /// Select from LOCATION to this LINE:COL (1-based) instead of a bare cursor.
        #[arg(long, value_name = "LINE:COL")]
        to: Option<String>,
        /// Print JSON (the `infinityMatrix/context` result shape) instead of rendered text.
        #[arg(long)]
        json: bool,
    },
    /// Run one agent task headless and stream its answer to stdout (an edit is printed as a diff).
    Run {
        /// Agent name (see `infinity-matrix agents`); default from configuration ("explain").
        #[arg(long)]
        agent: Option<String>,
        /// Free-text instruction for the agent.
        #[arg(long)]
        prompt: Option<String>,
        /// FILE or FILE:LINE:COL (1-based).
        location: String,
        /// Select from LOCATION to this LINE:COL (1-based).
        #[arg(long, value_name = "LINE:COL")]
        to: Option<String>,
        /// Workspace root (default: the git root above FILE, else its directory).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Write an edit to the file (otherwise it is only printed as a diff).
        #[arg(long)]
        apply: bool,
    },
    /// List the agents in effect (built-ins merged with configuration).
    Agents {
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Check every configured provider: reachable, authorised, model present (the embedded
    /// model: present, loadable, and its speed on a short probe).
    Doctor {
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Show the audit log of a workspace.
    Audit {
        /// Workspace root whose log to read (default: the current directory's git root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Only entries newer than this: a duration like 30m, 2h, 7d, or milliseconds since the epoch.
        #[arg(long)]
        since: Option<String>,
        /// Only this task.
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the configuration file.
    Schema,
    /// Install, list or remove the embedded model (the offline default provider).
    Model {
        #[command(subcommand)]
        command: model_commands::ModelCommand,
    },
    /// Print the symbols of a file, or of every source file under a directory.
    Symbols {
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// For a directory: print only totals (files, lines, symbols, time, lines/s).
        #[arg(long)]
        stats: bool,
        /// For a directory: also write the list of indexed files to this path (one per line).
        #[arg(long, value_name = "PATH")]
        files_to: Option<PathBuf>,
        /// For a directory: compare the index's lexical scanner with tree-sitter extraction
        /// per language (share of each side's (name, kind, line) the other also finds).
        #[arg(long)]
        compare: bool,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Lsp => {
            crate::process::tune_allocator();
            // Editors show a server's stderr as errors (Neovim's LSP log labels every line
            // [ERROR]): by default only warnings and errors go there; what the user should
            // see goes through window/logMessage and showMessage with its own level.
            // INFINITY_MATRIX_LOG / RUST_LOG or log_level ask for more.
            crate::telemetry::init("warn");
            let runtime = crate::process::server_runtime()?;
            runtime.block_on(crate::lsp::run_stdio());
            // Blocking work (a parse, the index walk) may still be running: give it a moment, no more.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            Ok(())
        }
        Command::Acp => {
            // stdout is the protocol channel: logs go to stderr.
            crate::telemetry::init("warn");
            crate::acp::run()
        }
        Command::Mcp {
            root,
            http,
            token_file,
        } => {
            // stdout is the protocol channel (stdio): logs go to stderr.
            crate::telemetry::init("warn");
            crate::mcp::run(crate::mcp::McpArgs {
                root,
                http,
                token_file,
            })
        }
        Command::Context {
            location,
            root,
            budget,
            to,
            json,
        } => {
            crate::telemetry::init("warn");
            context_command(&location, root, budget, to.as_deref(), json)
        }
        Command::Run {
            agent,
            prompt,
            location,
            to,
            root,
            apply,
        } => {
            crate::telemetry::init("warn");
            agent_commands::run(agent_commands::RunArgs {
                agent,
                prompt,
                location,
                to,
                root,
                apply,
            })
        }
        Command::Agents { root } => {
            crate::telemetry::init("warn");
            agent_commands::agents(root)
        }
        Command::Doctor { root } => {
            crate::telemetry::init("warn");
            agent_commands::doctor(root)
        }
        Command::Audit {
            root,
            since,
            task,
            limit,
            json,
        } => {
            crate::telemetry::init("warn");
            agent_commands::audit(root, since, task, limit, json)
        }
        Command::Model { command } => {
            crate::telemetry::init("warn");
            model_commands::run(command)
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::config::json_schema())?
            );
            Ok(())
        }
        Command::Symbols {
            path,
            json,
            stats,
            files_to,
            compare,
        } => {
            crate::telemetry::init("warn");
            if compare {
                return compare_command(&path, json);
            }
            symbols_command(&path, json, stats, files_to.as_deref())
        }
    }
}

/// Splits `FILE:LINE:COL` (the file itself may contain colons).
pub(crate) fn parse_location(location: &str) -> Result<(PathBuf, u32, u32)> {
    let mut parts = location.rsplitn(3, ':');
    let col = parts.next().unwrap_or_default();
    let line = parts
        .next()
        .ok_or_else(|| anyhow!("expected FILE:LINE:COL, got {location:?}"))?;
    let file = parts
        .next()
        .ok_or_else(|| anyhow!("expected FILE:LINE:COL, got {location:?}"))?;
    let (line, col) = parse_line_col(&format!("{line}:{col}"))?;
    Ok((PathBuf::from(file), line, col))
}

pub(crate) fn parse_line_col(s: &str) -> Result<(u32, u32)> {
    let (l, c) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("expected LINE:COL, got {s:?}"))?;
    let line: u32 = l
        .parse()
        .with_context(|| format!("line {l:?} is not a number"))?;
    let col: u32 = c
        .parse()
        .with_context(|| format!("column {c:?} is not a number"))?;
    if line == 0 || col == 0 {
        bail!("line and column are 1-based; got {line}:{col}");
    }
    Ok((line, col))
}

pub(crate) fn default_root(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cur = Some(dir.as_path());
    while let Some(d) = cur {
        if d.join(".git").exists() {
            return d.to_path_buf();
        }
        cur = d.parent();
    }
    dir
}

/// A 1-based (line, char column) to a UTF-8 client position in `text`, counting lines as
/// the LSP mirror does (LF, CRLF and a lone CR each end a line).
pub(crate) fn char_col_to_position(text: &str, line: u32, col: u32) -> Result<Position> {
    Ok(crate::session::position_of(text, line, col)?)
}

fn context_command(
    location: &str,
    root: Option<PathBuf>,
    budget: usize,
    to: Option<&str>,
    json: bool,
) -> Result<()> {
    let (file, line, col) = parse_location(location)?;
    let file =
        std::fs::canonicalize(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    if crate::index::walk_is_binary(&bytes) {
        bail!("{} is a binary file", file.display());
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let root = match root {
        Some(r) => std::fs::canonicalize(&r)
            .with_context(|| format!("cannot open root {}", r.display()))?,
        None => default_root(&file),
    };
    let position = char_col_to_position(&text, line, col)?;
    let range = match to {
        Some(to) => {
            let (l2, c2) = parse_line_col(to)?;
            Some(crate::documents::Range::new(
                position,
                char_col_to_position(&text, l2, c2)?,
            ))
        }
        None => None,
    };
    let snapshot = crate::session::context_of_file(root, &file, &text, position, range, budget)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &json::Context::from(snapshot))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", snapshot.rendered)?;
        writeln!(
            out,
            "-- {} items, {} of {} tokens",
            snapshot.items.len(),
            snapshot.total_tokens,
            snapshot.budget_tokens
        )?;
    }
    Ok(())
}

fn symbols_command(path: &Path, json: bool, stats: bool, files_to: Option<&Path>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    if meta.is_dir() {
        let root = std::fs::canonicalize(path)?;
        let started = std::time::Instant::now();
        let files = crate::index::walk_workspace(
            std::slice::from_ref(&root),
            &crate::index::IndexConfig::default(),
            &|_| {},
        );
        let elapsed = started.elapsed();
        let lines: usize = files.iter().map(|(_, s)| s.lines).sum();
        let count: usize = files.iter().map(|(_, s)| s.symbols.len()).sum();
        if let Some(list) = files_to {
            let mut text = String::new();
            for (file, _) in &files {
                text.push_str(&file.to_string_lossy());
                text.push('\n');
            }
            std::fs::write(list, text)
                .with_context(|| format!("cannot write {}", list.display()))?;
        }
        if stats {
            let secs = elapsed.as_secs_f64();
            writeln!(
                out,
                "files {} lines {lines} symbols {count} seconds {secs:.3} lines_per_second {:.0}",
                files.len(),
                lines as f64 / secs.max(1e-9)
            )?;
            return Ok(());
        }
        for (file, symbols) in &files {
            // Signatures are read back from the file (the index does not keep most of them).
            let text = std::fs::read(file)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            for s in &symbols.symbols {
                let signature = s.signature(&text);
                if json {
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({
                            "path": file, "name": s.name, "kind": s.kind, "container": s.container,
                            "line": s.selection_range.start.line + 1, "signature": signature,
                        }),
                    )?;
                    writeln!(out)?;
                } else {
                    let rel = file.strip_prefix(&root).unwrap_or(file);
                    writeln!(
                        out,
                        "{}:{}\t{}\t{}",
                        rel.display(),
                        s.selection_range.start.line + 1,
                        s.kind.as_str(),
                        signature
                    )?;
                }
            }
        }
        eprintln!("{} files, {lines} lines, {count} symbols", files.len());
        return Ok(());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if crate::index::walk_is_binary(&bytes) {
        bail!("{} is a binary file", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let language = Language::from_path(path);
    let symbols = match parse_str(language, &text) {
        Some(tree) => analysis::symbols(language, &tree, &text),
        None => Vec::new(),
    };
    if json {
        serde_json::to_writer_pretty(&mut out, &symbols)?;
        writeln!(out)?;
    } else {
        for (depth, s) in analysis::outline(&symbols) {
            writeln!(
                out,
                "{}{}:{} {} {}",
                "  ".repeat(depth),
                s.selection_range.start.line + 1,
                s.selection_range.start.col + 1,
                s.kind.as_str(),
                s.signature
            )?;
        }
    }
    Ok(())
}

/// Agreement of the lexical scanner with tree-sitter over one language's files.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Agreement {
    files: usize,
    lines: usize,
    tree_sitter: usize,
    tree_sitter_found: usize,
    scanner: usize,
    scanner_found: usize,
}

/// `symbols DIR --compare`: per language, the share of tree-sitter's (name, kind, selection
/// line) the scanner also finds (recall) and the share of the scanner's tree-sitter also
/// finds (precision).
fn compare_command(path: &Path, json: bool) -> Result<()> {
    use std::collections::{BTreeMap, HashSet};
    let root =
        std::fs::canonicalize(path).with_context(|| format!("cannot open {}", path.display()))?;
    let files: Vec<PathBuf> = crate::index::walk_workspace(
        std::slice::from_ref(&root),
        &crate::index::IndexConfig::default(),
        &|_| {},
    )
    .into_iter()
    .map(|(p, _)| p)
    .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<BTreeMap<&'static str, Agreement>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut per: BTreeMap<&'static str, Agreement> = BTreeMap::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        let Ok(bytes) = std::fs::read(file) else {
                            continue;
                        };
                        let text = String::from_utf8_lossy(&bytes);
                        let language = Language::from_path(file);
                        let Some(tree) = parse_str(language, &text) else {
                            continue;
                        };
                        let ts = analysis::flatten(analysis::symbols(language, &tree, &text));
                        let ours = crate::index::scan_tags(language, &text);
                        let key = |s: &analysis::Symbol| {
                            (s.name.clone(), s.kind, s.selection_range.start.line)
                        };
                        let ts_keys: HashSet<_> = ts.iter().map(key).collect();
                        let our_keys: HashSet<_> = ours.iter().map(key).collect();
                        let a = per.entry(language.name()).or_default();
                        a.files += 1;
                        a.lines += text.lines().count();
                        a.tree_sitter += ts_keys.len();
                        a.tree_sitter_found += ts_keys.intersection(&our_keys).count();
                        a.scanner += our_keys.len();
                        a.scanner_found += our_keys.intersection(&ts_keys).count();
                    }
                    per
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut total: BTreeMap<&'static str, Agreement> = BTreeMap::new();
    for per in results {
        for (lang, a) in per {
            let t = total.entry(lang).or_default();
            t.files += a.files;
            t.lines += a.lines;
            t.tree_sitter += a.tree_sitter;
            t.tree_sitter_found += a.tree_sitter_found;
            t.scanner += a.scanner;
            t.scanner_found += a.scanner_found;
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &total)?;
        writeln!(out)?;
        return Ok(());
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    writeln!(
        out,
        "language     files     lines  tree-sitter  found by scanner  scanner  found by tree-sitter"
    )?;
    for (lang, a) in &total {
        writeln!(
            out,
            "{lang:<10} {:>7} {:>9} {:>12} {:>10} {:>5.1}% {:>8} {:>13} {:>5.1}%",
            a.files,
            a.lines,
            a.tree_sitter,
            a.tree_sitter_found,
            pct(a.tree_sitter_found, a.tree_sitter),
            a.scanner,
            a.scanner_found,
            pct(a.scanner_found, a.scanner),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_columns_become_utf8_positions_on_lsp_lines() {
        // A lone CR ends a line, as in the editor and the LSP mirror.
        let text = "a\rb\r\nc\n";
        let at = |l, c| char_col_to_position(text, l, c).ok();
        assert_eq!(at(3, 1), Some(Position::new(2, 0)));
        assert_eq!(
            at(2, 9),
            Some(Position::new(1, 1)),
            "clamped to the line's end"
        );
        assert!(at(5, 1).is_none(), "past the last line");
        assert_eq!(
            char_col_to_position("é😀x", 1, 3).ok(),
            Some(Position::new(0, 6)),
            "two chars: 2 + 4 bytes"
        );
    }
}
