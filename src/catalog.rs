//! The in-memory view of a library's definitions: which file serves each name when several
//! define it, and which definitions are identical copies of one another.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use rayon::prelude::*;

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

/// Writes into `signature` the text by which copies are recognised (`relevance.md`):
/// whitespace collapsed, trimmed, lowercased. Empty descriptions group nothing. The caller's
/// buffer is reused: at 100k definitions, one fresh string per description was 50 MB.
fn copy_signature(description: &str, signature: &mut String) {
    signature.clear();
    for word in description.split_whitespace() {
        if !signature.is_empty() {
            signature.push(' ');
        }
        if word.is_ascii() {
            let start = signature.len();
            signature.push_str(word);
            signature[start..].make_ascii_lowercase();
        } else {
            signature.push_str(&word.to_lowercase());
        }
    }
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Precedence order of definition files: earlier root, then shallower path, then path order
/// (by components). Computed once per file: a comparison parsing components each time was most
/// of the catalog's build at 100k files.
fn precedence(d: &Definition) -> (usize, usize, Vec<u8>) {
    (
        d.root,
        d.path.components().count(),
        crate::library::scan::component_order(&d.path),
    )
}

/// Sorts `defs` by `precedence`, keys computed on every core, as `sort_by_cached_key` does it
/// on one: the keys are sorted with their positions, then the definitions swapped into place
/// (moving them into a sorted copy held two lists of 100k at once).
fn sort_by_precedence(defs: &mut [Definition]) {
    let mut order: Vec<_> = defs
        .par_iter()
        .map(precedence)
        .enumerate()
        .map(|(i, key)| (key, i))
        .collect();
    order.par_sort_unstable();
    for i in 0..order.len() {
        // Where the i-th definition now is: its old place, or wherever an earlier swap sent it.
        let mut from = order[i].1;
        while from < i {
            from = order[from].1;
        }
        order[i].1 = from;
        defs.swap(i, from);
    }
}

impl Catalog {
    /// Builds the catalog and reports every name defined by more than one file.
    pub fn new(mut defs: Vec<Definition>) -> (Catalog, Vec<Diagnostic>) {
        // Keys and signatures are computed on every core: at 100k definitions they were most
        // of the catalog's build on one.
        sort_by_precedence(&mut defs);
        let signatures: Vec<u64> = defs
            .par_iter()
            .map_init(String::new, |signature, d| {
                copy_signature(&d.description, signature);
                hash_of(signature)
            })
            .collect();
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
        // Grouped by a hash of the signature; a bucket holding more than one definition is
        // then split by the signatures themselves, so a hash collision never merges two.
        let mut buckets: HashMap<(Kind, u64), Vec<usize>> = HashMap::new();
        let mut group_of = vec![usize::MAX; defs.len()];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, d) in defs.iter().enumerate() {
            if shadowed.contains(&d.key) {
                continue;
            }
            if d.description.trim().is_empty() {
                group_of[i] = groups.len();
                groups.push(vec![i]);
            } else {
                buckets.entry((d.kind, signatures[i])).or_default().push(i);
            }
        }
        let mut signature = String::new();
        let mut by_signature: Vec<Vec<usize>> = Vec::with_capacity(buckets.len());
        for members in buckets.into_values() {
            if members.len() == 1 {
                by_signature.push(members);
                continue;
            }
            let mut exact: Vec<(String, Vec<usize>)> = Vec::new();
            for m in members {
                copy_signature(&defs[m].description, &mut signature);
                match exact.iter_mut().find(|(s, _)| *s == signature) {
                    Some((_, same)) => same.push(m),
                    None => exact.push((signature.clone(), vec![m])),
                }
            }
            by_signature.extend(exact.into_iter().map(|(_, same)| same));
        }
        // Members were pushed in precedence order: ordering groups by their first member makes
        // group ids deterministic.
        by_signature.sort_unstable_by_key(|members| members[0]);
        for mut members in by_signature {
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Catalog, precedence, sort_by_precedence};
    use crate::library::Definition;
    use crate::library::formats::{Location, parse_file};

    fn agent(root: usize, relative: &str, name: &str, description: &str) -> Definition {
        let path = PathBuf::from(format!("/root{root}/{relative}"));
        let text = format!("---\nname: {name}\ndescription: {description}\n---\nBody.\n");
        let location = Location {
            root,
            path: &path,
            relative: Path::new(relative),
        };
        let parsed = parse_file(&location, text.as_bytes());
        parsed.definition.expect("a valid agent").0
    }

    fn served_path(catalog: &Catalog, name: &str) -> String {
        let served = catalog.by_name(name).expect("served");
        served.path.display().to_string()
    }

    #[test]
    fn a_name_goes_to_the_earlier_root_then_the_shallower_path_then_path_order() {
        let (catalog, clashes) = Catalog::new(vec![
            agent(1, "agents/a.md", "one", "From the second root."),
            agent(0, "agents/deep/er/a.md", "one", "Deeper in the first root."),
            agent(0, "agents/x/a.md", "two", "Later by components."),
            agent(0, "agents/deep/er/b.md", "two", "Deeper."),
            // By bytes `a-b/` sorts before `a/` ('-' < '/'); by components `a` comes first.
            agent(0, "agents/a-b/c.md", "three", "Later by components."),
            agent(0, "agents/a/c.md", "three", "Earlier by components."),
        ]);
        assert_eq!(served_path(&catalog, "one"), "/root0/agents/deep/er/a.md");
        assert_eq!(served_path(&catalog, "two"), "/root0/agents/x/a.md");
        assert_eq!(served_path(&catalog, "three"), "/root0/agents/a/c.md");
        assert_eq!(clashes.len(), 3, "{clashes:?}");
        assert_eq!(catalog.len(), 3);
    }

    #[test]
    fn sorting_in_place_orders_as_sorting_by_cached_keys() {
        let mut rng = fastrand::Rng::with_seed(3);
        for len in [0, 1, 2, 5, 100, 1000] {
            let defs: Vec<Definition> = (0..len)
                .map(|i| {
                    let dirs: Vec<String> = (0..rng.usize(0..3))
                        .map(|_| rng.u8(b'a'..b'e').to_string())
                        .collect();
                    let relative = format!("agents/{}/a{i}.md", dirs.join("/"));
                    agent(rng.usize(0..3), &relative, &format!("a{i}"), "An agent.")
                })
                .collect();
            let mut ours = defs.clone();
            sort_by_precedence(&mut ours);
            let mut theirs = defs;
            theirs.sort_by_cached_key(precedence);
            let paths = |d: &[Definition]| d.iter().map(|d| d.path.clone()).collect::<Vec<_>>();
            assert_eq!(paths(&ours), paths(&theirs), "{len} definitions");
        }
    }

    #[test]
    fn copies_differing_only_in_case_and_spacing_form_one_group_named_first_by_name() {
        let (catalog, _) = Catalog::new(vec![
            agent(0, "agents/zeta.md", "zeta", "Reviews  Pull requests."),
            agent(0, "agents/alpha.md", "alpha", "reviews pull\trequests."),
            agent(0, "agents/other.md", "other", "Something else."),
        ]);
        let zeta = catalog.by_name("zeta").expect("served").key;
        let (canonical, aliases) = catalog.group(zeta).expect("grouped");
        assert_eq!(
            (canonical.name.as_str(), aliases),
            ("alpha", vec!["zeta".to_string()])
        );
        let other = catalog.by_name("other").expect("served").key;
        assert_ne!(catalog.group_id(other), catalog.group_id(zeta));
    }
}
