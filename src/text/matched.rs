//! Which of a request's stems a hit's routing text holds (`Hit::matched`): what tells a reader
//! why a definition was listed. The routing text (name, description, capabilities, tags,
//! use-when) of every definition is stemmed once, as the catalog is built (`routing_stems`), and
//! kept there sorted; listing a hit only merges its request's stems with that list.
//!
//! Stemming each hit's text while listing it cost about 90 us of a 100k sentence and 200 us of
//! a brief (some 240 words of a brief's hits, 0.7 us each on the caches the ranking had just
//! filled with postings), even with every word that could not stem to a wanted stem skipped
//! unstemmed. The lists cost a 100k catalog 38 MB more on disk (81 -> 120 MB, of an 890 MB
//! index) and its rebuild, which every refresh that changes something does whole, about 0.7 s
//! (benches/README.md has the figures).

use std::cell::RefCell;

use tantivy::tokenizer::TextAnalyzer;

use crate::library::Definition;

thread_local! {
    /// Each thread's analyzer for `routing_stems`, kept for the thread's life so that its
    /// remembered stems (`stem_memo`) serve every catalog build the thread takes part in, and
    /// its list of stems.
    static STEMMER: RefCell<(TextAnalyzer, Vec<String>)> =
        RefCell::new((super::indexing_analyzer(), Vec::new()));
}

/// Writes into `out` the distinct stems of `d`'s routing text, sorted, separated by single
/// spaces (the analyzer cuts words at every character that is not alphanumeric, so no stem
/// holds one): the list the catalog keeps for `Wanted::present`, made by the analyzer that
/// indexes the text.
pub(crate) fn routing_stems(d: &Definition, out: &mut String) {
    STEMMER.with_borrow_mut(|(analyzer, stems)| {
        stems.clear();
        let routing = [&d.name, &d.description]
            .into_iter()
            .chain(&d.capabilities)
            .chain(&d.tags)
            .chain(&d.use_when);
        for text in routing {
            let mut stream = analyzer.token_stream(text);
            while stream.advance() {
                stems.push(stream.token().text.clone());
            }
        }
        stems.sort_unstable();
        stems.dedup();
        out.clear();
        for stem in stems.iter() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(stem);
        }
    });
}

/// A request's stems, prepared once to be found in the routing stems of each hit it lists.
pub(crate) struct Wanted {
    /// Each stem with its place in the request's list, sorted by stem. A correction may repeat
    /// a stem the request also holds; both places are then found.
    sorted: Vec<(String, usize)>,
}

impl Wanted {
    /// `stems` must come from the analyzer of requests, which a test holds to the one
    /// `routing_stems` indexes with (a request's, which
    /// a test holds to the same stems).
    pub fn new(stems: Vec<String>) -> Wanted {
        let mut sorted: Vec<(String, usize)> = stems.into_iter().zip(0..).collect();
        sorted.sort_unstable();
        Wanted { sorted }
    }

    /// The places of the wanted stems that `routing_stems` (as `routing_stems` wrote
    /// them) holds, ascending.
    pub fn present(&self, routing_stems: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut wanted = self.sorted.iter().peekable();
        for stem in routing_stems.split(' ') {
            while wanted.next_if(|(w, _)| w.as_str() < stem).is_some() {}
            while let Some((_, place)) = wanted.next_if(|(w, _)| w == stem) {
                found.push(*place);
            }
            if wanted.peek().is_none() {
                break;
            }
        }
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{TextIndex, tokens};
    use super::*;
    use crate::library::formats::{Location, parse_file};

    fn definition(frontmatter: &str) -> Definition {
        let location = Location {
            root: 0,
            path: Path::new("/root/agents/a.md"),
            relative: Path::new("agents/a.md"),
        };
        let text = format!("---\n{frontmatter}\n---\nBody text that is not routing text.\n");
        let parsed = parse_file(&location, text.as_bytes());
        parsed.definition.expect("a valid agent").0
    }

    #[test]
    fn a_hit_holds_exactly_the_stems_its_routing_text_gives_a_request() {
        let text = TextIndex::open(None).unwrap();
        let d = definition(
            "name: kubernetes-operator\n\
             description: \"Dying skies, running generously: Ugly early-only builds; the \
             favourite colours of Zürich\"\n\
             capabilities: [Helm charts]\ntags: [GitOps]\nuse_when: [3 pull-requests]",
        );
        let mut stems = String::new();
        routing_stems(&d, &mut stems);
        let listed: Vec<&str> = stems.split(' ').collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "{stems}");
        assert!(!listed.contains(&"text"), "the body is not routing text");

        // A request stemmed as every request is: British spellings and inflections meet the
        // definition's, a word it lacks is not found, and a stem twice wanted (a correction
        // may repeat one) is found at both places.
        let request = "dies in the sky, favourite colors of operators, ship helm";
        let mut wanted = tokens(&text.analyzer, request);
        wanted.push("helm".to_string());
        let found: Vec<&str> = Wanted::new(wanted.clone())
            .present(&stems)
            .into_iter()
            .map(|i| wanted[i].as_str())
            .collect();
        assert_eq!(
            found,
            ["die", "sky", "favorit", "color", "oper", "helm", "helm"]
        );

        // Every stem of the routing text, found by stemming it whole.
        let routing = [&d.name, &d.description, &d.capabilities[0], &d.tags[0]];
        let mut all: Vec<String> = routing
            .iter()
            .flat_map(|t| tokens(&text.analyzer, t))
            .collect();
        all.extend(tokens(&text.analyzer, &d.use_when[0]));
        all.sort_unstable();
        all.dedup();
        assert_eq!(listed, all.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(Wanted::new(Vec::new()).present(&stems), Vec::<usize>::new());
        assert_eq!(
            Wanted::new(vec!["absent".into()]).present(""),
            Vec::<usize>::new()
        );
    }
}
