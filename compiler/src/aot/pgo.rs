//! Profile-guided translation (`vmc translate --profile FILE`).
//!
//! A profile recorded by `vmrun --profile-out` changes the translation in four ways:
//!
//! - **Entries found at run time**: indirect-branch targets and dispatcher entries that
//!   static discovery missed become roots ([`Guide::hints`]), so the image covers them and
//!   the JIT is not needed for them.
//! - **Larger regions along hot paths** ([`grow`]): a region whose head is hot takes in the
//!   hot blocks it reaches, even when they belong to other regions (they are duplicated):
//!   hot callees of its direct calls and the call's return site (the guest call becomes a
//!   host jump, the callee's `RET` a switch on the return address), the hot targets of its
//!   indirect branches and returns, and their hot successors. Guest registers then stay in
//!   host registers across the call instead of being written back at each region exit.
//! - **Inline target checks**: the hot targets of an indirect branch, and the return sites of
//!   the calls a region inlines, are compared inline (a switch on the target address, see
//!   [`crate::lower::Env::indirect_targets`]) before the indirect-branch table.
//! - **Layout**: blocks that never ran are Cranelift cold blocks (moved after the hot code
//!   of their region), and the image emits the regions whose head ran before the others, so
//!   the hot code is packed together.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use vmc_profiles::{InsnCounts, Profile};

use super::discover::{Discovery, Hints};
use crate::ir::{Block, BranchKind, Op};

/// Executions for a block to count as hot.
pub const HOT: u64 = 64;
/// Most guest instructions in a grown region.
pub const MAX_GROWN_INSNS: u64 = 1200;
/// A block is hot when it ran at least this fraction (1/2^n) of the hottest block's count.
pub const HOT_SHIFT: u32 = 12;
/// Duplicated guest instructions allowed in the whole image: this fraction (1/n) of the
/// translated instructions, at least [`MIN_DUPLICATION`].
pub const DUPLICATION_SHARE: u64 = 10;
/// Duplicated guest instructions always allowed.
pub const MIN_DUPLICATION: u64 = 4000;
/// Most blocks in a grown region.
pub const MAX_GROWN_BLOCKS: usize = 768;
/// Most hot targets kept per indirect branch.
pub const MAX_HOT_TARGETS: usize = 8;

/// What translation learns from a profile.
pub struct Guide {
    counts: InsnCounts,
    /// Hot targets of each indirect branch, hottest first.
    hot_targets: HashMap<u64, Vec<u64>>,
    /// Discovery roots: every indirect-branch target and run-time entry.
    hints: Hints,
}

impl Guide {
    /// Prepares `profile` (already checked to be for this guest).
    pub fn new(profile: &Profile) -> Guide {
        let mut hot_targets = HashMap::new();
        let mut indirect_targets = Vec::new();
        for (&site, s) in &profile.indirect {
            let mut t: Vec<(u64, u64)> = s.targets.iter().map(|(&a, &n)| (a, n)).collect();
            indirect_targets.extend(t.iter().map(|x| x.0));
            t.sort_by_key(|&(a, n)| (Reverse(n), a));
            let hot: Vec<u64> = t
                .iter()
                .filter(|x| x.1 >= HOT)
                .take(MAX_HOT_TARGETS)
                .map(|x| x.0)
                .collect();
            if !hot.is_empty() {
                hot_targets.insert(site, hot);
            }
        }
        indirect_targets.sort_unstable();
        indirect_targets.dedup();
        Guide {
            counts: profile.insn_counts(),
            hot_targets,
            hints: Hints {
                indirect_targets,
                entries: profile.entries.iter().copied().collect(),
            },
        }
    }

    /// Times the instruction at `pc` ran.
    pub fn count(&self, pc: u64) -> u64 {
        self.counts.count(pc)
    }

    /// Roots for discovery.
    pub fn hints(&self) -> &Hints {
        &self.hints
    }

    /// Hot targets of the indirect branch at `site`, hottest first.
    pub fn hot_targets(&self, site: u64) -> &[u64] {
        self.hot_targets.get(&site).map_or(&[], |v| v.as_slice())
    }
}

/// Where a hot path may continue from `b`, inside a grown region.
fn hot_successors(b: &Block, guide: &Guide, tables: &HashMap<u64, Vec<u64>>) -> Vec<u64> {
    let mut out = super::translate::successors(b, tables);
    match b.ops.last() {
        Some(Op::Jump {
            target,
            kind: BranchKind::Call,
        }) => out.push(*target),
        // Calls and computed jumps; a return's targets are its callers, which would pull
        // every caller into every callee.
        Some(Op::JumpReg { kind, .. }) if *kind != BranchKind::Return => {
            out.extend(guide.hot_targets(b.last_insn_pc().unwrap_or(b.pc)));
        }
        _ => {}
    }
    // A callee taken in returns inside the region.
    out.extend(b.return_site());
    out
}

/// Grows each region with a hot head along its hot paths (see the module documentation).
/// Blocks may now appear in several regions; each region keeps its head first and the rest
/// in PC order.
pub fn grow(
    disc: &Discovery,
    regions: Vec<Vec<usize>>,
    guide: &Guide,
    tables: &HashMap<u64, Vec<u64>>,
) -> Vec<Vec<usize>> {
    let blocks = &disc.blocks;
    let index: HashMap<u64, usize> = blocks.iter().enumerate().map(|(i, b)| (b.pc, i)).collect();
    let hottest = blocks.iter().map(|b| guide.count(b.pc)).max().unwrap_or(0);
    let hot = HOT.max(hottest >> HOT_SHIFT);
    let total: u64 = blocks.iter().map(|b| b.guest_insns as u64).sum();
    let mut budget = MIN_DUPLICATION.max(total / DUPLICATION_SHARE);
    // The hottest regions grow first, while the duplication budget lasts.
    let mut order: Vec<usize> = (0..regions.len()).collect();
    order.sort_by_key(|&i| (Reverse(guide.count(blocks[regions[i][0]].pc)), i));
    let mut out = regions;
    for ri in order {
        let r = &out[ri];
        if guide.count(blocks[r[0]].pc) < hot || budget == 0 {
            continue;
        }
        let mut members: HashSet<usize> = r.iter().copied().collect();
        let mut insns: u64 = r.iter().map(|&i| blocks[i].guest_insns as u64).sum();
        let mut added = Vec::new();
        // Hottest first, ties by address: deterministic.
        let mut heap: BinaryHeap<(u64, Reverse<u64>, usize)> = r
            .iter()
            .map(|&i| (guide.count(blocks[i].pc), Reverse(blocks[i].pc), i))
            .collect();
        while let Some((_, _, b)) = heap.pop() {
            for t in hot_successors(&blocks[b], guide, tables) {
                let Some(&ti) = index.get(&t) else { continue };
                let n = guide.count(t);
                if n < hot || members.contains(&ti) {
                    continue;
                }
                let size = blocks[ti].guest_insns as u64;
                if insns + size > MAX_GROWN_INSNS
                    || members.len() >= MAX_GROWN_BLOCKS
                    || size > budget
                {
                    continue;
                }
                members.insert(ti);
                insns += size;
                budget -= size;
                added.push(ti);
                heap.push((n, Reverse(t), ti));
            }
        }
        let grown = &mut out[ri];
        grown.extend(added);
        grown[1..].sort_unstable_by_key(|&i| blocks[i].pc);
    }
    out
}
