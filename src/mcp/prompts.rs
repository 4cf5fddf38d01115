//! Workflows as MCP prompts: arguments described from `argument-hint`, and the body with
//! `$ARGUMENTS` and `$1`..`$9` filled in.

use std::collections::BTreeMap;

/// The arguments a workflow takes, from its `argument-hint`: each `[part]` is one positional
/// argument (`$1`, `$2`, ...); without a hint, one free-form `arguments` argument.
pub(crate) fn arguments(hint: Option<&str>) -> Vec<(String, String)> {
    let parts: Vec<&str> = hint
        .map(|h| {
            h.split('[')
                .filter_map(|p| p.split_once(']').map(|(inside, _)| inside.trim()))
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        let described = hint.map_or_else(
            || "What the workflow should work on".to_string(),
            str::to_string,
        );
        return vec![("arguments".to_string(), described)];
    }
    parts
        .into_iter()
        .take(9)
        .map(|p| {
            let name: String = p
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
                .split('-')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            (
                if name.is_empty() {
                    "arguments".to_string()
                } else {
                    name
                },
                p.to_string(),
            )
        })
        .collect()
}

/// Fills `$ARGUMENTS` (every value, in argument order) and `$1`..`$9` into a workflow body.
/// With the single free-form argument, `$1`.. are its whitespace-separated words, as in
/// Claude Code.
pub(crate) fn render(
    body: &str,
    declared: &[(String, String)],
    given: &BTreeMap<String, String>,
) -> String {
    let values: Vec<String> = declared
        .iter()
        .map(|(name, _)| given.get(name).cloned().unwrap_or_default())
        .collect();
    let all = values
        .iter()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let positional: Vec<String> = if declared.len() == 1 && declared[0].0 == "arguments" {
        all.split_whitespace().map(str::to_string).collect()
    } else {
        values
    };
    let mut out = String::with_capacity(body.len() + all.len());
    let mut rest = body;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("ARGUMENTS") {
            out.push_str(&all);
            rest = tail;
        } else if let Some(d) = after.chars().next().filter(|c| ('1'..='9').contains(c)) {
            let index = d as usize - '1' as usize;
            out.push_str(positional.get(index).map_or("", String::as_str));
            rest = &after[1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The body of a workflow file: what follows its frontmatter, or all of it when it has none.
pub(crate) fn body(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(after_open) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return text;
    };
    let mut offset = 0;
    for line in after_open.split_inclusive('\n') {
        offset += line.len();
        if line.trim_end() == "---" {
            return after_open[offset..].trim_start_matches(['\r', '\n']);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_parts_become_positional_arguments() {
        let args = arguments(Some("[issue-number] [Priority level]"));
        assert_eq!(args[0].0, "issue-number");
        assert_eq!(args[1].0, "priority-level");
        let given = BTreeMap::from([
            ("issue-number".to_string(), "42".to_string()),
            ("priority-level".to_string(), "high".to_string()),
        ]);
        assert_eq!(
            render("Fix #$1 ($2): $ARGUMENTS, $5 cost $", &args, &given),
            "Fix #42 (high): 42 high,  cost $"
        );
    }

    #[test]
    fn free_form_arguments_split_into_words() {
        let args = arguments(None);
        let given = BTreeMap::from([("arguments".to_string(), "v1.2 v1.3".to_string())]);
        assert_eq!(
            render("notes for $1..$2 [$ARGUMENTS]", &args, &given),
            "notes for v1.2..v1.3 [v1.2 v1.3]"
        );
    }

    #[test]
    fn body_skips_frontmatter() {
        assert_eq!(
            body("---\ndescription: x\n---\n\nDo $ARGUMENTS\n"),
            "Do $ARGUMENTS\n"
        );
        assert_eq!(body("Do it\n"), "Do it\n");
    }
}
