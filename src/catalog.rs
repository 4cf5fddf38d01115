//! The in-memory view of a library's definitions: which file serves each name when several
//! define it, and which definitions are identical copies of one another.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::diagnostic::Diagnostic;
use crate::library::{Definition, Kind};

/// Definitions grouped by name and by copy.
pub(crate) struct Catalog {
    defs: Vec<Definition>,
    by_key: HashMap<u64, usize>,
    /// Name -> the definition served under it.
    by_name: HashMap<String, usize>,
    /// Definitions that lost a name clash: indexed, but never served.
    shadowed: HashSet<u64>,
    /// Per definition, its copy group.
    group_of: Vec<usize>,
    /// Per group, its members (served ones only), canonical first.
    groups: Vec<Vec<usize>>,
    /// Lowercased role -> the served agents declaring it.
    by_role: HashMap<String, Vec<usize>>,
}

/// The text by which copies are recognised (`relevance.md`): whitespace collapsed, trimmed,
/// lowercased. Empty descriptions group nothing.
pub(crate) fn copy_signature(description: &str) -> String {
    description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Catalog {
    /// Builds the catalog and reports every name defined by more than one file.
    pub fn new(mut defs: Vec<Definition>) -> (Catalog, Vec<Diagnostic>) {
        // Precedence for a name: earlier root, then shallower path, then path order.
        defs.sort_by(|a, b| {
            (a.root, a.path.components().count(), &a.path).cmp(&(
                b.root,
                b.path.components().count(),
                &b.path,
            ))
        });
        let mut diagnostics = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut shadowed = HashSet::new();
        for (i, d) in defs.iter().enumerate() {
            match by_name.get(&d.name) {
                None => {
                    by_name.insert(d.name.clone(), i);
                }
                Some(&winner) => {
                    shadowed.insert(d.key);
                    diagnostics.push(Diagnostic::warning(
                        &d.path,
                        2,
                        format!("name `{}` is also defined by {}, which is served; this file is ignored", d.name, defs[winner].path.display()),
                    ));
                }
            }
        }
        let mut signature_groups: BTreeMap<(Kind, String), Vec<usize>> = BTreeMap::new();
        let mut group_of = vec![usize::MAX; defs.len()];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, d) in defs.iter().enumerate() {
            if shadowed.contains(&d.key) {
                continue;
            }
            let signature = copy_signature(&d.description);
            if signature.is_empty() {
                group_of[i] = groups.len();
                groups.push(vec![i]);
            } else {
                signature_groups
                    .entry((d.kind, signature))
                    .or_default()
                    .push(i);
            }
        }
        for mut members in signature_groups.into_values() {
            members.sort_by(|&a, &b| defs[a].name.cmp(&defs[b].name));
            for &m in &members {
                group_of[m] = groups.len();
            }
            groups.push(members);
        }
        for (i, d) in defs.iter().enumerate() {
            if shadowed.contains(&d.key) {
                group_of[i] = by_name.get(&d.name).map_or(usize::MAX, |&w| group_of[w]);
            }
        }
        let by_key = defs.iter().enumerate().map(|(i, d)| (d.key, i)).collect();
        let mut by_role: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in defs.iter().enumerate() {
            if let Some(role) = &d.role
                && d.kind == Kind::Agent
                && !shadowed.contains(&d.key)
            {
                by_role.entry(role.to_lowercase()).or_default().push(i);
            }
        }
        let catalog = Catalog {
            defs,
            by_key,
            by_name,
            shadowed,
            group_of,
            groups,
            by_role,
        };
        (catalog, diagnostics)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Served definitions, in precedence order.
    pub fn served(&self) -> impl Iterator<Item = &Definition> {
        self.defs.iter().filter(|d| !self.shadowed.contains(&d.key))
    }

    pub fn by_name(&self, name: &str) -> Option<&Definition> {
        self.by_name.get(name).map(|&i| &self.defs[i])
    }

    pub fn by_key(&self, key: u64) -> Option<&Definition> {
        self.by_key.get(&key).map(|&i| &self.defs[i])
    }

    /// Served agents declaring `role` (any case), in precedence order.
    pub fn with_role(&self, role: &str) -> Vec<&Definition> {
        self.by_role
            .get(&role.to_lowercase())
            .map_or_else(Vec::new, |members| {
                members.iter().map(|&i| &self.defs[i]).collect()
            })
    }

    pub fn is_shadowed(&self, key: u64) -> bool {
        self.shadowed.contains(&key)
    }

    /// Every served name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The group of `key` as (canonical definition, the other members' names).
    pub fn group(&self, key: u64) -> Option<(&Definition, Vec<String>)> {
        let &i = self.by_key.get(&key)?;
        let members = self.groups.get(self.group_of[i])?;
        let canonical = &self.defs[*members.first()?];
        let aliases = members
            .iter()
            .skip(1)
            .map(|&m| self.defs[m].name.clone())
            .collect();
        Some((canonical, aliases))
    }

    /// Stable identity of the copy group of `key`.
    pub fn group_id(&self, key: u64) -> Option<usize> {
        self.by_key.get(&key).map(|&i| self.group_of[i])
    }

    /// (served name, alias) for every group with copies, for the registry's alias table.
    pub fn alias_pairs(&self) -> Vec<(String, String)> {
        self.groups
            .iter()
            .filter(|g| g.len() > 1)
            .flat_map(|g| {
                g[1..]
                    .iter()
                    .map(move |&m| (self.defs[g[0]].name.clone(), self.defs[m].name.clone()))
            })
            .collect()
    }
}
