//! The variables a prompt template may use, and the check that a configured template uses no others.

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "selection",
    "context",
    "file",
    "language",
    "diagnostics",
    "prompt",
];

/// The `{{name}}` placeholders in `template` that are not known variables.
pub fn unknown_variables(template: &str) -> Vec<String> {
    placeholders(template)
        .into_iter()
        .filter(|n| !VARIABLES.contains(&n.as_str()))
        .collect()
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}
