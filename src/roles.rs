//! Roles and their fallback chains: who to hand a kind of work to, and who next when that
//! agent is not installed.

use std::collections::HashSet;

use serde::Serialize;

/// A role as the library declares it.
#[derive(Clone, Debug, Serialize)]
pub struct RoleChain {
    pub role: String,
    /// The agent that takes the role: the one named like the role, else the first by name.
    pub primary: String,
    /// Other agents declaring the same role.
    pub also: Vec<String>,
    /// The primary's declared fallbacks, in order.
    pub fallbacks: Vec<Link>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub name: String,
    /// No definition of this name is installed.
    pub missing: bool,
}

/// The agents to try for a role, best first.
#[derive(Clone, Debug, Serialize)]
pub struct Resolution {
    pub role: String,
    /// Installed agents in the order to try them.
    pub agents: Vec<String>,
    /// Names in the chain that are not installed, skipped.
    pub skipped: Vec<String>,
    /// No agent declares the role: `agents` come from a search for the role's words.
    pub searched: bool,
    /// When no agent declares the role, the declared roles closest to it.
    pub closest_roles: Vec<String>,
}

/// Walks a fallback chain depth-first from `start` until `limit` agents are found, visiting
/// every agent at most once (so a loop in the declarations ends the walk instead of spinning),
/// stepping past names that are not installed. `fallbacks_of` answers None for a name that is
/// not installed.
pub(crate) fn walk(
    start: &str,
    limit: usize,
    fallbacks_of: impl Fn(&str) -> Option<Vec<String>>,
) -> (Vec<String>, Vec<String>) {
    let mut agents = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(name) = stack.pop() {
        if agents.len() >= limit {
            break;
        }
        if !seen.insert(name.clone()) {
            continue;
        }
        match fallbacks_of(&name) {
            None => skipped.push(name),
            Some(next) => {
                agents.push(name);
                stack.extend(next.into_iter().rev());
            }
        }
    }
    (agents, skipped)
}

#[cfg(test)]
mod tests {
    use super::walk;

    fn graph(name: &str) -> Option<Vec<String>> {
        static GRAPH: std::sync::LazyLock<Vec<(&str, Vec<String>)>> =
            std::sync::LazyLock::new(|| {
                let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
                vec![
                    ("a", v(&["b", "gone", "c"])),
                    ("b", v(&["a", "d"])),
                    ("c", v(&[])),
                    ("d", v(&["c"])),
                ]
            });
        GRAPH
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
    }

    #[test]
    fn walks_in_order_past_missing_and_loops() {
        let (agents, skipped) = walk("a", 10, graph);
        assert_eq!(agents, ["a", "b", "d", "c"]);
        assert_eq!(skipped, ["gone"]);
    }

    #[test]
    fn stops_once_it_has_enough_agents() {
        let (agents, skipped) = walk("a", 2, graph);
        assert_eq!(agents, ["a", "b"]);
        assert!(skipped.is_empty());
    }
}
