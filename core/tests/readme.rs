//! The README's "Using the core" loop is the crate doc's example, which the
//! doc tests compile: this fails when the two drift apart.

/// The lines of the first fenced block after `heading` in `text`.
fn block_after<'a>(text: &'a str, heading: &str, fence: &str) -> Vec<&'a str> {
    let start = text.find(heading).expect("heading present");
    let rest = &text[start..];
    let open = rest.find(fence).expect("code block") + fence.len();
    let body = &rest[open..];
    let close = body.find("```").expect("closed block");
    body[..close].lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn the_readme_loop_is_the_doc_tested_one() {
    let readme = include_str!("../../README.md");
    let lib = include_str!("../src/lib.rs");
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let from_readme = block_after(readme, "## Using the core", "```rust\n");
    let from_doc = block_after(&doc, "# One shape at every layer", "```no_run\n");
    assert!(from_doc.len() > 30, "the doc example is the whole loop");
    assert_eq!(from_readme, from_doc);
}
