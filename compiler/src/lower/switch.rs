//! Switch folding: a block that ends in a jump through a jump table with fixed contents (a
//! compiler's `switch`: load an entry, compute the target from it, `BR`) becomes one host
//! jump table indexed by the entry's position, as native code would have it. The table
//! load, the target arithmetic and the indirect-branch lookup leave the hot path.
//!
//! [`plan`] evaluates the block once per table entry, with the load's result known: the
//! instructions after the load must be pure register arithmetic (so every register they set
//! and the jump's target are constants for each entry). The lowering then guards on the
//! load's address (inside the table and aligned to its entries), dispatches on the entry
//! index to one host block per distinct outcome that sets those registers and jumps, and
//! keeps the original instructions as the fallback for any other address. The table's bytes
//! must not change behind the code: the caller ([`super::Env::jump_table`]) offers only
//! tables in read-only memory that are among the region's guest ranges, so that writing
//! them invalidates the translation like writing its code.

use crate::interp;
use crate::ir::{Block, BranchKind, Dst, Op, Reg, Temp};

/// Most table entries folded (a bigger switch keeps the generic path).
pub const MAX_ENTRIES: usize = 1024;

/// A jump table's fixed contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableData {
    /// Guest address of the table.
    pub addr: u64,
    /// Bytes per entry (1, 2, 4 or 8).
    pub size: u8,
    /// The entries as a load of `size` bytes returns them (zero-extended).
    pub entries: Vec<u64>,
}

impl TableData {
    /// The guest bytes the table occupies.
    pub fn range(&self) -> (u64, u64) {
        (
            self.addr,
            self.addr + self.entries.len() as u64 * u64::from(self.size),
        )
    }
}

/// What one table entry leads to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Case {
    /// The X registers the rest of the block sets, with their values, in register order.
    pub sets: Vec<(u8, u64)>,
    /// Where the block's indirect jump goes.
    pub target: u64,
}

/// A folded switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Index in the block's ops of the table load.
    pub load: usize,
    /// Guest address of the table.
    pub table: u64,
    /// log2 of the entry size.
    pub shift: u32,
    /// One per table entry (`None`: the entry takes the block's own instructions).
    pub cases: Vec<Option<Case>>,
}

/// The folded switch of `block` through `table`, if the block has the shape (see the module
/// documentation).
pub fn plan(block: &Block, table: &TableData) -> Option<Plan> {
    let ops = &block.ops;
    if !matches!(
        ops.last(),
        Some(Op::JumpReg {
            kind: BranchKind::Jump,
            ..
        })
    ) || table.entries.is_empty()
        || table.entries.len() > MAX_ENTRIES
        || !matches!(table.size, 1 | 2 | 4 | 8)
    {
        return None;
    }
    // The table load: the block's last load, of an entry's size.
    let (load, loaded, _, size) = table_load(block)?;
    if size != table.size {
        return None;
    }
    // Constants known before the load (an `ADR` scheduled above it, registers set to
    // constants earlier in the block). Unknown: everything else.
    let mut temps = vec![None; block.temps as usize];
    let mut regs = [None; 32];
    for op in &ops[..load] {
        match *op {
            Op::Call { .. } => regs = [None; 32],
            Op::Set {
                reg: Reg::X(n),
                src,
            } => regs[n as usize] = temps[src.0 as usize],
            _ => {
                let _ = step(op, &mut temps, &regs);
            }
        }
    }
    let mut cases = Vec::with_capacity(table.entries.len());
    for &entry in &table.entries {
        let mut temps = temps.clone();
        let mut regs = regs;
        let mut set = 0u32;
        temps[loaded.0 as usize] = Some(entry);
        let mut target = None;
        for op in &ops[load + 1..] {
            match *op {
                Op::Insn { .. } => {}
                Op::Set {
                    reg: Reg::X(n),
                    src,
                } => {
                    regs[n as usize] = Some(temps[src.0 as usize]?);
                    set |= 1 << n;
                }
                Op::JumpReg { target: t, .. } => target = temps[t.0 as usize],
                Op::Const { .. }
                | Op::Get { reg: Reg::X(_), .. }
                | Op::Bin { .. }
                | Op::Un { .. }
                | Op::Select { .. } => step(op, &mut temps, &regs)?,
                _ => return None,
            }
        }
        let sets = (0..32u8)
            .filter(|&r| set & (1 << r) != 0)
            .map(|r| regs[r as usize].map(|v| (r, v)))
            .collect::<Option<Vec<_>>>()?;
        cases.push(Some(Case {
            sets,
            target: target?,
        }));
    }
    Some(Plan {
        load,
        table: table.addr,
        shift: table.size.trailing_zeros(),
        cases,
    })
}

/// Where the table of `block`'s switch may be, for a caller that does not know (the JIT):
/// its table load's address is `base + index`, with `base` computed in the block from
/// constants and registers it does not write, so `regs` (the registers after the block
/// ran) give it. Returns it and the load's size. A guess is enough: the folded code checks
/// the address it would load from.
pub fn table_base(block: &Block, regs: &[u64; 32]) -> Option<(u64, u8)> {
    let ops = &block.ops;
    let (load, _, addr, size) = table_load(block)?;
    let mut known: [Option<u64>; 32] = std::array::from_fn(|n| Some(regs[n]));
    for op in ops {
        if let Op::Set { reg: Reg::X(n), .. } = op {
            known[*n as usize] = None;
        }
    }
    let mut temps = vec![None; block.temps as usize];
    let mut add = None;
    for op in &ops[..load] {
        match *op {
            Op::Call { .. } => known = [None; 32],
            Op::Set {
                reg: Reg::X(n),
                src,
            } => known[n as usize] = temps[src.0 as usize],
            Op::Bin {
                dst,
                op: crate::ir::BinOp::Add,
                a,
                b,
                ..
            } if dst.0 == addr.0 => add = Some((a, b)),
            _ => {
                let _ = step(op, &mut temps, &known);
            }
        }
    }
    let (a, b) = add?;
    let base = temps[a.0 as usize].or(temps[b.0 as usize])?;
    Some((base, size))
}

/// The block's last load (where a switch reads its table entry): its index in the ops, its
/// destination, address and size.
fn table_load(block: &Block) -> Option<(usize, Dst, Temp, u8)> {
    let load = block
        .ops
        .iter()
        .rposition(|op| matches!(op.kind(), crate::ir::OpKind::Load))?;
    match block.ops[load] {
        Op::Load { dst, addr, size } => Some((load, dst, addr, size)),
        _ => None,
    }
}

/// Evaluates a pure op on known values (`None` where an operand is unknown); `None` if the
/// op is not one of them.
fn step(op: &Op, temps: &mut [Option<u64>], regs: &[Option<u64>; 32]) -> Option<()> {
    let t = |x: Temp| temps[x.0 as usize];
    let (dst, v) = match *op {
        Op::Const { dst, value } => (dst, Some(value)),
        Op::Get {
            dst,
            reg: Reg::X(n),
        } => (dst, regs[n as usize]),
        Op::Bin { dst, op, w, a, b } => {
            (dst, t(a).zip(t(b)).map(|(a, b)| interp::bin(op, w, a, b)))
        }
        Op::Un { dst, op, w, a } => (dst, t(a).map(|a| interp::un(op, w, a))),
        Op::Select { dst, c, a, b } => (dst, t(c).and_then(|c| if c != 0 { t(a) } else { t(b) })),
        _ => return None,
    };
    temps[dst.0 as usize] = v;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gcc's switch: `ldrh w1, [x9, w1, uxtw #1]; adr x0, L; add x1, x0, w1, sxth #2; br x1`
    /// at 0x1000, with L = 0x1010.
    const GCC_SWITCH: [u32; 4] = [0x78615921, 0x10000060, 0x8b21a801, 0xd61f0020];

    fn block(words: &[u32]) -> Block {
        let mut fetch = |pc: u64| words.get(((pc - 0x1000) / 4) as usize).copied();
        crate::a64::translate_block(&mut fetch, 0x1000)
    }

    fn table(entries: &[u64]) -> TableData {
        TableData {
            addr: 0x8000,
            size: 2,
            entries: entries.to_vec(),
        }
    }

    #[test]
    fn a_gcc_switch_folds_to_the_registers_and_target_of_each_entry() {
        let b = block(&GCC_SWITCH);
        // Entries are signed halfword offsets in words from L; 0xfffc is -4.
        let p = plan(&b, &table(&[0, 3, 0xfffc])).expect("folds");
        assert_eq!((p.table, p.shift), (0x8000, 1));
        let l = 0x1010u64;
        let want = |off: i64| {
            Some(Case {
                sets: vec![(0, l), (1, l.wrapping_add((off * 4) as u64))],
                target: l.wrapping_add((off * 4) as u64),
            })
        };
        assert_eq!(p.cases, vec![want(0), want(3), want(-4)]);
        assert!(matches!(b.ops[p.load], Op::Load { size: 2, .. }));
    }

    #[test]
    fn the_table_base_comes_from_a_register_the_block_keeps_or_from_constants() {
        // x9 holds the table: its value after the block is the base.
        let mut regs = [0u64; 32];
        regs[9] = 0x8000;
        regs[1] = 0x1234; // overwritten by the block: not a base
        assert_eq!(table_base(&block(&GCC_SWITCH), &regs), Some((0x8000, 2)));
        // adrp x1, 0x1000; add x1, x1, #0x10; ldrh w0, [x1, w0, uxtw #1]; adr; add; br x0
        let b = block(&[
            0x90000001, 0x91004021, 0x78605820, 0x10000061, 0x8b20a820, 0xd61f0000,
        ]);
        assert_eq!(table_base(&b, &regs), Some((0x1010, 2)));
    }

    #[test]
    fn no_fold_when_the_entry_size_differs_or_the_table_is_unknown() {
        let b = block(&GCC_SWITCH);
        let mut t = table(&[0, 1]);
        t.size = 4;
        assert_eq!(plan(&b, &t), None);
        assert_eq!(plan(&b, &table(&[])), None);
    }

    #[test]
    fn no_fold_when_the_target_depends_on_an_unknown_register() {
        // ldrh w1, [x9, w1, uxtw #1]; add x1, x2, w1, sxth #2; br x1 (x2 unknown)
        let b = block(&[0x78615921, 0x8b21a841, 0xd61f0020]);
        assert_eq!(plan(&b, &table(&[0, 1])), None);
    }

    #[test]
    fn no_fold_when_the_rest_of_the_block_stores() {
        // ldrh w1, [x9, w1, uxtw #1]; str x0, [x2]; adr x0, L; add x1, x0, w1, sxth #2; br x1
        let b = block(&[0x78615921, 0xf9000040, 0x10000060, 0x8b21a801, 0xd61f0020]);
        assert_eq!(plan(&b, &table(&[0, 1])), None);
    }
}
