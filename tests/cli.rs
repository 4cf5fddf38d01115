//! A user's session with the command line, over the fixture collections in `tests/fixtures/`
//! (one per format the engine reads), on the real DuckDB and tantivy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `orchestr8` with its own index directory, so tests never share state.
struct Session {
    index: tempfile::TempDir,
}

impl Session {
    fn new() -> Session {
        Session {
            index: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_orchestr8"))
            .args(args)
            .env("ORCHESTR8_INDEX_DIR", self.index.path())
            .env_remove("ORCHESTR8_DIRS")
            .output()
            .expect("orchestr8 runs")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    fn names(&self, args: &[&str]) -> Vec<String> {
        self.json(args)["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["name"].as_str().expect("name").to_string())
            .collect()
    }
}

fn dir(name: &str) -> String {
    fixture(name).display().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn claude_code_collection_loads_traps_and_groups_copies() {
    let s = Session::new();
    let cc = dir("claude-code");
    // The unquoted `: ` trap loads, with a warning that points at the line.
    let out = s.run(&["--dir", &cc, "validate"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("backlog-groomer.md:3: warning: frontmatter is not strict YAML"),
        "{text}"
    );
    let names = s.names(&[
        "--dir",
        &cc,
        "search",
        "refine user stories and groom the backlog",
    ]);
    assert_eq!(names[0], "backlog-groomer");

    // Identical copies under plugin-prefixed names are one entry with the others as aliases.
    let result = s.json(&[
        "--dir",
        &cc,
        "search",
        "design a backend service and its API",
    ]);
    let first = &result["results"][0];
    assert_eq!(first["name"], "api-scaffolding-backend-architect");
    assert_eq!(
        first["aliases"],
        serde_json::json!(["backend-development-backend-architect"])
    );
    let all = s.names(&["--dir", &cc, "search", "backend architect", "--limit", "10"]);
    assert_eq!(
        all.iter()
            .filter(|n| n.contains("backend-architect"))
            .count(),
        1
    );
    // README.md is not a definition; five agents are served.
    assert_eq!(
        s.names(&["--dir", &cc, "search", "", "--kind", "agent"])
            .len(),
        5
    );
}

#[test]
fn plain_language_and_typos_find_the_right_agent() {
    let s = Session::new();
    let cc = dir("claude-code");
    for (query, expected) in [
        (
            "elastisearch cluster keeps going red",
            "elasticsearch-operator",
        ),
        (
            "terrafrom plan wants to destroy our database",
            "terraform-engineer",
        ),
        (
            "someone to untangle our angualr forms validation",
            "angular-developer",
        ),
        (
            "split this monolith into services",
            "api-scaffolding-backend-architect",
        ),
    ] {
        let names = s.names(&["--dir", &cc, "search", query]);
        assert_eq!(
            names.first().map(String::as_str),
            Some(expected),
            "query {query:?} gave {names:?}"
        );
    }
    let plan = &s.json(&["--dir", &cc, "search", "terrafrom"])["plan"];
    assert_eq!(plan["corrections"][0]["word"], "terrafrom");
    assert_eq!(plan["corrections"][0]["replaced_by"][0], "terraform");

    // A word nothing in the library mentions, and no near spelling, is named, not ignored
    // in silence: the hits rest on the other words.
    let out = s.run(&["--dir", &cc, "search", "terraform modules in Pulumi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("no definition mentions: pulumi\n"),
        "{text}"
    );
    assert!(text.contains("terraform-engineer"), "{text}");
    let plan = &s.json(&["--dir", &cc, "search", "terraform modules in Pulumi"])["plan"];
    assert_eq!(plan["unknown"], serde_json::json!(["pulumi"]));

    // Why a hit matched is said in the request's own words, not in stems ("review").
    let v5 = dir("v5");
    let found = s.json(&[
        "--dir",
        &v5,
        "search",
        "someone reviewing our pull requests",
    ]);
    assert_eq!(found["results"][0]["name"], "code-reviewer");
    assert_eq!(
        found["results"][0]["matched"],
        serde_json::json!(["reviewing", "pull", "requests"])
    );
}

#[test]
fn v5_roles_fallbacks_and_filters() {
    let s = Session::new();
    let v5 = dir("v5");
    let roles = s.json(&["--dir", &v5, "roles"]);
    let review = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "code-review")
        .unwrap();
    assert_eq!(review["primary"], "code-reviewer");
    assert_eq!(
        review["fallbacks"][0],
        serde_json::json!({"name": "senior-engineer", "missing": true})
    );
    assert_eq!(review["fallbacks"][1]["name"], "fullstack-developer");

    // Resolving walks past the missing agent and stops at the loop back to code-reviewer.
    let resolved = s.json(&["--dir", &v5, "roles", "security-review"]);
    assert_eq!(
        resolved["agents"],
        serde_json::json!(["security-reviewer", "code-reviewer", "fullstack-developer"])
    );
    assert_eq!(resolved["skipped"], serde_json::json!(["senior-engineer"]));
    // A role nobody declares falls back to a search for its words, and says so.
    let searched = s.json(&["--dir", &v5, "roles", "frontend"]);
    assert_eq!(searched["searched"], true);
    assert_eq!(searched["agents"][0], "fullstack-developer");
    // A misspelt one also names the declared roles closest to it.
    let out = s.run(&["--dir", &v5, "roles", "code-reveiw"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(
            "no agent declares the role `code-reveiw` (closest roles: code-review); best matches"
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Filters alone list by name; with text they narrow the ranking.
    assert_eq!(
        s.names(&["--dir", &v5, "search", "", "--capability", "code-review"]),
        ["code-reviewer", "security-reviewer"]
    );
    assert_eq!(
        s.names(&["--dir", &v5, "search", "review", "--model", "opus"]),
        ["security-reviewer"]
    );
    assert_eq!(
        s.names(&[
            "--dir",
            &v5,
            "search",
            "security",
            "--capability",
            "CODE-Review"
        ]),
        ["security-reviewer"]
    );
    assert_eq!(
        s.names(&["--dir", &v5, "search", "", "--role", "CODE-REVIEW"]),
        ["code-reviewer"]
    );
    let result = s.json(&[
        "--dir",
        &v5,
        "search",
        "review pull requests",
        "--category",
        "quality",
    ]);
    assert_eq!(result["plan"]["strategy"], "filter-first");
    assert_eq!(result["results"][0]["name"], "code-reviewer");
}

#[test]
fn v8_fragments_use_id_tags_and_use_when() {
    let s = Session::new();
    let v8 = dir("v8");
    assert_eq!(
        s.names(&["--dir", &v8, "search", "my tokio executor is blocked"])[0],
        "rust-async-runtime"
    );
    assert_eq!(
        s.names(&["--dir", &v8, "search", "", "--capability", "pyproject"]),
        ["python-packaging"]
    );
    let shown = s.json(&["--dir", &v8, "show", "rust-async-runtime"]);
    assert_eq!(
        shown["definition"]["description"],
        "Debugging a deadlock or a blocked executor in async Rust"
    );
    assert_eq!(shown["definition"]["extra"]["estimatedTokens"], 800);
}

#[test]
fn skills_and_workflows_are_their_own_kinds() {
    let s = Session::new();
    let mixed = dir("mixed");
    assert_eq!(
        s.names(&["--dir", &mixed, "search", "", "--kind", "workflow"]),
        ["fix-bug", "release-notes"]
    );
    // A skill's references/ are not definitions of their own.
    assert_eq!(
        s.names(&["--dir", &mixed, "search", "", "--kind", "skill"]),
        ["git-bisect"]
    );
    assert_eq!(
        s.names(&["--dir", &mixed, "search", "which commit broke the build"])[0],
        "git-bisect"
    );
    let shown = s.json(&["--dir", &mixed, "show", "fix-bug"]);
    assert_eq!(shown["definition"]["argument_hint"], "[issue-number]");
    assert!(
        shown["text"]
            .as_str()
            .unwrap()
            .contains("Fix issue $ARGUMENTS")
    );
    // With no cache at all every load reads its mapping again, and answers the same.
    let uncached = s.json(&["--dir", &mixed, "--cache-mb", "0", "show", "fix-bug"]);
    assert_eq!(uncached["text"], shown["text"]);
    let out = s.run(&["--dir", &mixed, "--cache-mb", "lots", "show", "fix-bug"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_reports_broken_files_and_loads_the_rest() {
    let s = Session::new();
    let broken = dir("broken");
    let out = s.run(&["--dir", &broken, "validate"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for expected in [
        "bad-bytes.md:3: error: invalid UTF-8",
        "escape.md:2: error: name `../escape` contains a path separator",
        "unclosed.md:1: error: frontmatter opened by `---` on line 1 is never closed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(
        s.names(&["--dir", &broken, "search", "fine agent"]),
        ["good-one"]
    );
}

#[test]
fn an_unchanged_root_is_not_parsed_again() {
    let s = Session::new();
    let root = tempfile::tempdir().unwrap();
    for name in ["code-reviewer.md", "security-reviewer.md"] {
        std::fs::copy(
            fixture("v5/agents/quality").join(name),
            root.path().join(name),
        )
        .unwrap();
    }
    let root_arg = root.path().display().to_string();
    let index = |s: &Session| s.json(&["--dir", &root_arg, "index"])["stats"].clone();
    assert_eq!(index(&s)["parsed"], 2);
    assert_eq!(index(&s)["parsed"], 0);
    assert_eq!(
        s.names(&["--dir", &root_arg, "search", "pull request"])[0],
        "code-reviewer"
    );

    // Editing one file re-reads exactly that one, and why each hit matched follows the edit
    // there and stays right in the file not read again; deleting one removes it.
    let file = root.path().join("code-reviewer.md");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("readability", "latency");
    std::fs::write(&file, edited).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(index(&s)["parsed"], 1);
    let matched = |request: &str| {
        let found = s.json(&["--dir", &root_arg, "search", request]);
        let first = &found["results"][0];
        (first["name"].clone(), first["matched"].clone())
    };
    assert_eq!(
        matched("latency or readability of pull requests"),
        (
            "code-reviewer".into(),
            serde_json::json!(["latency", "pull", "requests"])
        )
    );
    assert_eq!(
        matched("secrets leaking into source control"),
        (
            "security-reviewer".into(),
            serde_json::json!(["secrets", "source", "control"])
        )
    );
    std::fs::remove_file(root.path().join("security-reviewer.md")).unwrap();
    let stats = index(&s);
    assert_eq!(
        (
            stats["parsed"].clone(),
            stats["removed"].clone(),
            stats["definitions"].clone()
        ),
        (0.into(), 1.into(), 1.into())
    );
}

#[test]
fn a_corrupt_index_is_rebuilt_with_a_warning() {
    let s = Session::new();
    let v5 = dir("v5");
    s.json(&["--dir", &v5, "index"]);
    std::fs::write(s.index.path().join("registry.duckdb"), b"not a database").unwrap();
    let out = s.run(&["--dir", &v5, "index", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rebuilding the persisted index"),
        "{}",
        stderr(&out)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["stats"]["parsed"], 3);
    assert!(
        stats["stats"]["rebuilt"]
            .as_str()
            .unwrap()
            .contains("unreadable registry")
    );
}

#[test]
fn missing_or_damaged_files_derived_from_the_registry_are_rebuilt() {
    let s = Session::new();
    let v5 = dir("v5");
    let text = ["--dir", &v5, "search", "review pull requests"];
    let filtered = ["--dir", &v5, "search", "--role", "code-review"];
    let before = (s.names(&text), s.names(&filtered));
    assert!(!before.1.is_empty());
    for (file, what) in [
        ("catalog.bin", "the catalog"),
        ("filters.duckdb", "the filter tables"),
    ] {
        let path = s.index.path().join(file);
        for damage in [None, Some(&b"damaged"[..])] {
            match damage {
                None => std::fs::remove_file(&path).unwrap(),
                Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            }
            let out = s.run(&["--dir", &v5, "index", "--json"]);
            assert!(out.status.success(), "{}", stderr(&out));
            let warning = format!("rebuilding {what} from the registry");
            assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
            let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(stats["stats"]["parsed"], 0, "the files are not read again");
            assert_eq!((s.names(&text), s.names(&filtered)), before, "{file}");
        }
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let s = Session::new();
    let v5 = dir("v5");
    let out = s.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = s.run(&["--dir", &v5, "search", "x", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));

    let out = s.run(&["--dir", &v5, "show", "code-reveiwer"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no definition named `code-reveiwer`; did you mean code-reviewer?"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["--dir", &v5, "show", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no name given"), "{}", stderr(&out));
    let out = s.run(&["--dir", &v5, "show", "../../etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("contains a path separator"));

    // A filter value no definition declares: which filter, and the values closest to it (all
    // of them when none is close and there are few).
    let out = s.run(&["--dir", &v5, "search", "--role", "security-reveiw", "audit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "no definition declares the role `security-reveiw`; did you mean security-review?"
        ),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["--dir", &v5, "search", "--model", "gpt-4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("no definition declares the model `gpt-4`; did you mean opus, sonnet?"),
        "{}",
        stderr(&out)
    );
    // Declared values that no definition combines are an empty answer, not a mistake.
    let out = s.run(&[
        "--dir",
        &v5,
        "search",
        "--role",
        "security-review",
        "--model",
        "sonnet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no results");

    let out = s.run(&["--dir", "/no/such/dir", "search", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("library root /no/such/dir does not exist"),
        "{}",
        stderr(&out)
    );
    let file = fixture("v5/agents/quality/code-reviewer.md")
        .display()
        .to_string();
    let out = s.run(&["--dir", &file, "search", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a file, not a directory"));
    let out = s.run(&["--dir", &v5, "search"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("give a query, a filter, or both"));

    // An index directory that cannot be made: the path and the system's reason, each once.
    let out = Command::new(env!("CARGO_BIN_EXE_orchestr8"))
        .args(["--dir", &v5, "search", "x"])
        .env("ORCHESTR8_INDEX_DIR", format!("{file}/index"))
        .output()
        .expect("orchestr8 runs");
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains(&format!("{file}/index")), "{message}");
    assert_eq!(message.matches("Not a directory").count(), 1, "{message}");
}

#[test]
fn eval_scores_a_judged_file_and_rejects_unknown_names() {
    let s = Session::new();
    let v5 = dir("v5");
    let judged = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        judged.path(),
        "{\"id\":\"q1\",\"query\":\"someone to review my pull request\",\"relevant\":{\"code-reviewer\":2},\"tags\":[\"task\"]}\n\
         {\"id\":\"q2\",\"query\":\"audit the login flow for injection and leaked secrets\",\"relevant\":{\"security-reviewer\":2,\"code-reviewer\":1}}\n",
    )
    .unwrap();
    let path = judged.path().display().to_string();
    let report = s.json(&["--dir", &v5, "eval", "--queries", &path]);
    assert_eq!(report["queries"], 2);
    assert_eq!(report["overall"]["R@1"], 1.0);
    assert_eq!(report["by_tag"]["task"]["R@1"], 1.0);
    assert_eq!(report["per_query"][1]["ranked"][0], "security-reviewer");

    std::fs::write(
        judged.path(),
        "{\"id\":\"q1\",\"query\":\"x\",\"relevant\":{\"code-reveiwer\":2}}\n",
    )
    .unwrap();
    let out = s.run(&["--dir", &v5, "eval", "--queries", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`code-reveiwer` is not in the library (closest: code-reviewer)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn two_processes_over_one_root_both_answer() {
    let s = Session::new();
    let v5 = dir("v5");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_orchestr8"))
            .args(["--dir", &v5, "search", "review pull requests", "--json"])
            .env("ORCHESTR8_INDEX_DIR", s.index.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("orchestr8 starts")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["results"][0]["name"], "code-reviewer");
    }
    // Whichever ran second found the index built and read nothing.
    assert_eq!(s.json(&["--dir", &v5, "index"])["stats"]["parsed"], 0);
}

#[test]
fn the_first_root_wins_a_name_and_validate_shows_both_paths() {
    let s = Session::new();
    let (mine, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let agent = |dir: &Path, words: &str| {
        std::fs::write(
            dir.join("code-reviewer.md"),
            format!("---\nname: code-reviewer\ndescription: {words}\n---\nbody\n"),
        )
        .unwrap();
    };
    agent(mine.path(), "My own reviewer, tuned to our house style.");
    agent(
        theirs.path(),
        "A generic reviewer from a shared collection.",
    );
    let (a, b) = (
        mine.path().display().to_string(),
        theirs.path().display().to_string(),
    );
    let shown = s.json(&["--dir", &a, "--dir", &b, "show", "code-reviewer"]);
    assert!(
        shown["definition"]["description"]
            .as_str()
            .unwrap()
            .starts_with("My own reviewer")
    );
    let out = s.run(&["--dir", &a, "--dir", &b, "validate"]);
    assert!(out.status.success(), "a clash is a warning, not an error");
    let text = stdout(&out);
    assert!(text.contains(&format!("{b}/code-reviewer.md:2: warning: name `code-reviewer` is also defined by {a}/code-reviewer.md, which is served")), "{text}");
    // --shipped adds the shipped library after the given roots: ours still wins.
    let shown = s.json(&["--dir", &a, "--shipped", "show", "code-reviewer"]);
    assert!(
        shown["definition"]["description"]
            .as_str()
            .unwrap()
            .starts_with("My own reviewer")
    );
    assert!(
        s.json(&["--dir", &a, "--shipped", "show", "kubernetes-expert"])["definition"]["name"]
            == "kubernetes-expert"
    );
}
