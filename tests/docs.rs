//! The committed `docs/` must be what the binary generates from its live
//! schema: regenerate into a temp dir with `terraform-provider-selfhost docs`
//! and compare file by file.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Generated pages under `root`, as paths relative to it.
fn pages(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if root.join("index.md").is_file() {
        out.insert("index.md".to_owned());
    }
    for dir in ["resources", "data-sources", "ephemeral-resources"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".md") {
                    out.insert(format!("{dir}/{name}"));
                }
            }
        }
    }
    out
}

#[test]
fn committed_docs_match_the_live_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-selfhost"))
        .arg("docs")
        .arg("--out")
        .arg(tmp.path())
        .arg("--examples")
        .arg(Path::new(REPO).join("examples"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`terraform-provider-selfhost docs` failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = pages(tmp.path());
    assert!(
        fresh.contains("index.md") && fresh.contains("resources/gateway_token.md"),
        "{fresh:?}"
    );
    let committed_root = Path::new(REPO).join("docs");
    let committed = pages(&committed_root);

    let mut problems = Vec::new();
    for p in fresh.difference(&committed) {
        problems.push(format!("missing from docs/: {p}"));
    }
    for p in committed.difference(&fresh) {
        problems.push(format!("stale in docs/ (no such type any more): {p}"));
    }
    for p in fresh.intersection(&committed) {
        let want = std::fs::read_to_string(tmp.path().join(p)).unwrap();
        let have = std::fs::read_to_string(committed_root.join(p)).unwrap();
        if want != have {
            let line = want
                .lines()
                .zip(have.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| want.lines().count().min(have.lines().count()) + 1, |i| i + 1);
            problems.push(format!("docs/{p} differs from the schema (first at line {line})"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/ is out of date; regenerate with `cargo run -- docs` and commit:\n  {}",
        problems.join("\n  ")
    );
}
