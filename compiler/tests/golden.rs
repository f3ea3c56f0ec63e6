//! Golden tests of the A64 frontend: A64 words → printed IR.
//!
//! Each `tests/golden/NAME.txt` holds a header, a `----` line, then the expected IR:
//!
//! ```text
//! # free comment lines
//! at 0x400000
//! d2800140   ; mov x0, #10   (words in hex, `;` starts a comment)
//! ----
//! block 0x400000 (...):
//! ```
//!
//! The words are placed at consecutive addresses from `at`; blocks are translated from the
//! first address, then from the end of each block, until every word is covered. Each block is
//! checked with `ir::verify` and the printed blocks are compared with the expected text.
//! `VMC_BLESS=1 cargo test -p vmc-compiler --test golden` rewrites the expected part.

use std::path::{Path, PathBuf};

use vmc_compiler::a64::translate_block;
use vmc_compiler::ir::verify;

const SEPARATOR: &str = "----";

struct Golden {
    header: String,
    at: u64,
    words: Vec<u32>,
    expected: String,
}

fn parse(path: &Path) -> Result<Golden, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (header, expected) = match text.split_once(&format!("\n{SEPARATOR}\n")) {
        Some((h, e)) => (h.to_string(), e.to_string()),
        None => (
            text.trim_end_matches(SEPARATOR).trim_end().to_string(),
            String::new(),
        ),
    };
    let mut at = None;
    let mut words = Vec::new();
    for (n, line) in header.lines().enumerate() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(a) = line.strip_prefix("at ") {
            let a = a.trim().trim_start_matches("0x");
            at = Some(u64::from_str_radix(a, 16).map_err(|e| format!("line {}: {e}", n + 1))?);
            continue;
        }
        for tok in line.split_whitespace() {
            let w = u32::from_str_radix(tok.trim_start_matches("0x"), 16)
                .map_err(|e| format!("line {}: bad word {tok:?}: {e}", n + 1))?;
            words.push(w);
        }
    }
    let at = at.ok_or("missing `at 0x...` line")?;
    if words.is_empty() {
        return Err("no instruction words".into());
    }
    Ok(Golden {
        header,
        at,
        words,
        expected,
    })
}

/// Translates every word of the file, block after block; returns the printed IR.
fn render(g: &Golden) -> Result<String, String> {
    let end = g.at + 4 * g.words.len() as u64;
    let words = &g.words;
    let mut fetch = |a: u64| (a >= g.at && a < end).then(|| words[((a - g.at) / 4) as usize]);
    let mut out = String::new();
    let mut pc = g.at;
    while pc < end {
        let block = translate_block(&mut fetch, pc);
        verify(&block).map_err(|e| format!("ir::verify failed on block {pc:#x}: {e}\n{block}"))?;
        out.push_str(&format!("{block}"));
        pc += 4 * block.guest_insns.max(1) as u64;
    }
    Ok(out)
}

/// A minimal line diff (longest common subsequence), unified style.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::from("--- expected\n+++ actual\n");
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_ir() {
    let bless = std::env::var_os("VMC_BLESS").is_some_and(|v| v != "0");
    let files = golden_files();
    assert!(!files.is_empty(), "no golden files");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let g = match parse(path) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let actual = match render(&g) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if actual == g.expected {
            continue;
        }
        if bless {
            let text = format!("{}\n{SEPARATOR}\n{actual}", g.header.trim_end());
            std::fs::write(path, text).unwrap();
            eprintln!("blessed {name}");
        } else {
            failures.push(format!(
                "{name}: IR differs\n{}",
                diff(&g.expected, &actual)
            ));
        }
    }
    for f in &failures {
        eprintln!("GOLDEN {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden files differ (VMC_BLESS=1 to accept the new output)",
        failures.len(),
        files.len()
    );
}

#[test]
fn diff_marks_changes() {
    let d = diff("a\nb\nc\n", "a\nx\nc\n");
    assert!(
        d.contains("-b\n") && d.contains("+x\n") && d.contains(" a\n"),
        "{d}"
    );
}
