//! CLI commands around agents: `run` (one task headless), `agents`, `doctor`, `audit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::sync::mpsc;

use super::{char_col_to_position, default_root, parse_line_col, parse_location};
use crate::agents::{
    AgentDiagnostic, EditProposal, PromptRequest, Severity, TaskEvent, TaskHost, TaskInfo,
    TaskState,
};
use crate::audit::AuditQuery;
use crate::config::Config;
use crate::documents::{Position, PositionEncoding, Range};
use crate::engine::path_to_uri;
use crate::providers::BoxFuture;
use crate::secrets::redact;
use crate::session::{
    ClientSettings, FrontEnd, OnConfigError, ProviderCheck, Session, edit_diff, write_edit,
};

pub struct RunArgs {
    pub agent: Option<String>,
    pub prompt: Option<String>,
    pub location: String,
    pub to: Option<String>,
    pub root: Option<PathBuf>,
    pub apply: bool,
}

fn load_config(root: &Path) -> Result<Config> {
    let loaded = crate::session::load_config(root).map_err(|e| anyhow!(redact(&e.to_string())))?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded.config)
}

fn resolve_root(root: Option<PathBuf>, near: &Path) -> Result<PathBuf> {
    match root {
        Some(r) => {
            std::fs::canonicalize(&r).with_context(|| format!("cannot open root {}", r.display()))
        }
        None => Ok(default_root(near)),
    }
}

/// What the task host reports to `run`.
enum Done {
    Finished(TaskInfo),
}

struct CliHost {
    apply: bool,
    /// Diffs name files relative to it.
    root: std::path::PathBuf,
    done: mpsc::UnboundedSender<Done>,
}

impl TaskHost for CliHost {
    fn on_event(&self, event: TaskEvent) {
        match event {
            TaskEvent::Chunk { text, .. } => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            TaskEvent::Reset { reason, .. } => eprintln!("\n[{reason}; starting over]"),
            TaskEvent::State { task } => {
                match task.state {
                    TaskState::Running => eprintln!(
                        "[{} running{}]",
                        task.agent,
                        task.provider
                            .as_deref()
                            .map(|p| format!(" on {p}"))
                            .unwrap_or_default()
                    ),
                    TaskState::AwaitingApproval => eprintln!("[awaiting approval]"),
                    _ => {}
                }
                if task.state.is_terminal() {
                    let _ = self.done.send(Done::Finished(task));
                }
            }
        }
    }

    fn apply_edit(
        &self,
        _task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let apply = self.apply;
        for e in &edits {
            eprintln!("{}", edit_diff(&self.root, e));
        }
        Box::pin(async move {
            if !apply {
                return Err(
                    "dry run: the diff above was not written (pass --apply to write it)".into(),
                );
            }
            for e in &edits {
                write_edit(e)?;
            }
            Ok(true)
        })
    }

    fn ask_approval(
        &self,
        _task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        for e in edits {
            eprintln!("{}", edit_diff(&self.root, e));
        }
        if !reasons.is_empty() {
            eprintln!("[approval needed: {}]", reasons.join("; "));
        }
        if !self.apply {
            eprintln!("[dry run: pass --apply to write the edit]");
        }
        let apply = self.apply;
        Box::pin(async move { Some(apply) })
    }

    fn alert(
        &self,
        _task: &TaskInfo,
        _edits: &[EditProposal],
        _reasons: &[String],
        _timeout: Duration,
    ) {
    }

    fn publish_diagnostics(&self, _task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]) {
        let file = uri.trim_start_matches("file://");
        for d in diagnostics {
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Hint => "hint",
                Severity::Information => "info",
            };
            eprintln!("{file}:{}: {sev}: {}", d.line + 1, d.message);
        }
    }
}

/// `infinity-matrix run`.
pub fn run(args: RunArgs) -> Result<()> {
    let (file, line_col) = match parse_location(&args.location) {
        Ok((f, l, c)) => (f, Some((l, c))),
        Err(_) => (PathBuf::from(&args.location), None),
    };
    let file =
        std::fs::canonicalize(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    if crate::index::walk_is_binary(&bytes) {
        bail!("{} is a binary file", file.display());
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let root = resolve_root(args.root, &file)?;
    let (position, range) = match line_col {
        Some((l, c)) => {
            let p = char_col_to_position(&text, l, c)?;
            let r = match &args.to {
                Some(to) => {
                    let (l2, c2) = parse_line_col(to)?;
                    Some(Range::new(p, char_col_to_position(&text, l2, c2)?))
                }
                None => None,
            };
            (p, r)
        }
        None => {
            let rope = ropey::Rope::from_str(&text);
            let end = crate::documents::byte_to_position(&rope, text.len(), PositionEncoding::Utf8);
            (
                Position::new(0, 0),
                Some(Range::new(Position::new(0, 0), end)),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let host = Arc::new(CliHost {
            apply: args.apply,
            root: root.clone(),
            done: tx,
        });
        let settings = ClientSettings {
            front_end: FrontEnd::Cli,
            encoding: PositionEncoding::Utf8,
            ..ClientSettings::default()
        };
        let started = Session::start(vec![root], settings, OnConfigError::Fail, host)
            .map_err(|e| anyhow!(redact(&e.to_string())))?;
        for w in &started.warnings {
            eprintln!("warning: {w}");
        }
        let session = started.session;
        session.index_workspace(|_| {}).await?;
        let uri = path_to_uri(&file);
        session.open_document(&uri, "", 1, &text);
        let req = PromptRequest::at(args.prompt.unwrap_or_default(), position, range);
        let id = session.run_agent(args.agent.as_deref(), &uri, req).await?;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let info = loop {
            tokio::select! {
                done = rx.recv() => match done {
                    Some(Done::Finished(info)) if info.id == id => break info,
                    Some(_) => continue,
                    None => bail!("internal: task host closed"),
                },
                _ = &mut ctrl_c => {
                    let _ = session.cancel(&id);
                }
            }
        };
        session.shutdown(Duration::from_secs(2)).await;
        println!();
        match info.state {
            TaskState::Succeeded => {
                eprintln!(
                    "[{} succeeded on {} ({}) in task {}]",
                    info.agent,
                    info.provider.unwrap_or_default(),
                    info.model.unwrap_or_default(),
                    info.id
                );
                Ok(())
            }
            _ if info
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("dry run") || e.contains("dry run")) =>
            {
                Ok(())
            }
            _ if info.error.as_deref() == Some(crate::agents::EDIT_REJECTED) && !args.apply => {
                Ok(())
            }
            state => bail!(
                "{} {}: {}",
                info.label(),
                state.as_str(),
                info.error.unwrap_or_default()
            ),
        }
    })
}

/// `infinity-matrix agents`.
pub fn agents(root: Option<PathBuf>) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let root = resolve_root(root, &cwd.join("x"))?;
    let config = load_config(&root)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<12} {:<12} {:<8} {:<28} {:<20} DESCRIPTION",
        "AGENT", "OUTPUT", "APPROVAL", "TRIGGERS", "PROVIDERS"
    )?;
    for a in crate::agents::resolve_agents(&config) {
        let triggers: Vec<String> = a.triggers.iter().map(|t| format!("{t:?}")).collect();
        writeln!(
            out,
            "{:<12} {:<12} {:<8} {:<28} {:<20} {}",
            a.name,
            format!("{:?}", a.output).to_lowercase(),
            format!("{:?}", a.approval).to_lowercase(),
            triggers.join(","),
            a.providers.join(">"),
            a.description
        )?;
    }
    Ok(())
}

/// `infinity-matrix doctor`.
pub fn doctor(root: Option<PathBuf>) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let root = resolve_root(root, &cwd.join("x"))?;
    let config = load_config(&root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes".to_string(),
        Some(false) => "NO".to_string(),
        None => "?".to_string(),
    };
    let rows: Vec<_> = runtime
        .block_on(crate::session::check_providers(&config))
        .into_iter()
        .map(|(name, cfg, check)| {
            let kind = format!("{:?}", cfg.kind).to_lowercase();
            let url = if cfg.kind == crate::config::ProviderKind::Embedded {
                crate::providers::embedded::model_file(&cfg)
                    .0
                    .display()
                    .to_string()
            } else {
                cfg.base_url.clone().unwrap_or_else(|| "(default)".into())
            };
            let (reach, auth, present, detail) = match check {
                ProviderCheck::Unusable(e) => ("no".into(), "-".into(), "-".into(), e),
                ProviderCheck::Report(r) => (
                    if r.reachable { "yes" } else { "NO" }.to_string(),
                    yn(r.authorized),
                    yn(r.model_present),
                    r.detail,
                ),
                ProviderCheck::NoAnswer => (
                    "NO".into(),
                    "?".into(),
                    "?".into(),
                    "no answer within 10 s".into(),
                ),
            };
            (name, kind, cfg.model, url, reach, auth, present, detail)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<10} {:<10} {:<22} {:<34} {:<9} {:<10} {:<6} DETAIL",
        "PROVIDER", "KIND", "MODEL", "URL", "REACHABLE", "AUTHORIZED", "MODEL"
    )?;
    let mut ok = false;
    for (name, kind, model, url, reach, auth, present, detail) in rows {
        ok |= reach == "yes" && present != "NO" && auth != "NO";
        writeln!(
            out,
            "{name:<10} {kind:<10} {model:<22} {url:<34} {reach:<9} {auth:<10} {present:<6} {detail}"
        )?;
    }
    if !ok {
        writeln!(
            out,
            "\nNo provider is usable. Install the built-in local model with `infinity-matrix model install`, or configure one in {}.",
            crate::config::user_config_path().display()
        )?;
    }
    Ok(())
}

/// `infinity-matrix audit`.
pub fn audit(
    root: Option<PathBuf>,
    since: Option<String>,
    task: Option<String>,
    limit: usize,
    json: bool,
) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let root = resolve_root(root, &cwd.join("x"))?;
    let query = AuditQuery {
        since: since
            .as_deref()
            .map(|s| crate::audit::parse_since(s).map_err(|e| anyhow!("--since {e}")))
            .transpose()?,
        task_id: task,
        agent: None,
        kind: None,
        limit: Some(limit),
    };
    let entries = crate::session::read_audit(&root, &query)?;
    let mut out = std::io::stdout().lock();
    for e in entries {
        if json {
            serde_json::to_writer(&mut out, &super::json::AuditLine::from(e))?;
            writeln!(out)?;
        } else {
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            writeln!(
                out,
                "{} {:<10} {:<16} {:<9} {}",
                e.at,
                kind,
                e.task_id,
                e.agent.as_deref().unwrap_or("-"),
                e.summary
            )?;
        }
    }
    Ok(())
}
