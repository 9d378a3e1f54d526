//! `aligndata taxonomy check|show` on the shipped example and on broken copies.

use crate::util::{TestContext, repo_root};

fn example() -> String {
    std::fs::read_to_string(repo_root().join("examples/self-doubt/taxonomy.yaml"))
        .expect("example taxonomy")
}

#[test]
fn shipped_taxonomy_checks_clean() {
    let ctx = TestContext::new();
    let file = repo_root().join("examples/self-doubt/taxonomy.yaml");
    let run = ctx.run(&["taxonomy", "check", file.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["dimensions"], 4);
    assert!(json["allowed_cells"].as_u64().unwrap() > 0);
    assert!(json["allowed_cells"].as_u64() <= json["cells"].as_u64());
}

/// Issue #2: a copy with a duplicate value id and an exclusion naming a missing value exits
/// non-zero naming both lines.
#[test]
fn duplicate_id_and_bad_exclusion_are_both_reported_with_lines() {
    let ctx = TestContext::new();
    let src = example();
    let lines: Vec<&str> = src.lines().collect();
    // Duplicate the first value id of the first dimension: rename the second value's id to it.
    let id_lines: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("- id:"))
        .map(|(i, _)| i)
        .collect();
    // id_lines[0] is the first dimension, [1] its first value, [2] its second value.
    let first_value = lines[id_lines[1]]
        .split("id:")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let indent = &lines[id_lines[2]][..lines[id_lines[2]].find('-').unwrap()];
    edited[id_lines[2]] = format!("{indent}- id: {first_value}");
    let dup_line = id_lines[2] + 1;
    // Append an exclusion naming a value that does not exist.
    let has_exclusions = edited.iter().any(|l| l.starts_with("exclusions:"));
    if !has_exclusions {
        edited.push("exclusions:".into());
    }
    edited.push(format!(
        "  - forbid: {{ {}: [no-such-value] }}",
        dimension_id(&src)
    ));
    let bad_line = edited.len();
    let file = ctx.write("bad.yaml", edited.join("\n").as_bytes());
    let run = ctx.run(&["taxonomy", "check", file.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&format!("bad.yaml:{dup_line}:")),
        "duplicate id line {dup_line} not named:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("bad.yaml:{bad_line}:")),
        "exclusion line {bad_line} not named:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("no-such-value"), "{}", run.stderr);
}

fn dimension_id(src: &str) -> String {
    let line = src
        .lines()
        .find(|l| l.trim_start().starts_with("- id:"))
        .unwrap();
    line.split("id:").nth(1).unwrap().trim().to_string()
}

#[test]
fn show_prints_dimensions_and_cells() {
    let ctx = TestContext::new();
    let file = repo_root().join("examples/self-doubt/taxonomy.yaml");
    let run = ctx.run(&["taxonomy", "show", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("cells"), "{}", run.stderr);
    let run = ctx.run(&["taxonomy", "show", file.to_str().unwrap(), "--json", "-q"]);
    assert_eq!(run.json()["dimensions"].as_array().unwrap().len(), 4);
}

#[test]
fn missing_taxonomy_file_is_one_clear_error() {
    let ctx = TestContext::new();
    let run = ctx.run(&["taxonomy", "check", "nope.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nope.yaml"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}
