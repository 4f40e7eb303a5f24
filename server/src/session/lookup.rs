//! Definitions looked up for front ends without an editor: at a position (resolved through
//! imports and scopes, as context capture does) or by name (the index), shown as source.

use super::{ContextArgs, Session, SessionError};
use crate::context::{ContextItem, ContextItemKind, estimate_tokens};
use crate::documents::{Position, Range};
use crate::engine::path_to_uri;

/// Longest definition shown whole by name, in lines (longer ones are cut with a marker).
const MAX_DEFINITION_LINES: usize = 200;

impl Session {
    /// The definitions the code at `position` of the open document `uri` uses, the symbol at
    /// the position first: the definition items of its context snapshot.
    pub async fn definitions_at(
        &self,
        uri: &str,
        position: Position,
    ) -> Result<Vec<ContextItem>, SessionError> {
        let snapshot = self
            .context(
                uri,
                ContextArgs {
                    position,
                    ..ContextArgs::default()
                },
            )
            .await?;
        Ok(snapshot
            .items
            .into_iter()
            .filter(|item| item.kind == ContextItemKind::Definition)
            .collect())
    }

    /// The indexed definitions named exactly `name` (at most `limit`), each as a definition item
    /// with its source lines.
    pub async fn definitions_named(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<ContextItem>, SessionError> {
        let engine = self.engine.clone();
        let wanted = name.to_string();
        let hits = tokio::task::spawn_blocking(move || engine.definitions_named(&wanted))
            .await
            .map_err(|e| SessionError::Internal(format!("lookup failed: {e}")))?;
        let mut out = Vec::new();
        for (path, kind, start, end) in hits.into_iter().take(limit) {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let (start, end) = (start as usize, (end as usize).max(start as usize));
            let lines: Vec<&str> = text.lines().skip(start).take(end - start + 1).collect();
            let mut shown: String = lines
                .iter()
                .take(MAX_DEFINITION_LINES)
                .map(|l| format!("{l}\n"))
                .collect();
            let mut elided = Vec::new();
            if lines.len() > MAX_DEFINITION_LINES {
                let first = start + MAX_DEFINITION_LINES;
                shown.push_str(&format!("… lines {}-{} left out\n", first + 1, end + 1));
                elided.push((first as u32, end as u32));
            }
            let display_path = self.display_path(&path);
            out.push(ContextItem {
                kind: ContextItemKind::Definition,
                uri: path_to_uri(&path),
                range: Range::new(
                    Position::new(start as u32, 0),
                    Position::new(end as u32 + 1, 0),
                ),
                tokens: estimate_tokens(&shown),
                text: shown,
                reason: format!("definition of {} {name} (by name)", kind.as_str()),
                elided,
                language: "",
                display_path,
            });
        }
        Ok(out)
    }
}
