//! The layers as a check: every `crate::` path in `src/` is read against the README's code
//! map, whose table lists the modules from the bottom layer up. A module may use its own
//! layer's neighbours and the layers below, never one above, and no modules may import each
//! other in a circle. Every module of `src/` must be in the table, and the table may name
//! no module that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Each module of the code map, with the index of its row (0 is the bottom layer).
fn layer_table() -> BTreeMap<String, usize> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Code map\n")
        .nth(1)
        .expect("README.md has a Code map section");
    let section = section.split("\n## ").next().unwrap();
    let mut layers = BTreeMap::new();
    let rows = section.lines().filter(|l| l.starts_with("| `")).enumerate();
    for (rank, line) in rows {
        let first_cell = line.split('|').nth(1).unwrap();
        for name in first_cell.split('`').skip(1).step_by(2) {
            let name = name.trim_end_matches('/').to_string();
            assert!(
                layers.insert(name.clone(), rank).is_none(),
                "{name} is in two rows"
            );
        }
    }
    assert!(!layers.is_empty(), "the Code map has no table");
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to: `src/x.rs` and `src/x/...` are `x`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let top = rel.components().next().unwrap().as_os_str();
    top.to_str().unwrap().trim_end_matches(".rs").to_string()
}

/// Every module a file names through `crate::`: in `use` lines (groups included) and in
/// paths written inline. Comments are left out.
fn imports(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::{c, d}};`: the first name of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        names.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

/// Module → the other modules it imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&file);
        if module == "lib" || module == "main" {
            continue; // the crate root declares modules; main uses the library by name
        }
        let source = std::fs::read_to_string(&file).unwrap();
        let mut names = imports(&source);
        names.remove(&module);
        graph.entry(module).or_default().extend(names);
    }
    graph
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let layers = layer_table();
    let graph = import_graph();
    let mut faults = Vec::new();
    for module in graph.keys() {
        if !layers.contains_key(module) {
            faults.push(format!("{module} is not in the README's code map"));
        }
    }
    for name in layers.keys() {
        if name != "main" && !graph.contains_key(name) {
            faults.push(format!(
                "the code map names {name}, which src/ does not have"
            ));
        }
    }
    for (module, names) in &graph {
        let Some(&own) = layers.get(module) else {
            continue;
        };
        for name in names {
            match layers.get(name) {
                Some(&theirs) if theirs > own => faults.push(format!(
                    "{module} (row {own}) imports {name} (row {theirs}), a layer above it"
                )),
                Some(_) => {}
                None => faults.push(format!("{module} imports {name}, not in the code map")),
            }
        }
    }
    assert!(faults.is_empty(), "\n{}", faults.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = import_graph();
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut circle: Vec<String> = path[at..].iter().map(|m| m.to_string()).collect();
            circle.push(module.to_string());
            return Some(circle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(circle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" → "));
        }
    }
}

#[test]
fn use_groups_and_inline_paths_are_read() {
    let source = "use crate::{a, b::{c, d}, e::f};\n// crate::commented\nlet x = crate::g::h();";
    let names: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(names, ["a", "b", "e", "g"]);
}
