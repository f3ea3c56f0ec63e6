//! A human- and JSON-readable report of a profile.

use std::cmp::Reverse;
use std::fmt;

use serde::Serialize;

use crate::{hex, Profile};

/// Totals of a profile and its hottest blocks and functions ([`Profile::summary`]).
///
/// `Display` prints a readable report; serde gives the same content as data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// SHA-256 of the guest binary, lowercase hex.
    pub guest_sha256: String,
    /// The guest's file name when recorded.
    pub guest_name: String,
    /// Number of runs merged into the profile.
    pub runs: u64,
    /// Number of block records.
    pub blocks: usize,
    /// Distinct instructions executed at least once.
    pub executed_insns: u64,
    /// Instructions executed, counting every execution.
    pub dynamic_insns: u64,
    /// Number of distinct control-flow edges.
    pub edges: usize,
    /// Number of indirect branch sites.
    pub indirect_sites: usize,
    /// Number of dispatcher entry addresses.
    pub entries: usize,
    /// Number of distinct callees.
    pub calls: usize,
    /// The blocks that executed the most instructions (count × insns), hottest first.
    pub hot_blocks: Vec<HotBlock>,
    /// The functions that executed the most instructions, hottest first.
    pub hot_functions: Vec<HotFunction>,
}

/// One of the hottest blocks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HotBlock {
    /// Address of its first instruction.
    pub pc: u64,
    /// Its number of instructions.
    pub insns: u32,
    /// Times it was entered.
    pub count: u64,
    /// Its share (0 to 1) of all dynamic instructions: count × insns / dynamic_insns.
    pub share: f64,
}

/// One of the hottest functions.
///
/// Functions are approximated: their entries are the callees seen plus the lowest executed
/// address, and each executed instruction belongs to the nearest entry at or below it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HotFunction {
    /// Entry address.
    pub entry: u64,
    /// Times it was called (BL and BLR).
    pub calls: u64,
    /// Instructions executed from this entry up to the next one, counting every execution.
    pub dynamic_insns: u64,
    /// Its share (0 to 1) of all dynamic instructions.
    pub share: f64,
}

fn share(part: u128, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

pub(crate) fn summarize(p: &Profile, top: usize) -> Summary {
    let counts = p.insn_counts();
    let total = counts.dynamic_insns();
    let executed = || p.blocks.iter().filter(|(k, c)| k.insns > 0 && c.count > 0);

    let mut blocks: Vec<_> = executed()
        .map(|(k, c)| (u128::from(c.count) * u128::from(k.insns), k, c))
        .collect();
    blocks.sort_unstable_by_key(|&(weight, k, _)| (Reverse(weight), k.pc, k.insns));
    let hot_blocks = blocks
        .into_iter()
        .take(top)
        .map(|(weight, k, c)| HotBlock {
            pc: k.pc,
            insns: k.insns,
            count: c.count,
            share: share(weight, total),
        })
        .collect();

    // Attribute each block's instructions to the entries at or below them, cutting the block
    // where a later entry falls inside it.
    let mut entries: Vec<u64> = p.calls.keys().copied().collect();
    entries.extend(executed().map(|(k, _)| k.pc).min());
    entries.sort_unstable();
    entries.dedup();
    let mut dynamic = vec![0u128; entries.len()];
    for (k, c) in executed() {
        let Some(mut f) = entries.partition_point(|&e| e <= k.pc).checked_sub(1) else {
            continue;
        };
        let end = u128::from(k.pc) + 4 * u128::from(k.insns);
        let mut pos = u128::from(k.pc);
        loop {
            let next = entries
                .get(f + 1)
                .map(|&e| u128::from(e))
                .filter(|&e| e < end);
            let insns = next.unwrap_or(end).saturating_sub(pos).div_ceil(4);
            if let Some(d) = dynamic.get_mut(f) {
                *d = d.saturating_add(insns * u128::from(c.count));
            }
            pos += 4 * insns;
            if next.is_none() {
                break;
            }
            f += 1;
        }
    }
    let mut functions: Vec<_> = entries
        .into_iter()
        .zip(dynamic)
        .filter(|&(_, d)| d > 0)
        .collect();
    functions.sort_unstable_by_key(|&(entry, d)| (Reverse(d), entry));
    let hot_functions = functions
        .into_iter()
        .take(top)
        .map(|(entry, d)| HotFunction {
            entry,
            calls: p.calls.get(&entry).copied().unwrap_or(0),
            dynamic_insns: u64::try_from(d).unwrap_or(u64::MAX),
            share: share(d, total),
        })
        .collect();

    Summary {
        guest_sha256: hex(&p.guest_sha256),
        guest_name: p.guest_name.clone(),
        runs: p.runs,
        blocks: p.blocks.len(),
        executed_insns: counts.executed_insns(),
        dynamic_insns: total,
        edges: p.edges.len(),
        indirect_sites: p.indirect.len(),
        entries: p.entries.len(),
        calls: p.calls.len(),
        hot_blocks,
        hot_functions,
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "profile of {} (sha256 {})",
            self.guest_name, self.guest_sha256
        )?;
        writeln!(
            f,
            "{} run(s), {} blocks, {} edges, {} indirect sites, {} entries, {} callees",
            self.runs, self.blocks, self.edges, self.indirect_sites, self.entries, self.calls
        )?;
        writeln!(
            f,
            "{} instructions executed, {} dynamic instructions",
            self.executed_insns, self.dynamic_insns
        )?;
        writeln!(f)?;
        writeln!(f, "hot blocks")?;
        writeln!(
            f,
            "{:>18} {:>10} {:>20} {:>7}",
            "pc", "insns", "count", "share"
        )?;
        for b in &self.hot_blocks {
            writeln!(
                f,
                "{:>18} {:>10} {:>20} {:>7}",
                format!("{:#x}", b.pc),
                b.insns,
                b.count,
                percent(b.share)
            )?;
        }
        writeln!(f)?;
        writeln!(f, "hot functions")?;
        writeln!(
            f,
            "{:>18} {:>20} {:>20} {:>7}",
            "entry", "calls", "dynamic insns", "share"
        )?;
        for h in &self.hot_functions {
            writeln!(
                f,
                "{:>18} {:>20} {:>20} {:>7}",
                format!("{:#x}", h.entry),
                h.calls,
                h.dynamic_insns,
                percent(h.share)
            )?;
        }
        Ok(())
    }
}
