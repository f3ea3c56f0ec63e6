//! Per-instruction execution counts derived from block counts.

use std::collections::BTreeMap;

use crate::{BlockCount, BlockKey};

/// How many times each guest instruction ran, summed over every block that contains it
/// (blocks of different tiers may overlap).
///
/// Built with sorted boundary events and a running sum: it stores one segment per run of
/// instructions with the same count, not one entry per instruction. Instructions are the
/// addresses `pc + 4 * i` of each block; A64 code is 4-byte aligned, and should a profile hold
/// a misaligned block, its instructions are kept apart from the aligned ones rather than
/// mixed with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsnCounts {
    /// `(start, count)` in instruction coordinates (see [`coord`]), by start: the count of
    /// every instruction from this start to the next one. The last segment has count 0.
    segments: Vec<(u128, u64)>,
    executed: u64,
    dynamic: u64,
}

/// The position of the instruction at `pc`: its alignment class (`pc % 4`) in the high
/// bits, its index (`pc / 4`) in the low 64, so that consecutive instructions have
/// consecutive coordinates and a block never leaves its class.
fn coord(pc: u64) -> u128 {
    (u128::from(pc & 3) << 64) | u128::from(pc >> 2)
}

/// Saturating conversion of a non-negative sum.
fn clamp(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl InsnCounts {
    pub(crate) fn new(blocks: &BTreeMap<BlockKey, BlockCount>) -> InsnCounts {
        let mut events: Vec<(u128, i128)> = Vec::with_capacity(2 * blocks.len());
        for (k, c) in blocks {
            if k.insns > 0 && c.count > 0 {
                let start = coord(k.pc);
                events.push((start, i128::from(c.count)));
                events.push((start + u128::from(k.insns), -i128::from(c.count)));
            }
        }
        events.sort_unstable_by_key(|&(at, _)| at);

        let mut segments: Vec<(u128, u64)> = Vec::new();
        let mut level = 0i128;
        for group in events.chunk_by(|a, b| a.0 == b.0) {
            level += group.iter().map(|&(_, d)| d).sum::<i128>();
            let count = clamp(level.max(0) as u128);
            let at = group.first().map_or(0, |&(at, _)| at);
            if segments.last().map_or(0, |&(_, c)| c) != count {
                segments.push((at, count));
            }
        }

        let (mut executed, mut dynamic) = (0u128, 0u128);
        for w in segments.windows(2) {
            if let [(start, count), (end, _)] = *w {
                if count > 0 {
                    executed = executed.saturating_add(end - start);
                    dynamic = dynamic.saturating_add((end - start).saturating_mul(count.into()));
                }
            }
        }
        InsnCounts {
            segments,
            executed: clamp(executed),
            dynamic: clamp(dynamic),
        }
    }

    /// How many times the instruction at `pc` ran (0 if it never did).
    pub fn count(&self, pc: u64) -> u64 {
        let c = coord(pc);
        let i = self.segments.partition_point(|&(start, _)| start <= c);
        i.checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map_or(0, |&(_, count)| count)
    }

    /// The number of distinct instructions that ran at least once.
    pub fn executed_insns(&self) -> u64 {
        self.executed
    }

    /// The number of instructions executed, counting each execution (saturating).
    pub fn dynamic_insns(&self) -> u64 {
        self.dynamic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(blocks: &[(u64, u32, u64)]) -> InsnCounts {
        let map = blocks
            .iter()
            .map(|&(pc, insns, count)| (BlockKey { pc, insns }, BlockCount { count, taken: 0 }))
            .collect();
        InsnCounts::new(&map)
    }

    #[test]
    fn adjacent_blocks_with_equal_counts_share_a_segment() {
        let c = counts(&[(0x1000, 2, 3), (0x1008, 2, 3)]);
        assert_eq!(c.segments, [(coord(0x1000), 3), (coord(0x1010), 0)]);
        assert_eq!((c.executed_insns(), c.dynamic_insns()), (4, 12));
    }

    #[test]
    fn empty_and_unexecuted_blocks_count_nothing() {
        let c = counts(&[(0x1000, 0, 3), (0x2000, 5, 0)]);
        assert_eq!(c, InsnCounts::default());
        assert_eq!(c.count(0x1000), 0);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let c = counts(&[
            (u64::MAX - 3, u32::MAX, u64::MAX),
            (u64::MAX - 3, 1, u64::MAX),
        ]);
        assert_eq!(c.count(u64::MAX - 3), u64::MAX);
        assert_eq!(c.executed_insns(), u64::from(u32::MAX));
        assert_eq!(c.dynamic_insns(), u64::MAX);
    }

    #[test]
    fn misaligned_blocks_stay_apart() {
        let c = counts(&[(0x1000, 4, 1), (0x1002, 4, 2)]);
        assert_eq!(c.count(0x1004), 1);
        assert_eq!(c.count(0x1006), 2);
        assert_eq!(c.count(0x1005), 0);
        assert_eq!((c.executed_insns(), c.dynamic_insns()), (8, 12));
    }
}
