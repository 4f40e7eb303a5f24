//! API keys (from env vars or set at runtime) and the process-global redactor that keeps them out of every message and log line.
//!
//! Every secret value this layer resolves or is given is registered with the redactor (values
//! shorter than [`MIN_REGISTERED_LEN`] are not registered, to avoid redacting common words, but
//! they are still never logged). [`redact`] replaces registered values with [`REDACTED`] and also
//! scrubs obvious key shapes: `key=`/`token=` URL query parameters, `Authorization`, `x-api-key`
//! and `x-goog-api-key` header values, `Bearer` tokens, and well-known key prefixes.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::LazyLock;

use parking_lot::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not registered with the redactor.
pub const MIN_REGISTERED_LEN: usize = 8;

/// At most this many secrets are remembered (the oldest are forgotten first; refreshed
/// short-lived tokens are the only thing that makes the list grow).
const MAX_REGISTERED: usize = 1024;

/// Registered secret values, in registration order.
static REGISTRY: LazyLock<RwLock<VecDeque<String>>> =
    LazyLock::new(|| RwLock::new(VecDeque::new()));

/// Registers a secret value so that [`redact`] replaces it from now on.
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_REGISTERED_LEN {
        return;
    }
    if REGISTRY.read().iter().any(|s| s == value) {
        return;
    }
    let mut registry = REGISTRY.write();
    if registry.iter().any(|s| s == value) {
        return;
    }
    if registry.len() >= MAX_REGISTERED {
        registry.pop_front();
    }
    registry.push_back(value.to_string());
}

/// Replaces every registered secret and every obvious key shape in `text` with [`REDACTED`].
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    {
        let registry = REGISTRY.read();
        // Longest first, so a secret containing another one is replaced whole.
        let mut secrets: Vec<&String> = registry
            .iter()
            .filter(|s| out.contains(s.as_str()))
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    redact_shapes(&out)
}

/// Where API keys come from: values set by the client at runtime (which win), else environment
/// variables. Names are the `api_key_env` names of the configuration (a runtime value may also be
/// set under a provider's name, see [`SecretStore::key_for`]).
#[derive(Default)]
pub struct SecretStore {
    runtime: RwLock<HashMap<String, String>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = self.runtime.read().keys().cloned().collect();
        names.sort();
        f.debug_struct("SecretStore")
            .field("runtime_names", &names)
            .finish()
    }
}

impl SecretStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a key at runtime (it wins over the environment). An empty value removes it.
    pub fn set(&self, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            self.remove(name);
            return;
        }
        register_secret(value);
        self.runtime
            .write()
            .insert(name.to_string(), value.to_string());
    }

    /// Forgets a runtime key (the environment variable, if any, applies again).
    pub fn remove(&self, name: &str) {
        self.runtime.write().remove(name);
    }

    /// The key called `name`: the runtime value if set, else the non-empty environment variable
    /// `name`. The value is registered with the redactor.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.runtime.read().get(name) {
            register_secret(value);
            return Some(value.clone());
        }
        let value = std::env::var(name).ok()?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        register_secret(value);
        Some(value.to_string())
    }

    /// The key of a provider: `api_key_env` (runtime value, else environment), else a runtime
    /// value set under the provider's name.
    pub fn key_for(&self, provider_name: &str, api_key_env: Option<&str>) -> Option<String> {
        if let Some(env) = api_key_env
            && let Some(value) = self.get(env)
        {
            return Some(value);
        }
        let value = self.runtime.read().get(provider_name).cloned()?;
        register_secret(&value);
        Some(value)
    }
}

/// Header and parameter names whose values are secrets (lowercase; matched case-insensitively,
/// also as the end of a longer name such as `x-api-key` or `x-goog-api-key`).
const SECRET_NAMES: &[&str] = &[
    "authorization",
    "api-key",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
];

/// Names that are secrets only as URL query parameters (`?key=...`, `&token=...`).
const QUERY_NAMES: &[&str] = &["key", "token", "sig", "signature"];

/// Authentication schemes kept in front of a redacted value.
const SCHEMES: &[&str] = &["bearer", "basic", "token"];

/// Well-known key prefixes and the minimum number of key characters that must follow.
const KEY_PREFIXES: &[(&str, usize)] = &[("sk-", 16), ("AIza", 30), ("ya29.", 20), ("xai-", 20)];

fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\''
                | b','
                | b';'
                | b'&'
                | b'}'
                | b')'
                | b']'
                | b'<'
                | b'>'
                | b'#'
                | b'\\'
                | b'`'
        )
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

fn starts_with_ci(haystack: &[u8], needle: &str) -> bool {
    haystack
        .get(..needle.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Scrubs obvious key shapes. Works on bytes; every match starts and ends at ASCII bytes, so
/// slicing at those positions always lands on char boundaries.
fn redact_shapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes[..copied] are already in `out`
    let mut i = 0;
    while i < bytes.len() {
        match match_secret_at(bytes, i) {
            Some((value_start, value_end)) if value_end > i => {
                out.push_str(text.get(copied..value_start).unwrap_or_default());
                out.push_str(REDACTED);
                copied = value_end;
                i = value_end;
            }
            _ => i += 1,
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// If a secret value is recognisable at `i`, returns its byte range.
fn match_secret_at(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    let prev = if i == 0 {
        None
    } else {
        bytes.get(i - 1).copied()
    };
    let word_start = prev.is_none_or(|p| !p.is_ascii_alphanumeric() && p != b'_');
    let rest = bytes.get(i..)?;

    // `name: value`, `"name": "value"`, `name=value`.
    if word_start {
        for name in SECRET_NAMES {
            if starts_with_ci(rest, name)
                && let Some(range) = value_after_name(bytes, i + name.len(), true)
            {
                return Some(range);
            }
        }
    }
    // `?key=value` / `&token=value`.
    if matches!(prev, Some(b'?') | Some(b'&')) {
        for name in QUERY_NAMES {
            if starts_with_ci(rest, name) && bytes.get(i + name.len()) == Some(&b'=') {
                let start = i + name.len() + 1;
                let end = scan_value(bytes, start);
                if end > start && !is_already_redacted(bytes, start) {
                    return Some((start, end));
                }
            }
        }
    }
    // `Bearer <token>` anywhere.
    if word_start && starts_with_ci(rest, "bearer ") {
        let mut start = i + "bearer ".len();
        while bytes.get(start) == Some(&b' ') {
            start += 1;
        }
        let end = scan_value(bytes, start);
        if end >= start + MIN_REGISTERED_LEN && !is_already_redacted(bytes, start) {
            return Some((start, end));
        }
    }
    // Well-known key prefixes.
    let key_start = prev.is_none_or(|p| !is_key_char(p));
    if key_start {
        for (prefix, min) in KEY_PREFIXES {
            if rest.starts_with(prefix.as_bytes()) {
                let mut end = i + prefix.len();
                while bytes
                    .get(end)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                {
                    end += 1;
                }
                if end - (i + prefix.len()) >= *min {
                    return Some((i, end));
                }
            }
        }
    }
    None
}

fn is_already_redacted(bytes: &[u8], start: usize) -> bool {
    bytes
        .get(start..)
        .is_some_and(|rest| rest.starts_with(REDACTED.as_bytes()))
}

fn scan_value(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while bytes.get(end).is_some_and(|b| !is_value_end(*b)) {
        end += 1;
    }
    end
}

/// After a secret name ending at `j`: optional closing quote, whitespace, `:` or `=`, whitespace,
/// optional opening quote, optional auth scheme, then the value.
fn value_after_name(bytes: &[u8], mut j: usize, allow_scheme: bool) -> Option<(usize, usize)> {
    // The name must end here (not `authorizationFoo`).
    if bytes
        .get(j)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return None;
    }
    while bytes.get(j).is_some_and(|b| matches!(b, b'"' | b'\'')) {
        j += 1;
    }
    while bytes.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
        j += 1;
    }
    if !bytes.get(j).is_some_and(|b| matches!(b, b':' | b'=')) {
        return None;
    }
    j += 1;
    while bytes
        .get(j)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'"' | b'\''))
    {
        j += 1;
    }
    if allow_scheme {
        for scheme in SCHEMES {
            let rest = bytes.get(j..)?;
            if starts_with_ci(rest, scheme) && bytes.get(j + scheme.len()) == Some(&b' ') {
                j += scheme.len();
                while bytes.get(j) == Some(&b' ') {
                    j += 1;
                }
                break;
            }
        }
    }
    let end = scan_value(bytes, j);
    if end > j && !is_already_redacted(bytes, j) {
        Some((j, end))
    } else {
        None
    }
}
