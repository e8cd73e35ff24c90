//! The house rules of the source tree (ARCHITECTURE.md, "House rules"), measured on every test
//! run so that they stay true: no file over 600 lines and no function over 80 lines outside
//! tests, and no SQL text outside `app/src/store/`. An exception is argued for in
//! ARCHITECTURE.md under the heading "Exceptions", by function name or file path in backticks;
//! anything not listed there fails here with its place and size.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every Rust source file of the product: the app, the server and the browser entry. Tests
/// (`server/tests`, files named `tests.rs`) are not held to the rules.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["app/src", "server/src", "src"] {
        walk(&root().join(dir), &mut out);
    }
    out.sort();
    out
}

/// The names and paths ARCHITECTURE.md argues for under "Exceptions" (backticked words of that
/// section, up to the next heading of the same or a higher level).
fn exceptions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut inside = None;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let level = line.chars().take_while(|c| *c == '#').count();
        if level > 0 {
            if line[level..].trim() == "Exceptions" {
                inside = Some(level);
                continue;
            }
            if inside.is_some_and(|l| level <= l) {
                inside = None;
            }
        }
        if inside.is_some() {
            names.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    names
}

/// Which lines of a file are test code: `#[cfg(test)]` items (a test module and its body).
fn test_lines(lines: &[&str]) -> Vec<bool> {
    let mut test = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let start = i;
            let indent = indent_of(lines[i]);
            let mut end = i + 1;
            // A one-line item (`mod tests;`, a `use`) or a block closed at the same indent.
            if lines.get(end).is_some_and(|l| !l.trim_end().ends_with('{')) {
                end += 1;
            } else {
                while end < lines.len() && !(indent_of(lines[end]) == indent && lines[end].trim() == "}") {
                    end += 1;
                }
                end += 1;
            }
            test[start..end.min(lines.len())].iter_mut().for_each(|t| *t = true);
            i = end;
        } else {
            i += 1;
        }
    }
    test
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The name of the function a line declares, if it does (rustfmt's layout: the signature starts
/// the line; the body's closing brace is alone at the same indent).
fn declared_fn(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.peek() {
        if w.starts_with("pub") || ["async", "const", "unsafe", "extern", "\"C\"", "default"].contains(w) {
            words.next();
        } else {
            break;
        }
    }
    if words.next()? != "fn" {
        return None;
    }
    let rest = words.next()?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|n| !n.is_empty())
}

/// Each function of a file outside its tests: (name, first line (1-based), lines).
fn functions(lines: &[&str], test: &[bool]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = declared_fn(line).filter(|_| !test[i]) else { continue };
        let indent = indent_of(line);
        let mut end = i;
        // The signature runs to the first line ending in `{` (the body) or `;` (no body).
        while end < lines.len() && !lines[end].trim_end().ends_with('{') && !lines[end].trim_end().ends_with(';') {
            if lines[end].trim_end().ends_with('}') && end == i {
                break; // `fn f() { one line }`
            }
            end += 1;
        }
        if end >= lines.len() || lines[end].trim_end().ends_with(';') || lines[end].trim_end().ends_with('}') {
            continue;
        }
        while end < lines.len() && !(indent_of(lines[end]) == indent && lines[end].trim_start().starts_with('}')) {
            end += 1;
        }
        out.push((name.to_string(), i + 1, end + 1 - i));
    }
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).expect("under the workspace").display().to_string()
}

#[test]
fn no_file_over_600_lines_and_no_function_over_80_outside_tests() {
    let allowed = exceptions();
    let mut broken = Vec::new();
    for path in sources() {
        let file = relative(&path);
        let text = std::fs::read_to_string(&path).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        let test = test_lines(&lines);
        let counted = test.iter().filter(|t| !**t).count();
        if counted > MAX_FILE_LINES && !allowed.contains(&file) {
            broken.push(format!("{file}: {counted} lines outside tests (at most {MAX_FILE_LINES})"));
        }
        for (name, at, len) in functions(&lines, &test) {
            if len > MAX_FN_LINES && !allowed.contains(&name) && !allowed.contains(&file) {
                broken.push(format!("{file}:{at}: fn {name} is {len} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    assert!(broken.is_empty(), "house rules broken (argue an exception in ARCHITECTURE.md):\n{}", broken.join("\n"));
}

#[test]
fn no_sql_outside_the_store() {
    let allowed = exceptions();
    let statement = ["\"SELECT ", "\"INSERT INTO", "\"UPDATE ", "\"DELETE FROM", "\"WITH ", "sqlx::query"];
    let mut broken = Vec::new();
    for path in sources() {
        let file = relative(&path);
        if file.starts_with("app/src/store/") || allowed.contains(&file) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        let test = test_lines(&lines);
        for (i, line) in lines.iter().enumerate() {
            if !test[i] && statement.iter().any(|s| line.contains(s)) {
                broken.push(format!("{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(broken.is_empty(), "SQL outside app/src/store:\n{}", broken.join("\n"));
}

#[test]
fn the_measures_find_what_they_measure() {
    // The rules are only as good as the scanner: a function's length and a test module's extent.
    let src = "pub async fn long(\n    a: i64,\n) -> i64 {\n    a\n}\nfn one() { 1 }\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\nfn after() {\n}\n";
    let lines: Vec<&str> = src.lines().collect();
    let test = test_lines(&lines);
    assert_eq!(test.iter().filter(|t| **t).count(), 5);
    assert_eq!(functions(&lines, &test), vec![("long".to_string(), 1, 5), ("after".to_string(), 12, 2)]);
    assert!(exceptions().iter().all(|e| !e.is_empty()));
}

/// A source file's module path in its crate (`app` `store::ledger`), or None for binaries.
fn module_of(file: &str) -> Option<(String, Vec<String>)> {
    let (krate, rest) = file
        .strip_prefix("app/src/")
        .map(|r| ("app", r))
        .or(file.strip_prefix("server/src/").map(|r| ("server", r)))?;
    let mut parts: Vec<String> = rest.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    Some((krate.to_string(), parts))
}

/// The module paths a file's code names (`crate::x::y`, `super::x`, `self::x`, and each item of
/// a `use crate::x::{a, b::c}` group), relative to its crate, outside its tests.
fn references(module: &[String], is_dir_module: bool, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let base = |kind: &str| -> Vec<String> {
        match kind {
            "crate" => Vec::new(),
            "self" if is_dir_module => module.to_vec(),
            // `super` in `a/b.rs` (module a::b) is `a`; in `a/b/mod.rs` (also a::b) it is `a` too.
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        }
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for kind in ["crate", "super", "self"] {
        let mut rest = code;
        while let Some(at) = rest.find(&format!("{kind}::")) {
            let before = rest[..at].chars().last();
            let tail = &rest[at + kind.len() + 2..];
            rest = tail;
            if before.is_some_and(ident) {
                continue;
            }
            let mut path = base(kind);
            let mut segs = tail;
            loop {
                let end = segs.find(|c: char| !ident(c)).unwrap_or(segs.len());
                if end > 0 {
                    path.push(segs[..end].to_string());
                }
                let group = if segs[end..].starts_with("::{") {
                    Some(end + 3)
                } else {
                    (end == 0 && segs.starts_with('{')).then_some(1)
                };
                if let Some(open) = group {
                    // A use group: each item is a path of its own below `path`.
                    let close = segs[open..].find('}').map_or(segs.len(), |c| open + c);
                    for item in segs[open..close].split(',') {
                        let item: Vec<String> = item
                            .split(" as ")
                            .next()
                            .unwrap_or("")
                            .split("::")
                            .map(|s| s.trim().trim_start_matches('{').to_string())
                            .filter(|s| !s.is_empty() && s != "self")
                            .collect();
                        out.push(path.iter().cloned().chain(item).collect());
                    }
                    break;
                }
                if segs[end..].starts_with("::") {
                    segs = &segs[end + 2..];
                } else {
                    break;
                }
            }
            out.push(path);
        }
    }
    out
}

/// A module: its crate and its path in it.
type Module = (String, Vec<String>);
/// Which modules each module's code names.
type Graph = std::collections::BTreeMap<Module, std::collections::BTreeSet<Module>>;

#[test]
fn no_import_circles_between_files() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut modules: BTreeMap<Module, (String, bool, String)> = BTreeMap::new();
    for path in sources() {
        let file = relative(&path);
        let Some(module) = module_of(&file) else { continue };
        let text = std::fs::read_to_string(&path).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        let test = test_lines(&lines);
        let code: String =
            lines.iter().zip(&test).filter(|(_, t)| !**t).map(|(l, _)| *l).collect::<Vec<_>>().join("\n");
        let dir = ["mod.rs", "lib.rs", "main.rs"].iter().any(|n| file.ends_with(n));
        modules.insert(module, (file, dir, code));
    }
    // A reference names the longest module path it starts with.
    let mut edges: Graph = BTreeMap::new();
    for ((krate, module), (_, dir, code)) in &modules {
        let targets = edges.entry((krate.clone(), module.clone())).or_default();
        for reference in references(module, *dir, code) {
            let target = (0..=reference.len())
                .rev()
                .map(|n| (krate.clone(), reference[..n].to_vec()))
                .find(|k| modules.contains_key(k));
            if let Some(target) = target.filter(|t| t.1 != *module && !t.1.is_empty()) {
                targets.insert(target);
            }
        }
    }
    // Every cycle found by a depth-first walk, named by its files.
    let mut circles = BTreeSet::new();
    fn walk<'a>(
        at: &'a Module,
        edges: &'a Graph,
        stack: &mut Vec<&'a Module>,
        done: &mut BTreeSet<&'a Module>,
        circles: &mut BTreeSet<Vec<Module>>,
    ) {
        if let Some(i) = stack.iter().position(|s| *s == at) {
            let mut circle: Vec<_> = stack[i..].iter().map(|s| (*s).clone()).collect();
            circle.sort();
            circles.insert(circle);
            return;
        }
        if !done.insert(at) {
            return;
        }
        stack.push(at);
        for next in edges.get(at).into_iter().flatten() {
            walk(next, edges, stack, done, circles);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        walk(start, &edges, &mut Vec::new(), &mut done, &mut circles);
    }
    let named: Vec<String> =
        circles.iter().map(|c| c.iter().map(|m| modules[m].0.clone()).collect::<Vec<_>>().join(" ↔ ")).collect();
    assert!(named.is_empty(), "files that import each other:\n{}", named.join("\n"));
}

#[test]
fn the_circle_finder_reads_paths_and_use_groups() {
    let module = vec!["web".to_string(), "admin".to_string()];
    let refs =
        references(&module, false, "use super::{error::AppError, contracts};\nlet x = crate::store::ledger::credits;");
    assert!(refs.contains(&vec!["web".into(), "error".into(), "AppError".into()]), "{refs:?}");
    assert!(refs.contains(&vec!["web".into(), "contracts".into()]), "{refs:?}");
    assert!(refs.contains(&vec!["store".into(), "ledger".into(), "credits".into()]), "{refs:?}");
}
