//! The committed `docs/` must be what the binary generates from its live
//! schema: regenerate into a temp dir with `terraform-provider-selfhost docs`
//! and compare file by file. The hand-written guides (`docs/guides/`, not
//! generated) must all be there, each with the registry's `page_title`
//! front matter.

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

/// The guides the registry shows (`docs/guides/<name>.md`), written by
/// hand; the generator leaves them alone.
const GUIDES: &[&str] = &[
    "getting-started",
    "air-gapped",
    "container-vps",
    "upgrading",
    "backups",
    "runbook",
];

/// What is wrong with the guides under `docs`: a guide missing, or one
/// without YAML front matter (`---` first and closed by `---`) holding a
/// non-empty `page_title: "..."`.
fn guide_problems(docs: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for name in GUIDES {
        let rel = format!("guides/{name}.md");
        let Ok(text) = std::fs::read_to_string(docs.join(&rel)) else {
            problems.push(format!("missing: docs/{rel}"));
            continue;
        };
        let front = text
            .strip_prefix("---\n")
            .and_then(|rest| rest.split_once("\n---\n"))
            .map(|(front, _)| front);
        let Some(front) = front else {
            problems.push(format!("docs/{rel}: no front matter (a `---` block first)"));
            continue;
        };
        let title = front.lines().find_map(|l| l.strip_prefix("page_title:")).map(str::trim);
        match title {
            Some(t) if t.len() > 2 && t.starts_with('"') && t.ends_with('"') => {}
            _ => problems.push(format!("docs/{rel}: its front matter has no `page_title: \"...\"`")),
        }
    }
    problems
}

#[test]
fn every_guide_is_there_with_its_page_title() {
    let problems = guide_problems(&Path::new(REPO).join("docs"));
    assert!(problems.is_empty(), "docs/guides:\n  {}", problems.join("\n  "));
}

/// The check itself: it notices a missing guide, a guide without front
/// matter and one whose front matter lacks `page_title`.
#[test]
fn the_guide_check_fails_on_a_missing_guide_or_title() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("guides");
    std::fs::create_dir_all(&dir).unwrap();
    let good = "---\npage_title: \"A guide\"\nsubcategory: \"\"\ndescription: |-\n  What it is.\n---\n\n# A guide\n";
    for name in GUIDES {
        std::fs::write(dir.join(format!("{name}.md")), good).unwrap();
    }
    assert_eq!(guide_problems(tmp.path()), Vec::<String>::new());

    std::fs::remove_file(dir.join("runbook.md")).unwrap();
    std::fs::write(dir.join("backups.md"), "# Backups\n\nNo front matter.\n").unwrap();
    std::fs::write(
        dir.join("upgrading.md"),
        "---\nsubcategory: \"\"\ndescription: |-\n  page_title: \"not a key\"\n---\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("air-gapped.md"),
        "# Air-gapped\n\n---\npage_title: \"after the text\"\n---\n",
    )
    .unwrap();
    assert_eq!(
        guide_problems(tmp.path()),
        vec![
            "docs/guides/air-gapped.md: no front matter (a `---` block first)".to_owned(),
            "docs/guides/upgrading.md: its front matter has no `page_title: \"...\"`".to_owned(),
            "docs/guides/backups.md: no front matter (a `---` block first)".to_owned(),
            "missing: docs/guides/runbook.md".to_owned(),
        ]
    );
}
