//! The served view of a library's definitions: which file serves each name when several
//! define it, and which definitions are identical copies of one another. Lookups by name, key,
//! role and copy group answer from compact entries; a definition's fields are decoded from the
//! catalog's blob (`encoded`) only when a face shows them.

mod encoded;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use rayon::prelude::*;

pub(crate) use encoded::CatalogFileError;
use encoded::{Blob, Header, StoredEntry};

use crate::diagnostic::Diagnostic;
use crate::library::{Definition, Kind};

/// Definitions encoded per parallel batch while building.
const ENCODE_CHUNK: usize = 4096;

/// Definitions grouped by name and by copy.
pub(crate) struct Catalog {
    /// Entries in precedence order and the lookup tables over them.
    header: Header,
    blob: Blob,
}

/// What lists and rosters need of a served definition, without decoding it.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub category: Option<&'a str>,
    pub role: Option<&'a str>,
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

/// Per definition (in precedence order), whether it is served and its copy group: the first
/// file of a name serves it, and served definitions whose descriptions have the same signature
/// form a group; a definition that lost its name joins the winner's group.
fn grouping(defs: &[Definition]) -> (Vec<bool>, Vec<u32>) {
    // Signatures are hashed on every core: at 100k definitions they were most of the
    // catalog's build on one.
    let signatures: Vec<u64> = defs
        .par_iter()
        .map_init(String::new, |signature, d| {
            copy_signature(&d.description, signature);
            hash_of(signature)
        })
        .collect();
    let mut winner: HashMap<&str, usize> = HashMap::new();
    let served: Vec<bool> = defs
        .iter()
        .enumerate()
        .map(|(i, d)| *winner.entry(&d.name).or_insert(i) == i)
        .collect();
    // Grouped by a hash of the signature; a bucket holding more than one definition is then
    // split by the signatures themselves, so a hash collision never merges two.
    let mut buckets: HashMap<(Kind, u64), Vec<usize>> = HashMap::new();
    let mut singles = Vec::new();
    for (i, d) in defs.iter().enumerate().filter(|(i, _)| served[*i]) {
        if d.description.trim().is_empty() {
            singles.push(vec![i]);
        } else {
            buckets.entry((d.kind, signatures[i])).or_default().push(i);
        }
    }
    let mut signature = String::new();
    let mut groups: Vec<Vec<usize>> = singles;
    for members in buckets.into_values() {
        if members.len() == 1 {
            groups.push(members);
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
        groups.extend(exact.into_iter().map(|(_, same)| same));
    }
    // Members were pushed in precedence order: numbering groups by their first member makes
    // group ids deterministic.
    groups.sort_unstable_by_key(|members| members[0]);
    let mut group_of = vec![u32::MAX; defs.len()];
    for (id, members) in groups.iter().enumerate() {
        for &m in members {
            group_of[m] = id as u32;
        }
    }
    for (i, d) in defs.iter().enumerate() {
        if !served[i] {
            group_of[i] = winner
                .get(d.name.as_str())
                .map_or(u32::MAX, |&w| group_of[w]);
        }
    }
    (served, group_of)
}

/// The number of `s` in `table`, added when it is new: categories and roles are few, and
/// shared by thousands of definitions.
fn intern<'a>(
    s: &'a Option<String>,
    ids: &mut HashMap<&'a str, u32>,
    table: &mut Vec<String>,
) -> Option<u32> {
    let s = s.as_deref()?;
    Some(*ids.entry(s).or_insert_with(|| {
        table.push(s.to_string());
        (table.len() - 1) as u32
    }))
}

/// Fills `header`'s lookup tables from its entries (`defs` beside them, in the same order).
fn tables(header: &mut Header, defs: &[Definition]) {
    let entries = &header.entries;
    let count = entries.len() as u32;
    let served: Vec<u32> = (0..count).filter(|&i| entries[i as usize].served).collect();
    let mut by_name = served.clone();
    by_name.par_sort_unstable_by(|&a, &b| defs[a as usize].name.cmp(&defs[b as usize].name));
    let mut by_key: Vec<u32> = (0..count).collect();
    by_key.par_sort_unstable_by_key(|&i| entries[i as usize].key);
    // Every served entry has a group, and every group a served member.
    let groups = served
        .iter()
        .map(|&i| entries[i as usize].group as usize + 1)
        .max()
        .unwrap_or(0);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); groups];
    let mut roles: HashMap<String, Vec<u32>> = HashMap::new();
    for &i in &served {
        let e = &entries[i as usize];
        members[e.group as usize].push(i);
        if let (Kind::Agent, Some(role)) = (e.kind, e.role) {
            let role = header.strings[role as usize].to_lowercase();
            roles.entry(role).or_default().push(i);
        }
    }
    header.group_starts = vec![0];
    for mut group in members {
        // Pushed in precedence order; by name, the first is the canonical one.
        group.sort_by(|&a, &b| defs[a as usize].name.cmp(&defs[b as usize].name));
        header.group_members.extend(group);
        header.group_starts.push(header.group_members.len() as u32);
    }
    header.roles = roles.into_iter().collect();
    header.roles.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    header.by_name = by_name;
    header.by_key = by_key;
}

impl Catalog {
    /// Builds the catalog of `defs`, encoding each definition into the blob.
    pub fn new(mut defs: Vec<Definition>) -> Catalog {
        sort_by_precedence(&mut defs);
        let (served, group_of) = grouping(&defs);
        let mut blob = Vec::new();
        let mut spans = Vec::with_capacity(defs.len());
        // Encoded on every core a chunk at a time, so only one chunk's pieces exist beside
        // the blob.
        for chunk in defs.chunks(ENCODE_CHUNK) {
            let pieces: Vec<(Vec<u8>, encoded::Span)> = chunk
                .par_iter()
                .map(|d| {
                    let mut bytes = Vec::new();
                    let span = encoded::encode(d, &mut bytes);
                    (bytes, span)
                })
                .collect();
            for (bytes, span) in pieces {
                spans.push(span.at(blob.len() as u64));
                blob.extend_from_slice(&bytes);
            }
        }
        let mut strings: HashMap<&str, u32> = HashMap::new();
        let mut header = Header::default();
        for (i, (d, span)) in defs.iter().zip(spans).enumerate() {
            let category = intern(&d.category, &mut strings, &mut header.strings);
            let role = intern(&d.role, &mut strings, &mut header.strings);
            header.names.push_str(&d.name);
            header.entries.push(StoredEntry {
                key: d.key,
                name_end: header.names.len() as u32,
                kind: d.kind,
                category,
                role,
                group: group_of[i],
                served: served[i],
                span,
            });
        }
        header.blob_length = blob.len() as u64;
        tables(&mut header, &defs);
        Catalog {
            header,
            blob: Blob::Memory(blob),
        }
    }

    /// Maps the catalog written by `write` at `path`.
    pub fn read(path: &Path) -> Result<Catalog, CatalogFileError> {
        let (header, blob) = encoded::read(path)?;
        Ok(Catalog { header, blob })
    }

    /// Persists the catalog at `path` (replacing any file there at once).
    pub fn write(&self, path: &Path) -> Result<(), CatalogFileError> {
        encoded::write(path, &self.header, self.blob.bytes())
    }

    fn entry(&self, i: u32) -> &StoredEntry {
        &self.header.entries[i as usize]
    }

    fn name(&self, i: u32) -> &str {
        let start = match i {
            0 => 0,
            _ => self.entry(i - 1).name_end as usize,
        };
        &self.header.names[start..self.entry(i).name_end as usize]
    }

    fn decode(&self, i: u32) -> Option<Definition> {
        encoded::decode(self.blob.bytes(), self.entry(i).span)
    }

    fn summary(&self, i: u32) -> Summary<'_> {
        let e = self.entry(i);
        let string = |s: Option<u32>| s.map(|s| self.header.strings[s as usize].as_str());
        Summary {
            name: self.name(i),
            kind: e.kind,
            category: string(e.category),
            role: string(e.role),
        }
    }

    /// The served entry named `name`.
    fn find_name(&self, name: &str) -> Option<u32> {
        let by_name = &self.header.by_name;
        let at = by_name.binary_search_by(|&i| self.name(i).cmp(name)).ok()?;
        Some(by_name[at])
    }

    /// The entry of `key`.
    fn find_key(&self, key: u64) -> Option<u32> {
        let by_key = &self.header.by_key;
        let at = by_key
            .binary_search_by(|&i| self.entry(i).key.cmp(&key))
            .ok()?;
        Some(by_key[at])
    }

    /// One warning per file whose name another file already serves.
    pub fn clashes(&self) -> Vec<Diagnostic> {
        let entries = &self.header.entries;
        (0..entries.len() as u32)
            .filter(|&i| !self.entry(i).served)
            .filter_map(|i| {
                let lost = self.decode(i)?;
                let winner = self.by_name(&lost.name)?;
                Some(Diagnostic::warning(
                    &lost.path,
                    2,
                    format!(
                        "name `{}` is also defined by {}, which is served; this file is ignored",
                        lost.name,
                        winner.path.display()
                    ),
                ))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.header.by_name.len()
    }

    fn served_indices(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.header.entries.len() as u32).filter(|&i| self.entry(i).served)
    }

    /// Served definitions, in precedence order.
    pub fn served(&self) -> impl Iterator<Item = Definition> + '_ {
        self.served_indices().filter_map(|i| self.decode(i))
    }

    /// Name, kind, category and role of every served definition, in precedence order.
    pub fn summaries(&self) -> impl Iterator<Item = Summary<'_>> {
        self.served_indices().map(|i| self.summary(i))
    }

    pub fn by_name(&self, name: &str) -> Option<Definition> {
        self.decode(self.find_name(name)?)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find_name(name).is_some()
    }

    /// The key of the definition served under `name`.
    pub fn key(&self, name: &str) -> Option<u64> {
        self.find_name(name).map(|i| self.entry(i).key)
    }

    pub fn by_key(&self, key: u64) -> Option<Definition> {
        self.decode(self.find_key(key)?)
    }

    /// Served agents declaring `role` (any case), in precedence order.
    /// Every declared role (lowercased, sorted) with the served agents declaring it, in
    /// precedence order.
    pub fn roles(&self) -> impl Iterator<Item = (&str, Vec<Summary<'_>>)> {
        self.header.roles.iter().map(|(role, members)| {
            let agents = members.iter().map(|&i| self.summary(i)).collect();
            (role.as_str(), agents)
        })
    }

    pub fn with_role(&self, role: &str) -> Vec<Summary<'_>> {
        let roles = &self.header.roles;
        let wanted = role.to_lowercase();
        match roles.binary_search_by(|(r, _)| r.as_str().cmp(&wanted)) {
            Ok(at) => roles[at].1.iter().map(|&i| self.summary(i)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The copy group of `key` when `key` is served (not a file that lost its name).
    pub fn served_group(&self, key: u64) -> Option<usize> {
        let e = self.entry(self.find_key(key)?);
        e.served.then_some(e.group as usize)
    }

    /// Every served name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.header.by_name.iter().map(|&i| self.name(i)).collect()
    }

    fn group_members(&self, group: usize) -> &[u32] {
        let starts = &self.header.group_starts;
        match (starts.get(group), starts.get(group + 1)) {
            (Some(&start), Some(&end)) => &self.header.group_members[start as usize..end as usize],
            _ => &[],
        }
    }

    fn members(&self, key: u64) -> Option<&[u32]> {
        let group = self.entry(self.find_key(key)?).group as usize;
        let members = self.group_members(group);
        (!members.is_empty()).then_some(members)
    }

    /// The names of the group of `key`, canonical first.
    pub fn group_names(&self, key: u64) -> Option<Vec<&str>> {
        let members = self.members(key)?;
        Some(members.iter().map(|&m| self.name(m)).collect())
    }

    /// Group `group` as (canonical definition, the other members' names).
    pub fn group(&self, group: usize) -> Option<(Definition, Vec<String>)> {
        let members = self.group_members(group);
        if members.is_empty() {
            return None;
        }
        let canonical = self.decode(members[0])?;
        let aliases = members[1..]
            .iter()
            .map(|&m| self.name(m).to_string())
            .collect();
        Some((canonical, aliases))
    }

    /// Stable identity of the copy group of `key`.
    pub fn group_id(&self, key: u64) -> Option<usize> {
        Some(self.entry(self.find_key(key)?).group as usize)
    }

    /// (served name, alias) for every group with copies, for the registry's alias table.
    pub fn alias_pairs(&self) -> Vec<(String, String)> {
        let groups = self.header.group_starts.len().saturating_sub(1);
        (0..groups)
            .map(|g| self.group_members(g))
            .filter(|g| g.len() > 1)
            .flat_map(|g| {
                let canonical = self.name(g[0]);
                g[1..]
                    .iter()
                    .map(move |&m| (canonical.to_string(), self.name(m).to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Catalog, precedence, sort_by_precedence};
    use crate::diagnostic::Diagnostic;
    use crate::library::Definition;
    use crate::library::formats::{Location, parse_file};

    fn catalog(defs: Vec<Definition>) -> (Catalog, Vec<Diagnostic>) {
        let catalog = Catalog::new(defs);
        let clashes = catalog.clashes();
        (catalog, clashes)
    }

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
        let (catalog, clashes) = catalog(vec![
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
        let (catalog, _) = catalog(vec![
            agent(0, "agents/zeta.md", "zeta", "Reviews  Pull requests."),
            agent(0, "agents/alpha.md", "alpha", "reviews pull\trequests."),
            agent(0, "agents/other.md", "other", "Something else."),
        ]);
        let zeta = catalog.by_name("zeta").expect("served").key;
        let group = catalog.group_id(zeta).expect("grouped");
        let (canonical, aliases) = catalog.group(group).expect("grouped");
        assert_eq!(
            (canonical.name.as_str(), aliases),
            ("alpha", vec!["zeta".to_string()])
        );
        let other = catalog.by_name("other").expect("served").key;
        assert_ne!(catalog.group_id(other), catalog.group_id(zeta));
    }

    #[test]
    fn a_written_catalog_reads_back_the_same_definitions_groups_and_roles() {
        let rich = |name: &str, description: &str| {
            let path = PathBuf::from(format!("/root0/agents/ops/{name}.md"));
            let text = format!(
                "---\nname: {name}\ndescription: {description}\nrole: Deployer\ncategory: ops\n\
                 capabilities: [kubernetes, helm]\nfallbacks: [helper]\nuse_when: [shipping — ünïcode]\n\
                 color: teal\npriority: 3\n---\nBody.\n"
            );
            let location = Location {
                root: 0,
                path: &path,
                relative: Path::new("agents/ops/x.md"),
            };
            parse_file(&location, text.as_bytes())
                .definition
                .expect("valid")
                .0
        };
        let defs = vec![
            rich("deployer", "Ships releases."),
            rich("shipper", "ships  RELEASES."),
            agent(0, "agents/helper.md", "helper", "Helps."),
            agent(1, "agents/helper.md", "helper", "A clashing copy."),
        ];
        let built = Catalog::new(defs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.bin");
        built.write(&path).unwrap();
        let read = Catalog::read(&path).unwrap();
        let all = |c: &Catalog| c.served().collect::<Vec<_>>();
        assert_eq!(all(&read), all(&built));
        assert_eq!(all(&read).len(), 3);
        let deployer = read.by_name("deployer").unwrap();
        assert_eq!(deployer.extra["color"], "teal");
        assert_eq!(deployer.use_when, ["shipping — ünïcode"]);
        assert_eq!(
            read.group_names(deployer.key),
            Some(vec!["deployer", "shipper"])
        );
        let role: Vec<&str> = read.with_role("deployer").iter().map(|d| d.name).collect();
        assert_eq!(role, ["deployer", "shipper"]);
        assert_eq!(read.clashes().len(), 1);
        assert_eq!(read.alias_pairs(), built.alias_pairs());
    }

    #[test]
    fn a_damaged_catalog_file_yields_an_error_or_no_definition_never_a_wrong_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.bin");
        Catalog::new(vec![agent(0, "agents/a.md", "alpha", "First agent.")])
            .write(&path)
            .unwrap();
        let good = std::fs::read(&path).unwrap();

        // The last byte belongs to the only definition's encoding.
        let mut bytes = good.clone();
        *bytes.last_mut().unwrap() ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let read = Catalog::read(&path).unwrap();
        assert!(read.contains("alpha"));
        assert_eq!(read.by_name("alpha"), None);

        // Anywhere in the header, or a cut file, and it is not read at all.
        for at in [0, 10, 30] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x55;
            std::fs::write(&path, &bytes).unwrap();
            assert!(Catalog::read(&path).is_err(), "byte {at}");
        }
        for cut in [20, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(Catalog::read(&path).is_err(), "cut at {cut}");
        }
    }
}
