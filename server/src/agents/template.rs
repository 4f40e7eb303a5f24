//! Prompt templates: `{{variable}}` substitution with a fixed set of variables.

pub use crate::config::template::{VARIABLES, unknown_variables};

/// Values for one rendering.
#[derive(Debug, Clone, Default)]
pub struct TemplateVars {
    pub selection: String,
    pub context: String,
    pub file: String,
    pub language: String,
    pub diagnostics: String,
    pub prompt: String,
}

/// Substitutes every known variable (one pass: values are never re-scanned, so a selection
/// containing `{{prompt}}` stays literal). Unknown placeholders are left as they are.
pub fn render(template: &str, vars: &TemplateVars) -> String {
    let mut out = String::with_capacity(template.len() + vars.context.len() + vars.selection.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = match name {
            "selection" => Some(&vars.selection),
            "context" => Some(&vars.context),
            "file" => Some(&vars.file),
            "language" => Some(&vars.language),
            "diagnostics" => Some(&vars.diagnostics),
            "prompt" => Some(&vars.prompt),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_variables_once() {
        let vars = TemplateVars {
            selection: "x {{prompt}}".into(),
            prompt: "why".into(),
            ..Default::default()
        };
        assert_eq!(
            render("S: {{selection}} P: {{ prompt }} U: {{nope}} {{", &vars),
            "S: x {{prompt}} P: why U: {{nope}} {{"
        );
        assert_eq!(
            unknown_variables("{{selection}} {{nope}} {{ file }}"),
            vec!["nope".to_string()]
        );
    }
}
