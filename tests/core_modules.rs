//! The core's top-level modules import each other without a circle: data flows down
//! (error, codes -> variance -> replicate -> design -> weighting, estimate -> bindings).
//! The edges are the `crate::<module>` paths in each module's code (tests excluded).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every .rs file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, module: Option<&str>, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        if path.is_dir() {
            sources(&path, Some(module.unwrap_or(&name)), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let owner = module.unwrap_or(&name).to_string();
            if owner != "lib" {
                out.push((owner, fs::read_to_string(&path).expect("a readable source")));
            }
        }
    }
}

/// The modules each module names as `crate::<module>` outside comments and tests.
fn imports(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (module, text) in files {
        for line in text.lines().take_while(|l| l.trim() != "#[cfg(test)]") {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) && &name != module {
                    graph.get_mut(module).expect("a module").insert(name);
                }
            }
        }
    }
    graph
}

/// A circle of imports (its modules in order, the first repeated at the end), if any.
fn circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in &graph[node] {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_core_modules_import_each_other_without_a_circle() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let graph = imports(&files);
    if let Some(found) = circle(&graph) {
        panic!(
            "the modules import each other in a circle: {}",
            found.join(" -> ")
        );
    }
    // The edges were read: the layers the variance engine rests on are there.
    assert!(graph["design"].contains("variance"));
    assert!(graph["weighting"].contains("design"));
    assert!(graph["estimate"].contains("design"));
}

#[test]
fn a_circle_is_found() {
    let files = [
        (
            "design".to_string(),
            "use crate::variance::Stage;".to_string(),
        ),
        (
            "variance".to_string(),
            "use crate::weighting::X;".to_string(),
        ),
        (
            "weighting".to_string(),
            "fn f(d: &crate::design::Design) {}".to_string(),
        ),
        ("error".to_string(), "// use crate::design;".to_string()),
    ];
    let found = circle(&imports(&files)).expect("a circle");
    assert_eq!(found, ["design", "variance", "weighting", "design"]);
}
