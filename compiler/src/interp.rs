//! The reference interpreter (tier 0): executes IR blocks on a [`CpuState`].
//!
//! It is the oracle the JIT and AOT tiers are tested against, so it favours plain,
//! obviously-correct code over speed.

use crate::ir::{BinOp, Block, BranchKind, Op, Reg, TrapKind, UnOp, Width};
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// How a block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Continue at this guest address (`pc` is already set).
    Continue(BranchKind),
    /// `SVC`: perform the system call in x8, then continue at `pc` (already the next insn).
    Syscall,
    /// The instruction at `pc` faulted.
    Fault {
        /// Guest address of the faulting instruction.
        pc: u64,
        /// What went wrong.
        fault: Fault,
    },
    /// The guest executed a trapping instruction at `pc`.
    Trap {
        /// Which trap.
        kind: TrapKind,
        /// Guest address of the instruction.
        pc: u64,
        /// The instruction word.
        insn: u32,
    },
}

/// Evaluates A64 condition code `cond` (0..15) against NZCV in architectural position.
pub fn cond_holds(nzcv: u64, cond: u8) -> bool {
    let n = nzcv >> 31 & 1 != 0;
    let z = nzcv >> 30 & 1 != 0;
    let c = nzcv >> 29 & 1 != 0;
    let v = nzcv >> 28 & 1 != 0;
    let r = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => true,
    };
    if cond & 1 == 1 && cond != 0xf {
        !r
    } else {
        r
    }
}

/// AddWithCarry from the ARM pseudocode: returns (result, NZCV in architectural position).
pub fn add_with_carry(w: Width, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let (result, c, v) = match w {
        Width::W64 => {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(carry & 1);
            let (_, v1) = (a as i64).overflowing_add(b as i64);
            let (_, v2) = (s1 as i64).overflowing_add((carry & 1) as i64);
            (s2, c1 || c2, v1 != v2)
        }
        Width::W32 => {
            let (a, b) = (a as u32, b as u32);
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(carry as u32 & 1);
            let (_, v1) = (a as i32).overflowing_add(b as i32);
            let (_, v2) = (s1 as i32).overflowing_add((carry & 1) as i32);
            (s2 as u64, c1 || c2, v1 != v2)
        }
    };
    (result, nz(w, result) | (c as u64) << 29 | (v as u64) << 28)
}

/// N and Z flags of a result at width w, in architectural position.
pub fn nz(w: Width, r: u64) -> u64 {
    let r = r & w.mask();
    let n = r >> (w.bits() - 1) & 1;
    (n << 31) | ((r == 0) as u64) << 30
}

/// Computes a two-operand ALU op.
pub fn bin(op: BinOp, w: Width, a: u64, b: u64) -> u64 {
    let bits = w.bits();
    let m = w.mask();
    let (a, b) = (a & m, b & m);
    let sh = (b % bits as u64) as u32;
    let sext = |x: u64| -> i64 {
        match w {
            Width::W32 => x as u32 as i32 as i64,
            Width::W64 => x as i64,
        }
    };
    let r = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a << sh,
        BinOp::Lshr => a >> sh,
        BinOp::Ashr => (sext(a) >> sh) as u64,
        BinOp::Ror => {
            if sh == 0 {
                a
            } else {
                (a >> sh) | (a << (bits - sh))
            }
        }
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::UMulH => ((a as u128 * b as u128) >> 64) as u64,
        BinOp::SMulH => ((a as i64 as i128 * b as i64 as i128) >> 64) as u64,
        BinOp::UDiv => a.checked_div(b).unwrap_or(0),
        BinOp::SDiv => {
            if b == 0 {
                0
            } else {
                sext(a).wrapping_div(sext(b)) as u64
            }
        }
    };
    r & m
}

/// Computes a one-operand ALU op.
pub fn un(op: UnOp, w: Width, a: u64) -> u64 {
    let m = w.mask();
    let a = a & m;
    let r = match (op, w) {
        (UnOp::Not, _) => !a,
        (UnOp::Neg, _) => a.wrapping_neg(),
        (UnOp::Clz, Width::W64) => a.leading_zeros() as u64,
        (UnOp::Clz, Width::W32) => (a as u32).leading_zeros() as u64,
        (UnOp::Cls, Width::W64) => {
            let x = a ^ ((a as i64) >> 1) as u64;
            x.leading_zeros() as u64 - 1
        }
        (UnOp::Cls, Width::W32) => {
            let x = (a as u32) ^ (((a as u32 as i32) >> 1) as u32);
            x.leading_zeros() as u64 - 1
        }
        (UnOp::Rbit, Width::W64) => a.reverse_bits(),
        (UnOp::Rbit, Width::W32) => (a as u32).reverse_bits() as u64,
        (UnOp::Rev, Width::W64) => a.swap_bytes(),
        (UnOp::Rev, Width::W32) => (a as u32).swap_bytes() as u64,
        (UnOp::Rev16, _) => ((a >> 8) & 0x00ff_00ff_00ff_00ff) | ((a & 0x00ff_00ff_00ff_00ff) << 8),
        (UnOp::Rev32, _) => {
            let lo = (a as u32).swap_bytes() as u64;
            let hi = ((a >> 32) as u32).swap_bytes() as u64;
            lo | hi << 32
        }
        (UnOp::Sext8, _) => a as u8 as i8 as i64 as u64,
        (UnOp::Sext16, _) => a as u16 as i16 as i64 as u64,
        (UnOp::Sext32, _) => a as u32 as i32 as i64 as u64,
    };
    r & m
}

fn get(st: &CpuState, reg: Reg) -> u64 {
    match reg {
        Reg::X(n) => st.x[n as usize],
        Reg::Nzcv => st.nzcv,
        Reg::Tpidr => st.tpidr_el0,
        Reg::Fpcr => st.fpcr,
        Reg::Fpsr => st.fpsr,
    }
}

fn set(st: &mut CpuState, reg: Reg, v: u64) {
    match reg {
        Reg::X(n) => st.x[n as usize] = v,
        Reg::Nzcv => st.nzcv = v & 0xf000_0000,
        Reg::Tpidr => st.tpidr_el0 = v,
        Reg::Fpcr => st.fpcr = v & crate::a64::fp::FPCR_MASK,
        Reg::Fpsr => st.fpsr = v & crate::a64::fp::FPSR_MASK,
    }
}

/// Executes `block` on `st` and `mem`. `temps` is scratch space reused across calls.
///
/// Generic over the memory so the runtime's accesses inline; helpers see it as `dyn Memory`.
pub fn run_block<M: Memory>(
    block: &Block,
    st: &mut CpuState,
    mem: &mut M,
    temps: &mut Vec<u64>,
) -> Exit {
    // Every temp is defined before it is used (verified SSA), so stale values are harmless.
    if temps.len() < block.temps as usize {
        temps.resize(block.temps as usize, 0);
    }
    let t = temps.as_mut_slice();
    let mut cur_pc = block.pc;
    for op in &block.ops {
        match *op {
            Op::Insn { pc, .. } => cur_pc = pc,
            Op::Const { dst, value } => t[dst.0 as usize] = value,
            Op::Get { dst, reg } => t[dst.0 as usize] = get(st, reg),
            Op::Set { reg, src } => set(st, reg, t[src.0 as usize]),
            Op::Bin { dst, op, w, a, b } => {
                t[dst.0 as usize] = bin(op, w, t[a.0 as usize], t[b.0 as usize])
            }
            Op::Un { dst, op, w, a } => t[dst.0 as usize] = un(op, w, t[a.0 as usize]),
            Op::AddFlags {
                dst,
                w,
                a,
                b,
                carry,
            } => {
                let (r, f) =
                    add_with_carry(w, t[a.0 as usize], t[b.0 as usize], t[carry.0 as usize]);
                t[dst.0 as usize] = r;
                st.nzcv = f;
            }
            Op::LogicFlags { w, a } => st.nzcv = nz(w, t[a.0 as usize]),
            Op::Cond { dst, cond } => t[dst.0 as usize] = cond_holds(st.nzcv, cond) as u64,
            Op::Select { dst, c, a, b } => {
                t[dst.0 as usize] = if t[c.0 as usize] != 0 {
                    t[a.0 as usize]
                } else {
                    t[b.0 as usize]
                }
            }
            Op::Load { dst, addr, size } => match mem.read(t[addr.0 as usize], size) {
                Ok(v) => t[dst.0 as usize] = v,
                Err(fault) => return fault_at(st, cur_pc, fault),
            },
            Op::Store { addr, src, size } => {
                if let Err(fault) = mem.write(t[addr.0 as usize], size, t[src.0 as usize]) {
                    return fault_at(st, cur_pc, fault);
                }
            }
            Op::LoadVec { reg, addr, size } => {
                let mut buf = [0u8; 16];
                if let Err(fault) = mem.read_bytes(t[addr.0 as usize], &mut buf[..size as usize]) {
                    return fault_at(st, cur_pc, fault);
                }
                st.v[reg as usize] = u128::from_le_bytes(buf);
            }
            Op::StoreVec { reg, addr, size } => {
                let buf = st.v[reg as usize].to_le_bytes();
                if let Err(fault) = mem.write_bytes(t[addr.0 as usize], &buf[..size as usize]) {
                    return fault_at(st, cur_pc, fault);
                }
            }
            Op::Call { helper, insn } => {
                st.pc = cur_pc;
                if let Err(fault) = (helper.func)(st, mem as &mut dyn Memory, insn) {
                    return fault_at(st, cur_pc, fault);
                }
            }
            Op::Jump { target, kind } => {
                st.pc = target;
                return Exit::Continue(kind);
            }
            Op::JumpReg { target, kind } => {
                st.pc = t[target.0 as usize];
                return Exit::Continue(kind);
            }
            Op::Branch {
                c,
                taken,
                fallthrough,
            } => {
                st.pc = if t[c.0 as usize] != 0 {
                    taken
                } else {
                    fallthrough
                };
                return Exit::Continue(BranchKind::Jump);
            }
            Op::Syscall { next } => {
                st.pc = next;
                return Exit::Syscall;
            }
            Op::Trap { kind, pc, insn } => {
                st.pc = pc;
                return Exit::Trap { kind, pc, insn };
            }
        }
    }
    // Verified blocks end with a terminator (the frontend checks every block it builds);
    // an unverified one that does not is an undefined instruction, never a host panic.
    st.pc = cur_pc;
    Exit::Trap {
        kind: TrapKind::Undefined,
        pc: cur_pc,
        insn: 0,
    }
}

fn fault_at(st: &mut CpuState, pc: u64, fault: Fault) -> Exit {
    st.pc = pc;
    Exit::Fault { pc, fault }
}
