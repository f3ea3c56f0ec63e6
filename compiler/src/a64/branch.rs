//! Branches, exception generation and system-call entry (ARM ARM C4.1.65): B, BL, B.cond,
//! CBZ/CBNZ, TBZ/TBNZ, BR, BLR, RET, SVC, BRK, UDF.

use super::{sext, Ctx, TResult, Undefined};
use crate::ir::{BinOp, BranchKind, Op, Reg, TrapKind, Width};

/// Translates one branch or exception-generating instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    let insn = c.insn;
    match insn >> 26 {
        // B, BL: op 00101 imm26.
        0b000101 | 0b100101 => {
            let target = c.pc.wrapping_add((sext(c.f(25, 0) as u64, 26) << 2) as u64);
            let kind = if c.bit(31) {
                let ret = c.b.konst(c.next_pc());
                c.b.set(Reg::X(30), ret);
                BranchKind::Call
            } else {
                BranchKind::Jump
            };
            c.end(Op::Jump { target, kind });
            Ok(())
        }
        _ => match c.f(31, 25) {
            0b0101010 if !c.bit(24) && !c.bit(4) => cond_branch(c),
            0b0011010 | 0b1011010 => compare_branch(c),
            0b0011011 | 0b1011011 => test_branch(c),
            0b1101011 => branch_reg(c),
            0b1101010 if c.f(24, 24) == 0 => exception(c),
            0b0000000 if c.f(24, 16) == 0 => {
                // UDF #imm16: permanently undefined.
                c.end(Op::Trap {
                    kind: TrapKind::PermanentlyUndefined,
                    pc: c.pc,
                    insn,
                });
                Ok(())
            }
            _ => Err(Undefined),
        },
    }
}

fn cond_branch(c: &mut Ctx) -> TResult {
    let target = c.pc.wrapping_add((sext(c.f(23, 5) as u64, 19) << 2) as u64);
    let cond = c.f(3, 0) as u8;
    if cond >= 0b1110 {
        c.end(Op::Jump {
            target,
            kind: BranchKind::Jump,
        });
    } else {
        let t = c.b.cond(cond);
        c.end(Op::Branch {
            c: t,
            taken: target,
            fallthrough: c.next_pc(),
        });
    }
    Ok(())
}

/// CBZ, CBNZ.
fn compare_branch(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    let target = c.pc.wrapping_add((sext(c.f(23, 5) as u64, 19) << 2) as u64);
    let v = c.x(c.f(4, 0));
    let v = c.b.bini(BinOp::And, Width::W64, v, w.mask());
    let (taken, fallthrough) = if c.bit(24) {
        (target, c.next_pc())
    } else {
        (c.next_pc(), target)
    };
    c.end(Op::Branch {
        c: v,
        taken,
        fallthrough,
    });
    Ok(())
}

/// TBZ, TBNZ.
fn test_branch(c: &mut Ctx) -> TResult {
    let bitpos = (c.f(31, 31) << 5) | c.f(23, 19);
    let target = c.pc.wrapping_add((sext(c.f(18, 5) as u64, 14) << 2) as u64);
    let v = c.x(c.f(4, 0));
    let v = c.b.bini(BinOp::Lshr, Width::W64, v, bitpos as u64);
    let v = c.b.bini(BinOp::And, Width::W64, v, 1);
    let (taken, fallthrough) = if c.bit(24) {
        (target, c.next_pc())
    } else {
        (c.next_pc(), target)
    };
    c.end(Op::Branch {
        c: v,
        taken,
        fallthrough,
    });
    Ok(())
}

/// BR, BLR, RET (without pointer authentication).
fn branch_reg(c: &mut Ctx) -> TResult {
    if c.f(20, 10) != 0b11111_000000 || c.f(4, 0) != 0 {
        return Err(Undefined);
    }
    let opc = c.f(24, 21);
    let target = c.x(c.f(9, 5));
    let kind = match opc {
        0b0000 => BranchKind::Jump,
        0b0001 => {
            let ret = c.b.konst(c.next_pc());
            c.b.set(Reg::X(30), ret);
            BranchKind::Call
        }
        0b0010 => BranchKind::Return,
        _ => return Err(Undefined),
    };
    c.end(Op::JumpReg { target, kind });
    Ok(())
}

/// SVC, BRK (HVC, SMC, HLT and DCPS are undefined at EL0).
fn exception(c: &mut Ctx) -> TResult {
    match (c.f(23, 21), c.f(4, 0)) {
        (0b000, 0b00001) => {
            c.end(Op::Syscall { next: c.next_pc() });
            Ok(())
        }
        (0b001, 0b00000) => {
            c.end(Op::Trap {
                kind: TrapKind::Breakpoint,
                pc: c.pc,
                insn: c.insn,
            });
            Ok(())
        }
        _ => Err(Undefined),
    }
}
