//! Checks of the `[metrics]` section when configuration loads: a loopback `listen`, one token source.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::MetricsConfig;

/// Errors from checking the `[metrics]` settings and starting the endpoint. Messages name the
/// key and never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid metrics listen address {listen:?}: {reason} (expected e.g. 127.0.0.1:9464)")]
    InvalidListen { listen: String, reason: String },
    #[error(
        "refusing to serve metrics on {addr} (from {listen:?}): only loopback addresses \
         (127.0.0.0/8, ::1 or localhost) are allowed"
    )]
    NotLoopback { listen: String, addr: SocketAddr },
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Another `[metrics]` setting that cannot be used.
    #[error("{message}")]
    Setting { key: &'static str, message: String },
}

impl MetricsError {
    /// The configuration key the error is about (e.g. `metrics.listen`).
    pub fn key(&self) -> &'static str {
        match self {
            MetricsError::InvalidListen { .. }
            | MetricsError::NotLoopback { .. }
            | MetricsError::Bind { .. } => "metrics.listen",
            MetricsError::Setting { key, .. } => key,
        }
    }
}

pub(crate) fn setting(key: &'static str, message: impl Into<String>) -> MetricsError {
    MetricsError::Setting {
        key,
        message: message.into(),
    }
}

/// Parses `listen` (`IP:PORT`, `[::1]:PORT` or `localhost:PORT`, which means 127.0.0.1) and
/// refuses anything that is not a loopback address.
pub fn parse_loopback_addr(listen: &str) -> Result<SocketAddr, MetricsError> {
    let text = listen.trim();
    let invalid = |reason: &str| MetricsError::InvalidListen {
        listen: listen.to_owned(),
        reason: reason.to_owned(),
    };
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("the port is not a number 0-65535"))?;
            if host.eq_ignore_ascii_case("localhost") {
                SocketAddr::from((Ipv4Addr::LOCALHOST, port))
            } else {
                return Err(invalid("the host must be an IP address or localhost"));
            }
        }
    };
    if !addr.ip().is_loopback() {
        return Err(MetricsError::NotLoopback {
            listen: listen.to_owned(),
            addr,
        });
    }
    Ok(addr)
}

/// Checks `[metrics]` without reading anything: a section that could be parsed, a loopback
/// `listen`, at most one token source and a well-formed one. Run when configuration is loaded.
pub fn check_config(config: &MetricsConfig) -> Result<(), MetricsError> {
    if let Some(why) = &config.invalid {
        return Err(setting("metrics", why.clone()));
    }
    if let Some(listen) = &config.listen {
        parse_loopback_addr(listen)?;
    }
    match (&config.token_file, &config.token_env) {
        (Some(_), Some(_)) => Err(setting(
            "metrics.token_env",
            "set metrics.token_file or metrics.token_env, not both",
        )),
        (Some(file), None) => token_file_path(file).map(drop),
        (None, Some(name)) => check_env_name(name),
        (None, None) => Ok(()),
    }
}

/// `token_file` as a path: absolute, or starting with `~/` (the home directory).
pub(crate) fn token_file_path(file: &str) -> Result<PathBuf, MetricsError> {
    const KEY: &str = "metrics.token_file";
    if let Some(rest) = file.strip_prefix("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| setting(KEY, format!("{file:?} starts with ~/ but HOME is not set")))?;
        return Ok(PathBuf::from(home).join(rest));
    }
    let path = PathBuf::from(file);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(setting(
            KEY,
            format!("{file:?} is not an absolute path (or one starting with ~/)"),
        ))
    }
}

fn check_env_name(name: &str) -> Result<(), MetricsError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        // Not echoed: a token pasted here by mistake must not reach a log.
        Err(setting(
            "metrics.token_env",
            "must be the NAME of an environment variable (letters, digits and _), never the token itself",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_anything_is_read() {
        let cfg = |listen: Option<&str>, file: Option<&str>, env: Option<&str>| MetricsConfig {
            listen: listen.map(str::to_owned),
            token_file: file.map(str::to_owned),
            token_env: env.map(str::to_owned),
            invalid: None,
        };
        assert!(check_config(&cfg(Some("127.0.0.1:9464"), None, None)).is_ok());
        assert!(check_config(&cfg(None, Some("/run/token"), None)).is_ok());
        assert!(check_config(&cfg(None, None, Some("METRICS_TOKEN"))).is_ok());
        let key = |c: MetricsConfig| check_config(&c).map_err(|e| e.key()).err();
        assert_eq!(
            key(cfg(Some("0.0.0.0:9464"), None, None)),
            Some("metrics.listen")
        );
        assert_eq!(
            key(cfg(None, Some("relative/token"), None)),
            Some("metrics.token_file")
        );
        assert_eq!(
            key(cfg(None, None, Some("not a name"))),
            Some("metrics.token_env")
        );
        assert_eq!(
            key(cfg(None, Some("/run/token"), Some("METRICS_TOKEN"))),
            Some("metrics.token_env")
        );
        let err = check_config(&cfg(None, None, Some("sk-my secret"))).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let invalid = MetricsConfig {
            invalid: Some("unknown field `lissten`".into()),
            ..MetricsConfig::default()
        };
        assert_eq!(
            check_config(&invalid).map_err(|e| e.key()).err(),
            Some("metrics")
        );
    }
}
