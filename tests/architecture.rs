//! The house rules that a compiler does not check: no import circle between the files of
//! `src/`, and no source file over 800 lines.
//!
//! The import graph is built from the source text, one node per file: an edge `a -> b` for
//! every `use` of, path to (`crate::`, `super::`, `self::`, a child module) or macro from
//! something `b` defines. A name reached through a re-export (`pub use` in a `mod.rs` or
//! `lib.rs`, or a private `use` a child reads through `super::`) counts for the file that
//! defines it, so a `mod.rs` that only declares and re-exports its children is not in a
//! circle with them. `#[cfg(test)]` items are left out: unit tests may reach anywhere.
//!
//! `cargo test --test architecture -- --nocapture layers` prints the floors.

#[path = "architecture/graph.rs"]
mod graph;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use graph::Graph;

/// No file in these folders may be longer.
const MAX_LINES: usize = 800;

#[test]
fn no_import_cycle_between_files_of_src() {
    let graph = Graph::from_files(&read_tree(Path::new("src")));
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "import cycles between files of src/ (lower layers must not import upper ones):\n{}",
        cycles
            .iter()
            .map(|c| format!("  {}", c.join(" -> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut long = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        for (path, text) in read_tree(Path::new(dir)) {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                long.push(format!("  {dir}/{path}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by idea):\n{}",
        long.join("\n")
    );
}

/// Prints the files of `src/` floor by floor (each file imports only files on lower floors),
/// then what each file imports.
#[test]
fn layers() {
    let graph = Graph::from_files(&read_tree(Path::new("src")));
    for (floor, files) in graph.floors().iter().enumerate() {
        println!("{floor:2}: {}", files.join(" "));
    }
    for (file, deps) in &graph.edges {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{file} -> {}", deps.join(" "));
    }
}

// The checker's own tests: it must be able to fail.

fn synthetic(files: &[(&str, &str)]) -> Graph {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect();
    Graph::from_files(&files)
}

#[test]
fn checker_finds_a_cycle_through_use_paths_and_macros() {
    let graph = synthetic(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::b::B; pub struct A;"),
        ("b.rs", "pub struct B; fn f() { crate::c::g(); }"),
        ("c.rs", "pub fn g() { make_a!(); }"),
        ("m.rs", "macro_rules! make_a { () => { crate::a::A }; }"),
    ]);
    assert_eq!(
        graph.cycles(),
        vec![vec!["a.rs", "b.rs", "c.rs", "m.rs", "a.rs"]],
        "{:?}",
        graph.edges
    );
}

#[test]
fn checker_resolves_re_exports_to_the_defining_file() {
    let graph = synthetic(&[
        ("lib.rs", "mod s; pub use s::{Source, Grant as G};"),
        ("s/mod.rs", "mod t; mod g; pub use t::Source; pub use g::*;"),
        ("s/t.rs", "pub trait Source {}"),
        (
            "s/g.rs",
            "use super::Source; pub struct Grant; impl Source for Grant {}",
        ),
        ("user.rs", "use crate::{G, Source}; fn f(_: &dyn Source) {}"),
    ]);
    assert!(graph.cycles().is_empty(), "{:?}", graph.edges);
    let edges = |f: &str| graph.edges.get(f).cloned().unwrap_or_default();
    assert_eq!(edges("s/g.rs"), BTreeSet::from(["s/t.rs".to_owned()]));
    assert_eq!(
        edges("user.rs"),
        BTreeSet::from(["s/g.rs".to_owned(), "s/t.rs".to_owned()])
    );
}

#[test]
fn checker_skips_tests_comments_strings_and_sees_super_in_inline_modules() {
    let graph = synthetic(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "/// [`B`](crate::b::B)\n// crate::b::B\npub struct A; \
             const S: &str = \"crate::b::B\"; const R: &str = r#\"crate::b::B\"#; \
             const C: char = '\"'; fn l<'x>(_: &'x str) {} \
             #[cfg(test)] mod tests { use crate::b::B; }",
        ),
        (
            "b.rs",
            "pub struct B; mod inner { use super::super::a::A; }",
        ),
    ]);
    assert!(graph.cycles().is_empty(), "{:?}", graph.edges);
    assert_eq!(
        graph.edges.get("b.rs"),
        Some(&BTreeSet::from(["a.rs".to_owned()]))
    );
}

// Reading files.

/// Every `.rs` file under `root`, by path relative to it (with `/`).
fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                let text = fs::read_to_string(&path).expect("a readable source file");
                out.insert(rel, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}
