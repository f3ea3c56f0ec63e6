//! Golden tests of the guest IR → Cranelift IR lowering used by the JIT tiers.
//!
//! Each `tests/golden_clif/NAME.txt` holds a header, a `----` line, then the expected CLIF:
//!
//! ```text
//! # free comment lines
//! tier baseline            (or `opt`: the compiler configuration)
//! loads precise            (optional: loads check the page table instead of relying on
//!                           the host MMU, as while the guest has a SIGSEGV handler)
//! calls host               (optional: return-address prediction, guest calls are host
//!                           calls and the region takes in their return sites)
//! at 0x400000
//! d2800140   ; mov x0, #10   (words in hex, `;` starts a comment)
//! ----
//! function u0:0(i64, i64) -> i64 tail { ...
//! ```
//!
//! The words are placed at consecutive addresses from `at`. The region is the block at `at`
//! plus every block reachable from it through direct branches whose address lies among the
//! words (as the dispatcher's region formation does), each translated with
//! `a64::translate_block`; exit targets outside the region get chain slots 0, 1, ... in
//! address order. The region is lowered by `jit::Compiler::lower` and printed. Host
//! addresses of runtime entry points (`jit::slow::*`) and instruction helpers that appear as
//! `iconst.i64` constants are replaced by symbolic names (`@slow::load`, `@helper:NAME`), so
//! the files do not depend on the build.
//!
//! `VMC_BLESS=1 cargo test -p vmc-runtime --test golden_clif` rewrites the expected part.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use cranelift_codegen::ir::immediates::Imm64;
use vmc_compiler::a64::{disasm, translate_block};
use vmc_compiler::ir::{verify, Block, Op};
use vmc_runtime::jit::{self, slow, Compiler, JitEnv, Tier};

const SEPARATOR: &str = "----";

struct Golden {
    header: String,
    tier: Tier,
    precise_loads: bool,
    host_calls: bool,
    at: u64,
    words: Vec<u32>,
    expected: String,
}

fn parse(path: &Path) -> Result<Golden, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (header, expected) = match text.split_once(&format!("\n{SEPARATOR}\n")) {
        Some((h, e)) => (h.to_string(), e.to_string()),
        None => (
            text.trim_end()
                .trim_end_matches(SEPARATOR)
                .trim_end()
                .to_string(),
            String::new(),
        ),
    };
    let mut at = None;
    let mut tier = None;
    let mut precise_loads = false;
    let mut host_calls = false;
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
        if line == "loads precise" {
            precise_loads = true;
            continue;
        }
        if line == "calls host" {
            host_calls = true;
            continue;
        }
        if let Some(t) = line.strip_prefix("tier ") {
            tier = Some(match t.trim() {
                "baseline" => Tier::Baseline,
                "opt" => Tier::Optimized,
                other => return Err(format!("line {}: unknown tier {other:?}", n + 1)),
            });
            continue;
        }
        for tok in line.split_whitespace() {
            let w = u32::from_str_radix(tok.trim_start_matches("0x"), 16)
                .map_err(|e| format!("line {}: bad word {tok:?}: {e}", n + 1))?;
            words.push(w);
        }
    }
    let at = at.ok_or("missing `at 0x...` line")?;
    let tier = tier.ok_or("missing `tier baseline|opt` line")?;
    if words.is_empty() {
        return Err("no instruction words".into());
    }
    Ok(Golden {
        header,
        tier,
        precise_loads,
        host_calls,
        at,
        words,
        expected,
    })
}

/// The region of a golden file: the entry block and the blocks reachable inside the words.
fn region(g: &Golden) -> Result<Vec<Block>, String> {
    let end = g.at + 4 * g.words.len() as u64;
    let words = &g.words;
    let mut fetch = |a: u64| (a >= g.at && a < end).then(|| words[((a - g.at) / 4) as usize]);
    let mut blocks: Vec<Block> = Vec::new();
    let mut queue = VecDeque::from([g.at]);
    while let Some(pc) = queue.pop_front() {
        if pc < g.at || pc >= end || blocks.iter().any(|b| b.pc == pc) {
            continue;
        }
        let b = translate_block(&mut fetch, pc);
        verify(&b).map_err(|e| format!("ir::verify failed on block {pc:#x}: {e}\n{b}"))?;
        queue.extend(b.direct_successors());
        if g.host_calls {
            queue.extend(b.return_site());
        }
        blocks.push(b);
    }
    Ok(blocks)
}

/// Symbolic names for the host addresses that can appear in the CLIF.
fn symbols(blocks: &[Block]) -> Vec<(u64, String)> {
    use vmc_compiler::lower::Callee;
    let mut out: Vec<(u64, String)> = [
        (Callee::Load, "@slow::load"),
        (Callee::Store, "@slow::store"),
        (Callee::LoadVec, "@slow::load_vec"),
        (Callee::StoreVec, "@slow::store_vec"),
        (Callee::Helper, "@slow::helper"),
        (Callee::HelperCold, "@slow::helper_cold"),
        (Callee::ProfileIndirect, "@slow::profile_indirect"),
    ]
    .into_iter()
    .map(|(c, name)| (slow::callee_addr(c), name.to_string()))
    .collect();
    for b in blocks {
        for op in &b.ops {
            if let Op::Call { helper, .. } = op {
                let addr = *helper as *const _ as u64;
                if !out.iter().any(|(a, _)| *a == addr) {
                    out.push((addr, format!("@helper:{}", helper.name)));
                }
            }
        }
    }
    out
}

/// Replaces every known host address (in `iconst.i64 ADDR` and in the printer's `; vN = ADDR`
/// comments) by its name.
fn normalize(clif: &str, syms: &[(u64, String)]) -> String {
    let mut s = clif.to_string();
    for (addr, name) in syms {
        // Cranelift prints these in hex grouped from the right, so the text of one address
        // cannot be a piece of another number's text.
        let imm = Imm64::new(*addr as i64).to_string();
        s = s.replace(&imm, name);
    }
    s
}

/// Hex numbers that look like host addresses (user-space heap, PIE text, mmap areas).
fn host_addresses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tok in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(h) = tok.strip_prefix("0x") {
            if let Ok(v) = u64::from_str_radix(&h.replace('_', ""), 16) {
                if (0x5500_0000_0000..0x8000_0000_0000).contains(&v) {
                    out.push(tok.to_string());
                }
            }
        }
    }
    out
}

/// Lowers the file's region; returns the normalized CLIF text.
fn render(g: &Golden) -> Result<String, String> {
    let blocks = region(g)?;
    let refs: Vec<&Block> = blocks.iter().collect();
    let mut slots = HashMap::new();
    for (i, t) in jit::exit_targets(&refs).into_iter().enumerate() {
        slots.insert(t, i as u32);
    }
    let mut comp = Compiler::new(g.tier).map_err(|e| e.to_string())?;
    let mut env = JitEnv {
        slots,
        counters: Default::default(),
        profiling: false,
        host_fault_loads: !g.precise_loads,
        host_calls: g.host_calls,
        indirect: Default::default(),
        tables: Default::default(),
    };
    let func = comp.lower(&refs, &mut env);
    let text = normalize(&func.display().to_string(), &symbols(&blocks));
    let unnamed = host_addresses(&text);
    if !unnamed.is_empty() {
        // An unnamed host address would make the file depend on the build: name it above.
        return Err(format!(
            "unnamed host addresses in the CLIF: {unnamed:?}\n{text}"
        ));
    }
    Ok(text)
}

/// A unified line diff (longest common subsequence), with a little context.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            lines.push(('+', b[j]));
            j += 1;
        } else {
            lines.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| {
        let lo = k.saturating_sub(3);
        let hi = (k + 4).min(lines.len());
        lines[lo..hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::from("--- expected\n+++ actual\n");
    let mut gap = false;
    for (k, (c, l)) in lines.iter().enumerate() {
        if near(k) {
            out.push_str(&format!("{c} {l}\n"));
            gap = false;
        } else if !gap {
            out.push_str("  ...\n");
            gap = true;
        }
    }
    out
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden_clif")
}

#[test]
fn clif_matches_golden_files() {
    let bless = std::env::var_os("VMC_BLESS").is_some_and(|v| v != "0");
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden_clif")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let g = match parse(path) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let actual = match render(&g) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if bless {
            let text = format!("{}\n{SEPARATOR}\n{actual}", g.header.trim_end());
            std::fs::write(path, text).expect("write golden file");
            eprintln!("blessed {name}");
        } else if g.expected != actual {
            let mut listing = String::new();
            for (i, w) in g.words.iter().enumerate() {
                let pc = g.at + 4 * i as u64;
                listing.push_str(&format!("    {pc:#x}: {w:08x}  {}\n", disasm(*w, pc)));
            }
            failures.push(format!(
                "{name}: Cranelift IR differs from the golden file ({:?}, words:\n{listing}  ) \
                 (VMC_BLESS=1 to accept):\n{}",
                g.tier,
                diff(&g.expected, &actual)
            ));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} golden CLIF files failed:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn diff_shows_changed_lines() {
    let d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert!(d.contains("- b\n") && d.contains("+ B\n"), "{d}");
}
