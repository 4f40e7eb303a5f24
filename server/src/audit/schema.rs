//! Where the audit database lives, how a connection is configured, and the versioned schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::AuditError;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migration `i` moves a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the initial schema.
    r#"
    CREATE TABLE tasks (
        id          TEXT PRIMARY KEY NOT NULL,
        agent       TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN
                        ('queued','running','awaiting_approval','succeeded','failed','cancelled')),
        priority    INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        uri         TEXT,
        provider    TEXT,
        model       TEXT,
        error       TEXT,
        prompt_hash TEXT,
        prompt      TEXT NULL,
        reply       TEXT NULL,
        reply_hash  TEXT,
        summary     TEXT
    );
    CREATE INDEX tasks_created_at ON tasks(created_at);
    CREATE INDEX tasks_state ON tasks(state);

    CREATE TABLE task_events (
        seq        INTEGER PRIMARY KEY,
        task_id    TEXT NOT NULL,
        at         INTEGER NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        detail     TEXT
    );
    CREATE INDEX task_events_task ON task_events(task_id);
    CREATE INDEX task_events_at ON task_events(at);

    CREATE TABLE attempts (
        seq               INTEGER PRIMARY KEY,
        task_id           TEXT NOT NULL,
        attempt           INTEGER NOT NULL,
        provider          TEXT NOT NULL,
        model             TEXT NOT NULL,
        started_at        INTEGER NOT NULL,
        latency_ms        INTEGER,
        ttft_ms           INTEGER,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        outcome           TEXT NOT NULL,
        error_class       TEXT,
        error_message     TEXT,
        retry_delay_ms    INTEGER
    );
    CREATE INDEX attempts_task ON attempts(task_id);
    CREATE INDEX attempts_started_at ON attempts(started_at);

    CREATE TABLE approvals (
        seq      INTEGER PRIMARY KEY,
        task_id  TEXT NOT NULL,
        at       INTEGER NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN
                     ('accepted','rejected','auto','timeout_applied','refused')),
        by_whom  TEXT NOT NULL CHECK (by_whom IN ('user','policy','timeout')),
        reason   TEXT
    );
    CREATE INDEX approvals_task ON approvals(task_id);
    CREATE INDEX approvals_at ON approvals(at);

    CREATE TABLE edits (
        seq            INTEGER PRIMARY KEY,
        task_id        TEXT NOT NULL,
        at             INTEGER NOT NULL,
        files          TEXT NOT NULL,
        lines_changed  INTEGER NOT NULL,
        content_hash   TEXT NOT NULL,
        summary        TEXT NOT NULL,
        applied        INTEGER NOT NULL CHECK (applied IN (0, 1)),
        outcome_detail TEXT
    );
    CREATE INDEX edits_task ON edits(task_id);
    CREATE INDEX edits_at ON edits(at);
    "#,
    // 1 -> 2: task owners (the process that runs a task), so recovery touches only tasks of
    // processes that died. Tasks written by version 1 have no owner and count as orphaned.
    // Attempts gain the outcomes 'running' (in flight), 'interrupted' and 'skipped' (no
    // column change: `outcome` is free text).
    r#"
    CREATE TABLE owners (
        id         TEXT PRIMARY KEY NOT NULL,
        pid        INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        end_reason TEXT
    );
    ALTER TABLE tasks ADD COLUMN owner TEXT;
    CREATE INDEX tasks_owner ON tasks(owner);
    CREATE INDEX attempts_running ON attempts(task_id) WHERE outcome = 'running';
    "#,
    // 2 -> 3: the front end an owner served (lsp, cli, mcp, acp), so each task names the
    // front end that started it.
    r#"
    ALTER TABLE owners ADD COLUMN front_end TEXT;
    "#,
    // 3 -> 4: the findings a diagnostics-mode agent published for a file (JSON, redacted), so a
    // restarted server publishes each file's latest ones again.
    r#"
    CREATE TABLE findings (
        seq     INTEGER PRIMARY KEY,
        task_id TEXT NOT NULL,
        uri     TEXT NOT NULL,
        at      INTEGER NOT NULL,
        items   TEXT NOT NULL
    );
    CREATE INDEX findings_uri ON findings(uri, seq);
    CREATE INDEX findings_at ON findings(at);
    "#,
];

/// `$XDG_DATA_HOME/infinity-matrix/audit` (or `$HOME/.local/share/infinity-matrix/audit`; the
/// system temporary directory when neither variable is usable).
pub fn audit_dir() -> PathBuf {
    data_home().join("infinity-matrix").join("audit")
}

fn data_home() -> PathBuf {
    // The XDG spec says a relative value is invalid and must be ignored.
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
        && home.is_absolute()
    {
        return home.join(".local").join("share");
    }
    std::env::temp_dir()
}

/// The audit database for a workspace root:
/// `<audit_dir>/<root's name>-<16 hex of sha256(root path)>.sqlite3`. The root is canonicalised
/// when possible, so two spellings of one directory share a database. Never inside the root.
pub fn database_path_for_root(root: &Path) -> PathBuf {
    database_file_in(&audit_dir(), Some(root))
}

/// The audit database used when there is no workspace root: `<audit_dir>/default.sqlite3`.
pub fn default_database_path() -> PathBuf {
    database_file_in(&audit_dir(), None)
}

/// The database file for `root` (or the default one) inside `dir`.
pub fn database_file_in(dir: &Path, root: Option<&Path>) -> PathBuf {
    let Some(root) = root else {
        return dir.join("default.sqlite3");
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hash: String = hex(&digest).chars().take(16).collect();
    let name = root
        .file_name()
        .map(|n| sanitize_name(&n.to_string_lossy()))
        .unwrap_or_default();
    let name = if name.is_empty() {
        "root".to_owned()
    } else {
        name
    };
    dir.join(format!("{name}-{hash}.sqlite3"))
}

/// Keeps file names portable: ASCII letters, digits, `.`, `_`, `-`; at most 48 characters.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Opens (creating if needed) the database file and its parent directories, configures it and
/// brings its schema up to date.
pub(crate) fn open_file(path: &Path) -> Result<Connection, AuditError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| AuditError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let open_err = |source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    configure(&conn, true).map_err(open_err)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// An in-memory database with the current schema (for tests).
pub(crate) fn open_memory() -> Result<Connection, AuditError> {
    let open_err = |source| AuditError::Open {
        path: PathBuf::from(":memory:"),
        source,
    };
    let mut conn = Connection::open_in_memory().map_err(open_err)?;
    configure(&conn, false).map_err(open_err)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &Connection, wal: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if wal {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "audit database could not switch to WAL mode");
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Applies every migration newer than the database's `user_version`, each in its own
/// transaction. Refuses a database written by a newer build.
fn migrate(conn: &mut Connection) -> Result<(), AuditError> {
    let schema_err = |source| AuditError::Schema { source };
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(schema_err)?;
    if current > SCHEMA_VERSION {
        return Err(AuditError::NewerSchema {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (0_i64..).zip(MIGRATIONS.iter()) {
        if version < current {
            continue;
        }
        let tx = conn.transaction().map_err(schema_err)?;
        tx.execute_batch(sql).map_err(schema_err)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(schema_err)?;
        tx.commit().map_err(schema_err)?;
    }
    Ok(())
}
