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
use encoded::{Blob, BlobWriter, Header, StoredEntry};

use crate::diagnostic::Diagnostic;
use crate::library::{Definition, Kind};
use crate::text::routing_stems;

/// Definitions grouped by name and by copy.
pub(crate) struct Catalog {
    /// Entries in precedence order and the lookup tables over them.
    header: Header,
    blob: Blob,
}

/// A copy group as a hit lists it.
pub(crate) struct Group {
    pub canonical: Definition,
    /// The other members' names.
    pub aliases: Vec<String>,
    /// The stems of the canonical definition's routing text, sorted and separated by spaces
    /// (`text::routing_stems`), for `text::Wanted::present`.
    pub routing_stems: String,
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

/// What building the catalog keeps of a definition once it is encoded into the blob: what
/// ordering, grouping and the lookup tables need, and where the rest went.
struct Pending {
    precedence: (usize, usize, Vec<u8>),
    key: u64,
    name: String,
    kind: Kind,
    category: Option<u32>,
    role: Option<u32>,
    /// A hash of the copy signature; `None` for an empty description, which groups nothing.
    signature: Option<u64>,
    span: encoded::Span,
}

/// Builds a catalog from definitions handed over a chunk at a time. Each is encoded into the
/// blob as it arrives (straight into the catalog file when there is one) and only its
/// `Pending` part is kept, so neither the library's definitions nor their encodings are ever
/// held all at once: at 100k, reading them all back from DuckDB and building from the list took
/// a refresh's peak RSS from about 390 MB to 640 MB in its last second.
pub(crate) struct CatalogBuilder {
    pending: Vec<Pending>,
    blob: BlobWriter,
    strings: Vec<String>,
    ids: HashMap<String, u32>,
}

impl CatalogBuilder {
    fn with(blob: BlobWriter) -> CatalogBuilder {
        CatalogBuilder {
            pending: Vec::new(),
            blob,
            strings: Vec::new(),
            ids: HashMap::new(),
        }
    }

    /// A catalog kept in memory only.
    pub fn in_memory() -> CatalogBuilder {
        CatalogBuilder::with(BlobWriter::Memory(Vec::new()))
    }

    /// A catalog written to `path` as it is built (renamed into place by `finish`).
    pub fn to_file(path: &Path) -> Result<CatalogBuilder, CatalogFileError> {
        Ok(CatalogBuilder::with(BlobWriter::file(path)?))
    }

    /// Encodes `defs`, each with the stems of its routing text (on every core), and keeps what
    /// the catalog's entries need of them.
    pub fn add(&mut self, defs: Vec<Definition>) -> Result<(), CatalogFileError> {
        let pieces: Vec<(Definition, Vec<u8>, encoded::Span, Option<u64>)> = defs
            .into_par_iter()
            .map_init(
                || (String::new(), String::new()),
                |(signature, stems), d| {
                    let mut bytes = Vec::new();
                    routing_stems(&d, stems);
                    let span = encoded::encode(&d, stems, &mut bytes);
                    let signature = (!d.description.trim().is_empty()).then(|| {
                        copy_signature(&d.description, signature);
                        hash_of(signature)
                    });
                    (d, bytes, span, signature)
                },
            )
            .collect();
        for (d, bytes, span, signature) in pieces {
            let span = span.at(self.blob.len());
            self.blob.append(&bytes)?;
            let category = self.intern(d.category.as_deref());
            let role = self.intern(d.role.as_deref());
            self.pending.push(Pending {
                precedence: precedence(&d),
                key: d.key,
                name: d.name,
                kind: d.kind,
                category,
                role,
                signature,
                span,
            });
        }
        Ok(())
    }

    /// The number of `s` in the string table, added when it is new: categories and roles are
    /// few, and shared by thousands of definitions.
    fn intern(&mut self, s: Option<&str>) -> Option<u32> {
        let s = s?;
        if let Some(&id) = self.ids.get(s) {
            return Some(id);
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        Some(id)
    }

    /// Orders the definitions by precedence, groups copies, builds the lookup tables and, for
    /// a file, writes them after the blob.
    pub fn finish(self) -> Result<Catalog, CatalogFileError> {
        let CatalogBuilder {
            mut pending,
            blob,
            strings,
            ..
        } = self;
        let blob_length = blob.len();
        let (blob, file) = blob.seal()?;
        pending.par_sort_unstable_by(|a, b| a.precedence.cmp(&b.precedence));
        let (served, group_of) = grouping(&pending, &blob);
        let mut header = Header {
            strings,
            blob_length,
            ..Header::default()
        };
        for (i, p) in pending.iter().enumerate() {
            header.names.push_str(&p.name);
            header.entries.push(StoredEntry {
                key: p.key,
                name_end: header.names.len() as u32,
                kind: p.kind,
                category: p.category,
                role: p.role,
                group: group_of[i],
                served: served[i],
                span: p.span,
            });
        }
        tables(&mut header, &pending);
        if let Some(file) = file {
            file.finish(&header)?;
        }
        Ok(Catalog { header, blob })
    }
}

/// Per definition (in precedence order), whether it is served and its copy group: the first
/// file of a name serves it, and served definitions whose descriptions have the same signature
/// form a group; a definition that lost its name joins the winner's group.
fn grouping(pending: &[Pending], blob: &Blob) -> (Vec<bool>, Vec<u32>) {
    let mut winner: HashMap<&str, usize> = HashMap::new();
    let served: Vec<bool> = pending
        .iter()
        .enumerate()
        .map(|(i, p)| *winner.entry(&p.name).or_insert(i) == i)
        .collect();
    // Grouped by a hash of the signature; a bucket holding more than one definition is then
    // split by the signatures themselves (decoded again: copies are few), so a hash collision
    // never merges two.
    let mut buckets: HashMap<(Kind, u64), Vec<usize>> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, p) in pending.iter().enumerate().filter(|(i, _)| served[*i]) {
        match p.signature {
            None => groups.push(vec![i]),
            Some(hash) => buckets.entry((p.kind, hash)).or_default().push(i),
        }
    }
    let mut signature = String::new();
    for members in buckets.into_values() {
        if members.len() == 1 {
            groups.push(members);
            continue;
        }
        let mut exact: Vec<(String, Vec<usize>)> = Vec::new();
        for m in members {
            // A definition that does not decode (it was encoded a moment ago) stands alone.
            let Some((d, _)) = encoded::decode(blob, pending[m].span) else {
                groups.push(vec![m]);
                continue;
            };
            copy_signature(&d.description, &mut signature);
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
    let mut group_of = vec![u32::MAX; pending.len()];
    for (id, members) in groups.iter().enumerate() {
        for &m in members {
            group_of[m] = id as u32;
        }
    }
    for (i, p) in pending.iter().enumerate() {
        if !served[i] {
            group_of[i] = winner
                .get(p.name.as_str())
                .map_or(u32::MAX, |&w| group_of[w]);
        }
    }
    (served, group_of)
}

/// Fills `header`'s lookup tables from its entries (`pending` beside them, in the same order).
fn tables(header: &mut Header, pending: &[Pending]) {
    let entries = &header.entries;
    let count = entries.len() as u32;
    let served: Vec<u32> = (0..count).filter(|&i| entries[i as usize].served).collect();
    let mut by_name = served.clone();
    let name = |i: u32| pending[i as usize].name.as_str();
    by_name.par_sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
    let mut by_key: Vec<(u64, u32)> = (0..count).map(|i| (entries[i as usize].key, i)).collect();
    by_key.par_sort_unstable();
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
        group.sort_by(|&a, &b| name(a).cmp(name(b)));
        header.group_members.extend(group);
        header.group_starts.push(header.group_members.len() as u32);
    }
    header.roles = roles.into_iter().collect();
    header.roles.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    header.by_name = by_name;
    header.by_key = by_key;
}

impl Catalog {
    /// The catalog of `defs`, in memory.
    pub fn new(defs: Vec<Definition>) -> Catalog {
        let mut builder = CatalogBuilder::in_memory();
        // Only writing a file can fail.
        let built = builder.add(defs).and_then(|()| builder.finish());
        built.expect("an in-memory catalog cannot fail")
    }

    /// Maps the catalog file at `path` (written by `CatalogBuilder::to_file`).
    pub fn read(path: &Path) -> Result<Catalog, CatalogFileError> {
        let (header, blob) = encoded::read(path)?;
        Ok(Catalog { header, blob })
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
        encoded::decode(&self.blob, self.entry(i).span).map(|(d, _)| d)
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
        let at = by_key.binary_search_by_key(&key, |&(k, _)| k).ok()?;
        Some(by_key[at].1)
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

    /// Every declared role (lowercased, sorted) with the served agents declaring it, in
    /// precedence order.
    pub fn roles(&self) -> impl Iterator<Item = (&str, Vec<Summary<'_>>)> {
        self.header.roles.iter().map(|(role, members)| {
            let agents = members.iter().map(|&i| self.summary(i)).collect();
            (role.as_str(), agents)
        })
    }

    /// Served agents declaring `role` (any case), in precedence order.
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

    /// Group `group`, canonical definition first.
    pub fn group(&self, group: usize) -> Option<Group> {
        let (&first, others) = self.group_members(group).split_first()?;
        let (canonical, routing_stems) = encoded::decode(&self.blob, self.entry(first).span)?;
        let aliases = others.iter().map(|&m| self.name(m).to_string()).collect();
        Some(Group {
            canonical,
            aliases,
            routing_stems,
        })
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

    use super::{Catalog, CatalogBuilder};
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
    fn copies_differing_only_in_case_and_spacing_form_one_group_named_first_by_name() {
        let (catalog, _) = catalog(vec![
            agent(0, "agents/zeta.md", "zeta", "Reviews  Pull requests."),
            agent(0, "agents/alpha.md", "alpha", "reviews pull\trequests."),
            agent(0, "agents/other.md", "other", "Something else."),
        ]);
        let zeta = catalog.by_name("zeta").expect("served").key;
        let group = catalog.group_id(zeta).expect("grouped");
        let listed = catalog.group(group).expect("grouped");
        assert_eq!(
            (listed.canonical.name.as_str(), listed.aliases),
            ("alpha", vec!["zeta".to_string()])
        );
        assert_eq!(listed.routing_stems, "alpha pull request review");
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
        let all = |c: &Catalog| c.served().collect::<Vec<_>>();
        let built = Catalog::new(defs.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.bin");
        let mut builder = CatalogBuilder::to_file(&path).unwrap();
        // In two chunks, as the registry hands them over.
        let (first, second) = defs.split_at(2);
        builder.add(second.to_vec()).unwrap();
        builder.add(first.to_vec()).unwrap();
        let written = builder.finish().unwrap();
        let read = Catalog::read(&path).unwrap();
        assert_eq!(all(&written), all(&built));
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
        let mut builder = CatalogBuilder::to_file(&path).unwrap();
        builder
            .add(vec![agent(0, "agents/a.md", "alpha", "First agent.")])
            .unwrap();
        builder.finish().unwrap();
        let good = std::fs::read(&path).unwrap();

        // The first byte after the magic and version belongs to the only definition's encoding.
        let mut bytes = good.clone();
        bytes[12] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let read = Catalog::read(&path).unwrap();
        assert!(read.contains("alpha"));
        assert_eq!(read.by_name("alpha"), None);

        // The magic, the version, the header or the trailer, or a cut file, and it is not read
        // at all.
        let end = good.len();
        for at in [0, 9, end - 30, end - 20, end - 10, end - 1] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x55;
            std::fs::write(&path, &bytes).unwrap();
            assert!(Catalog::read(&path).is_err(), "byte {at}");
        }
        for cut in [0, 20, end - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(Catalog::read(&path).is_err(), "cut at {cut}");
        }
    }
}
