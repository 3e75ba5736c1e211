//! What a newcomer reads first says the truth. The README opens with the install commands and
//! the quick start, and shows every line of the code it has (its code blocks compile as doc
//! tests, through `ReadmeDoctests` in lib.rs, so none may hide a line behind rustdoc's `# `,
//! which GitHub and crates.io would show). Every example says how to run it, and says it
//! right: the command in its header and in the README's examples table is
//! `cargo run --example NAME --features ...` with exactly the features its
//! `required-features` in Cargo.toml names, so a newcomer's copy-paste works in this
//! repository and in their own. Examples end with `support::exit_code`, which prints an
//! error's `Display` and causes instead of the `Debug` a `main` returning `Result` prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Each example's `required-features`, from `cargo metadata`.
fn required_features() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "authed")
        .unwrap();
    let mut examples = BTreeMap::new();
    for target in package["targets"].as_array().unwrap() {
        if !target["kind"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "example")
        {
            continue;
        }
        let features = target["required-features"]
            .as_array()
            .map(|f| f.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        examples.insert(target["name"].as_str().unwrap().to_owned(), features);
    }
    examples
}

/// The command that runs `name` with exactly `features`.
fn command(name: &str, features: &[String]) -> String {
    if features.is_empty() {
        format!("cargo run --example {name}")
    } else {
        format!(
            "cargo run --example {name} --features {}",
            features.join(",")
        )
    }
}

/// The `cargo run` commands of an example's `//!` header, from `cargo run` to the end of the
/// command (without a trailing `\`, program arguments after `--`, or a comment).
fn header_commands(source: &str) -> Vec<String> {
    source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.find("cargo run").map(|i| &l[i..]))
        .map(|c| {
            let c = c.split(" -- ").next().unwrap();
            let c = c.split(" #").next().unwrap();
            c.trim_end_matches('\\').trim().to_owned()
        })
        .collect()
}

/// The README's examples table: example name to the command in its row.
fn readme_table(readme: &str) -> BTreeMap<String, String> {
    let section = readme
        .split("\n## Examples\n")
        .nth(1)
        .expect("README.md has a `## Examples` section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let command = cells[2].trim_matches('`').to_owned();
        rows.insert(name, command);
    }
    rows
}

#[test]
fn every_example_header_and_readme_row_gives_the_exact_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = required_features();
    assert!(examples.len() >= 10, "{examples:?}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme_table(&readme);
    let mut problems = Vec::new();
    for (name, features) in &examples {
        let expected = command(name, features);
        let source = std::fs::read_to_string(root.join("examples").join(format!("{name}.rs")))
            .unwrap_or_else(|_| panic!("examples/{name}.rs"));
        let commands = header_commands(&source);
        if commands.is_empty() {
            problems.push(format!(
                "examples/{name}.rs: no `cargo run` line in its header"
            ));
        }
        for c in &commands {
            if *c != expected {
                problems.push(format!(
                    "examples/{name}.rs: header says `{c}`, Cargo.toml needs `{expected}`"
                ));
            }
        }
        match table.get(name) {
            None => problems.push(format!("README.md: no row for `{name}` under ## Examples")),
            Some(c) if *c != expected => problems.push(format!(
                "README.md: `{name}` row says `{c}`, Cargo.toml needs `{expected}`"
            )),
            Some(_) => {}
        }
        if source.contains("fn main() -> Result") {
            problems.push(format!(
                "examples/{name}.rs: main returns a Result, which prints errors with Debug; \
                 end with support::exit_code"
            ));
        }
    }
    for name in table.keys() {
        if !examples.contains_key(name) {
            problems.push(format!(
                "README.md: a row for `{name}`, which is no example"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_checker_reads_headers_and_tables() {
    let source = "//! Shows it.\n//!\n//! ```sh\n//! AUTHED_X=1 \\\n//!     cargo run --example a \
                  --features x,y -- --logout\n//! cargo run --example a --features x,y # again\n\
                  //! ```\n\nfn main() {}\n// cargo run --example not-in-the-header\n";
    assert_eq!(
        header_commands(source),
        [
            "cargo run --example a --features x,y",
            "cargo run --example a --features x,y"
        ]
    );
    let readme = "# x\n\n## Examples\n\n| Example | Run | Shows |\n|---|---|---|\n\
                  | `a` | `cargo run --example a --features x,y` | it |\n\n## Next\n\
                  | `b` | `cargo run --example b` | not in the table |\n";
    let table = readme_table(readme);
    assert_eq!(table.len(), 1);
    assert_eq!(table["a"], command("a", &["x".into(), "y".into()]));
}

/// The lines of the README's Rust code blocks, with their line numbers.
fn rust_lines(readme: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut in_rust = false;
    for (i, line) in readme.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            in_rust = !in_rust && (info.is_empty() || info.starts_with("rust"));
            continue;
        }
        if in_rust {
            lines.push((i + 1, line));
        }
    }
    lines
}

#[test]
fn the_readme_opens_with_the_install_and_hides_no_line_of_its_code() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let first_section = readme.find("\n## ").unwrap();
    assert!(
        readme[..first_section].contains("cargo add authed\n")
            && readme[..first_section].contains("cargo add tokio --features"),
        "the install commands come before the first section"
    );
    assert!(readme[first_section..].starts_with("\n## Quick start\n"));
    let code = rust_lines(&readme);
    assert!(code.len() > 50, "{}", code.len());
    let hidden: Vec<_> = code
        .iter()
        .filter(|(_, l)| l.trim() == "#" || l.trim_start().starts_with("# "))
        .collect();
    assert!(
        hidden.is_empty(),
        "lines rustdoc hides but the README shows: {hidden:?}"
    );
    assert!(
        !readme.contains("```rust,ignore"),
        "every Rust block compiles as a doc test"
    );
}

#[test]
fn hidden_lines_are_found() {
    let readme = "x\n```rust,no_run\n# fn main() {\nlet a = 1;\n```\n```sh\n# a comment\n```\n";
    assert_eq!(
        rust_lines(readme),
        [(3, "# fn main() {"), (4, "let a = 1;")]
    );
}
