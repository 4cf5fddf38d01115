//! Hostile input: files that other people wrote, at their worst. Every case must load the rest
//! of the library, report the bad file with a clear message, and never panic or hang.

use std::path::{Path, PathBuf};

use orchestr8::{Config, Diagnostic, Engine, Filters, Query, Severity};

fn open(roots: &[&Path]) -> Engine {
    let config = Config::new(roots.iter().map(|r| r.to_path_buf()).collect());
    Engine::open(&config).expect("a hostile library still opens")
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn agent(name: &str) -> String {
    format!(
        "---\nname: {name}\ndescription: A well-formed agent called {name}.\n---\nBody of {name}.\n"
    )
}

fn about<'a>(engine: &'a Engine, file: &str) -> Vec<&'a Diagnostic> {
    engine
        .diagnostics()
        .iter()
        .filter(|d| d.path.ends_with(file))
        .collect()
}

fn names(engine: &Engine) -> Vec<&str> {
    engine.names()
}

#[test]
fn encodings_and_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bom.md",
        format!("\u{feff}{}", agent("with-bom")),
    );
    write(
        dir.path(),
        "crlf.md",
        agent("with-crlf").replace('\n', "\r\n"),
    );
    write(
        dir.path(),
        "tabs.md",
        "---\nname:\twith-tabs\ndescription:\tTabs after colons.\n---\n",
    );
    let latin1 = write(
        dir.path(),
        "latin1.md",
        b"---\nname: latin1\ndescription: caf\xe9\n---\n",
    );
    write(
        dir.path(),
        "binary.md",
        [0x7f, b'E', b'L', b'F', 0, 0, 1, 2, 3],
    );
    let engine = open(&[dir.path()]);
    assert!(names(&engine).contains(&"with-bom"));
    assert!(names(&engine).contains(&"with-crlf"));
    assert_eq!(about(&engine, "latin1.md")[0].line, 3);
    assert!(
        about(&engine, "latin1.md")[0]
            .message
            .contains("invalid UTF-8")
    );
    assert!(
        about(&engine, "binary.md")[0]
            .message
            .contains("binary file")
    );
    assert!(latin1.exists());
}

#[test]
fn broken_frontmatter_shapes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "unclosed.md",
        "---\nname: unclosed\ndescription: no end\n",
    );
    write(dir.path(), "empty.md", "---\n---\nJust a body.\n");
    write(
        dir.path(),
        "list.md",
        "---\n- name: a\n- description: b\n---\n",
    );
    write(dir.path(), "string.md", "---\njust a sentence\n---\n");
    let mut nested = String::from("---\nname: deep\ndescription: deep nesting\nx: ");
    nested.push_str(&"[".repeat(10_000));
    nested.push_str(&"]".repeat(10_000));
    nested.push_str("\n---\n");
    write(dir.path(), "nested.md", nested);
    let mut bomb = String::from(
        "---\nname: bomb\ndescription: billion laughs\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut previous = 'a';
    for c in 'b'..='i' {
        let refs = vec![format!("*{previous}"); 9].join(",");
        bomb.push_str(&format!("{c}: &{c} [{refs}]\n"));
        previous = c;
    }
    bomb.push_str("---\n");
    write(dir.path(), "bomb.md", bomb);
    let mut wide = String::from("---\nname: wide\ndescription: ten thousand keys\n");
    for i in 0..10_000 {
        wide.push_str(&format!("key{i}: value {i}\n"));
    }
    wide.push_str("---\n");
    write(dir.path(), "wide.md", wide);
    write(dir.path(), "fine.md", agent("fine"));

    let engine = open(&[dir.path()]);
    assert!(
        about(&engine, "unclosed.md")[0]
            .message
            .contains("never closed")
    );
    // Markdown with an empty or non-mapping block is not a definition: skipped quietly.
    assert!(about(&engine, "empty.md").is_empty() && about(&engine, "list.md").is_empty());
    assert!(about(&engine, "string.md").is_empty());
    // Deep nesting and alias bombs are refused by the YAML parser's limits, or read leniently
    // as plain text: either way bounded, never expanded.
    for file in ["nested.md", "bomb.md"] {
        for d in about(&engine, file) {
            assert!(
                d.message.contains("YAML")
                    || d.message.contains("recursion")
                    || d.message.contains("repetition"),
                "{d}"
            );
        }
    }
    let wide = engine.get("wide").expect("10,000 keys load");
    assert_eq!(wide.extra.len(), 10_000);
    assert!(names(&engine).contains(&"fine"));
}

#[test]
fn a_huge_file_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = agent("huge").into_bytes();
    big.resize(50 * 1024 * 1024, b'a');
    write(dir.path(), "huge.md", big);
    write(dir.path(), "fine.md", agent("fine"));
    let engine = open(&[dir.path()]);
    let d = about(&engine, "huge.md");
    assert_eq!(d[0].severity, Severity::Error);
    assert!(
        d[0].message
            .contains("52428800 bytes, over the 4 MiB limit"),
        "{}",
        d[0]
    );
    assert_eq!(names(&engine), ["fine"]);
}

#[cfg(unix)]
#[test]
fn symlinks_never_leave_the_root() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.md", agent("secret"));
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "fine.md", agent("fine"));
    symlink(
        outside.path().join("secret.md"),
        root.path().join("escape.md"),
    )
    .unwrap();
    symlink(outside.path(), root.path().join("escape-dir")).unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    symlink(root.path(), root.path().join("sub").join("loop")).unwrap();
    symlink(root.path().join("fine.md"), root.path().join("inside.md")).unwrap();

    let engine = open(&[root.path()]);
    assert!(
        !names(&engine).contains(&"secret"),
        "a symlink led outside the root"
    );
    assert!(
        about(&engine, "escape.md")[0]
            .message
            .contains("outside the library root")
    );
    assert!(
        about(&engine, "escape-dir")[0]
            .message
            .contains("outside the library root")
    );
    // The loop is reported, not followed forever; a link inside the root is fine.
    assert!(
        engine
            .diagnostics()
            .iter()
            .any(|d| d.message.contains("cannot walk")),
        "{:?}",
        engine.diagnostics()
    );
    assert!(names(&engine).contains(&"fine"));
}

#[test]
fn names_that_could_be_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.md",
        "---\nname: ../../etc/passwd\ndescription: escape\n---\n",
    );
    write(
        dir.path(),
        "b.md",
        "---\nname: a\\b\ndescription: backslash\n---\n",
    );
    write(
        dir.path(),
        "c.md",
        "---\nname: x..y\ndescription: dots\n---\n",
    );
    write(dir.path(), "fine.md", agent("fine"));
    let engine = open(&[dir.path()]);
    assert_eq!(names(&engine), ["fine"]);
    assert!(about(&engine, "a.md")[0].message.contains("path separator"));
    assert!(about(&engine, "b.md")[0].message.contains("path separator"));
    assert!(about(&engine, "c.md")[0].message.contains("`..`"));
    for bad in ["../../etc/passwd", "/etc/passwd", "a/b", ".."] {
        assert!(engine.load(bad).is_err(), "{bad} was served");
    }
}

#[test]
fn duplicate_names_across_roots_report_both_paths() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(
        first.path(),
        "dup.md",
        "---\nname: dup\ndescription: The first one.\n---\n",
    );
    write(
        second.path(),
        "dup.md",
        "---\nname: dup\ndescription: The second one.\n---\n",
    );
    let engine = open(&[first.path(), second.path()]);
    assert_eq!(engine.get("dup").unwrap().description, "The first one.");
    let d = about(&engine, "dup.md");
    assert_eq!(d.len(), 1);
    assert!(
        d[0].path.starts_with(second.path())
            && d[0].message.contains(&first.path().display().to_string())
    );
}

#[test]
fn absurd_queries_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fine.md", agent("fine"));
    let engine = open(&[dir.path()]);
    let many_words: String = (0..1_500).map(|i| format!("zq{i}x ")).collect();
    for text in [
        "",
        "   ",
        "the of and a to",
        "🦀🦀🦀",
        &"x".repeat(9_000),
        &many_words,
        "\0\u{1}\u{2}",
        "-- OR 1=1; DROP TABLE definitions",
    ] {
        let filters = Filters {
            role: Some("'; DROP TABLE definitions; --".into()),
            ..Default::default()
        };
        for filters in [Filters::default(), filters] {
            let query = Query {
                text: text.to_string(),
                filters,
                limit: 10,
            };
            let _ = engine.search(&query);
        }
    }
    assert_eq!(
        engine
            .search(&Query {
                text: "well-formed agent".into(),
                filters: Filters::default(),
                limit: 3
            })
            .unwrap()
            .results[0]
            .name,
        "fine"
    );
    let error = engine
        .search(&Query {
            text: "x ".repeat(10_000),
            filters: Filters::default(),
            limit: 3,
        })
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the query is 20000 characters long"),
        "{error}"
    );
}
