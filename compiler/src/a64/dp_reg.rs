//! Data processing - register: logical and add/sub (shifted and extended register), add/sub
//! with carry, conditional compare and select, 1-, 2- and 3-source (ARM ARM C4.1.95).

use super::{Ctx, TResult, Undefined};
use crate::ir::{BinOp, Helper, Op, Reg, Temp, UnOp, Width};
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// Translates one data-processing (register) instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    // Vector ADD/SUB/AND/ORR/... share their yaxpeax opcodes with the general forms.
    if c.f(27, 25) == 0b111 {
        return super::simd::translate(c);
    }
    if c.f(27, 25) != 0b101 {
        return Err(Undefined);
    }
    if !c.bit(28) {
        return match (c.bit(24), c.bit(21)) {
            (false, _) => logical_shifted(c),
            (true, false) => add_sub_shifted(c),
            (true, true) => add_sub_extended(c),
        };
    }
    if c.bit(24) {
        return dp_3src(c);
    }
    match c.f(23, 21) {
        0b000 if c.f(15, 10) == 0 => add_sub_carry(c),
        0b010 if !c.bit(10) && !c.bit(4) => cond_compare(c),
        0b100 => cond_select(c),
        0b110 if c.bit(30) => dp_1src(c),
        0b110 => dp_2src(c),
        _ => Err(Undefined),
    }
}

/// Shift(reg, type, amount) from the pseudocode; `ror` is only valid for logical ops.
fn shift_reg(c: &mut Ctx, w: Width, rm: u32, shift: u32, amount: u32) -> Temp {
    let v = c.x(rm);
    if amount == 0 {
        return v;
    }
    let op = [BinOp::Shl, BinOp::Lshr, BinOp::Ashr, BinOp::Ror][shift as usize];
    c.b.bini(op, w, v, amount as u64)
}

/// AND, BIC, ORR, ORN, EOR, EON, ANDS, BICS (shifted register).
fn logical_shifted(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let imm6 = c.f(15, 10);
    if !sf && imm6 >= 32 {
        return Err(Undefined);
    }
    let (rm, rn, rd) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let mut op2 = shift_reg(c, w, rm, c.f(23, 22), imm6);
    if c.bit(21) {
        op2 = c.b.un(UnOp::Not, w, op2);
    }
    let op1 = c.x(rn);
    let opc = c.f(30, 29);
    let op = [BinOp::And, BinOp::Or, BinOp::Xor, BinOp::And][opc as usize];
    let r = c.b.bin(op, w, op1, op2);
    if opc == 0b11 {
        c.b.push(Op::LogicFlags { w, a: r });
    }
    c.set_x(rd, r);
    Ok(())
}

/// Emits `op1 ± op2` with or without flags and writes the destination.
fn add_sub_common(c: &mut Ctx, w: Width, op1: Temp, op2: Temp, rd: u32, rd_is_sp: bool) {
    let (sub, setflags) = (c.bit(30), c.bit(29));
    if setflags {
        let (op2, carry) = if sub {
            (c.b.un(UnOp::Not, w, op2), 1)
        } else {
            (op2, 0)
        };
        let carry = c.b.konst(carry);
        let r = c.b.add_flags(w, op1, op2, carry);
        c.set_x(rd, r);
    } else {
        let r =
            c.b.bin(if sub { BinOp::Sub } else { BinOp::Add }, w, op1, op2);
        if rd_is_sp {
            c.set_xsp(rd, r)
        } else {
            c.set_x(rd, r)
        }
    }
}

/// ADD, ADDS, SUB, SUBS (shifted register).
fn add_sub_shifted(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let (shift, imm6) = (c.f(23, 22), c.f(15, 10));
    if shift == 0b11 || (!sf && imm6 >= 32) {
        return Err(Undefined);
    }
    let (rm, rn, rd) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let op2 = shift_reg(c, w, rm, shift, imm6);
    let op1 = c.x(rn);
    add_sub_common(c, w, op1, op2, rd, false);
    Ok(())
}

/// ExtendReg(m, option, shift) from the pseudocode.
pub fn extend_reg(c: &mut Ctx, w: Width, rm: u32, option: u32, shift: u32) -> Temp {
    let v = c.x(rm);
    let ext = match option {
        0b000 => c.b.bini(BinOp::And, Width::W64, v, 0xff),
        0b001 => c.b.bini(BinOp::And, Width::W64, v, 0xffff),
        0b010 => c.b.bini(BinOp::And, Width::W64, v, 0xffff_ffff),
        0b100 => c.b.un(UnOp::Sext8, Width::W64, v),
        0b101 => c.b.un(UnOp::Sext16, Width::W64, v),
        0b110 => c.b.un(UnOp::Sext32, Width::W64, v),
        _ => v,
    };
    if shift == 0 {
        ext
    } else {
        c.b.bini(BinOp::Shl, w, ext, shift as u64)
    }
}

/// ADD, ADDS, SUB, SUBS (extended register).
fn add_sub_extended(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    let (option, imm3) = (c.f(15, 13), c.f(12, 10));
    if imm3 > 4 || c.f(23, 22) != 0 {
        return Err(Undefined);
    }
    let (rm, rn, rd) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let op2 = extend_reg(c, w, rm, option, imm3);
    let op1 = c.xsp(rn);
    add_sub_common(c, w, op1, op2, rd, true);
    Ok(())
}

/// ADC, ADCS, SBC, SBCS.
fn add_sub_carry(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    let (sub, setflags) = (c.bit(30), c.bit(29));
    let (rm, rn, rd) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let op1 = c.x(rn);
    let mut op2 = c.x(rm);
    if sub {
        op2 = c.b.un(UnOp::Not, w, op2);
    }
    let nzcv = c.b.get(Reg::Nzcv);
    let carry = c.b.bini(BinOp::Lshr, Width::W64, nzcv, 29);
    let carry = c.b.bini(BinOp::And, Width::W64, carry, 1);
    let r = if setflags {
        c.b.add_flags(w, op1, op2, carry)
    } else {
        let s = c.b.bin(BinOp::Add, w, op1, op2);
        c.b.bin(BinOp::Add, w, s, carry)
    };
    c.set_x(rd, r);
    Ok(())
}

/// CCMN, CCMP (register and immediate).
fn cond_compare(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    if !c.bit(29) {
        return Err(Undefined);
    }
    let sub = c.bit(30);
    let cond = c.f(15, 12) as u8;
    let nzcv_imm = (c.f(3, 0) as u64) << 28;
    let holds = c.b.cond(cond);
    let op1 = c.x(c.f(9, 5));
    let mut op2 = if c.bit(11) {
        c.b.konst(c.f(20, 16) as u64)
    } else {
        c.x(c.f(20, 16))
    };
    if sub {
        op2 = c.b.un(UnOp::Not, w, op2);
    }
    let carry = c.b.konst(sub as u64);
    c.b.add_flags(w, op1, op2, carry);
    let computed = c.b.get(Reg::Nzcv);
    let imm = c.b.konst(nzcv_imm);
    let flags = c.b.select(holds, computed, imm);
    c.b.set(Reg::Nzcv, flags);
    Ok(())
}

/// CSEL, CSINC, CSINV, CSNEG.
fn cond_select(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    if c.bit(29) {
        return Err(Undefined);
    }
    let (rm, cond, rn, rd) = (c.f(20, 16), c.f(15, 12) as u8, c.f(9, 5), c.f(4, 0));
    let holds = c.b.cond(cond);
    let a = c.x(rn);
    let m = c.x(rm);
    let b = match (c.bit(30), c.bit(10)) {
        (false, false) => m,
        (false, true) => c.b.bini(BinOp::Add, w, m, 1),
        (true, false) => c.b.un(UnOp::Not, w, m),
        (true, true) => c.b.un(UnOp::Neg, w, m),
    };
    let mut r = c.b.select(holds, a, b);
    if w == Width::W32 {
        // The selected register operand was read at 64 bits; W results are zero-extended.
        r = c.b.bini(BinOp::And, Width::W64, r, 0xffff_ffff);
    }
    c.set_x(rd, r);
    Ok(())
}

/// RBIT, REV16, REV32, REV, CLZ, CLS.
fn dp_1src(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    if c.f(20, 16) != 0 || c.bit(29) {
        return Err(Undefined);
    }
    let op = match (c.f(15, 10), sf) {
        (0b000000, _) => UnOp::Rbit,
        (0b000001, _) => UnOp::Rev16,
        (0b000010, false) => UnOp::Rev,
        (0b000010, true) => UnOp::Rev32,
        (0b000011, true) => UnOp::Rev,
        (0b000100, _) => UnOp::Clz,
        (0b000101, _) => UnOp::Cls,
        _ => return Err(Undefined),
    };
    let a = c.x(c.f(9, 5));
    let r = c.b.un(op, w, a);
    c.set_x(c.f(4, 0), r);
    Ok(())
}

/// UDIV, SDIV, LSLV, LSRV, ASRV, RORV, CRC32*.
fn dp_2src(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    if c.bit(29) {
        return Err(Undefined);
    }
    let opcode = c.f(15, 10);
    let op = match opcode {
        0b000010 => BinOp::UDiv,
        0b000011 => BinOp::SDiv,
        0b001000 => BinOp::Shl,
        0b001001 => BinOp::Lshr,
        0b001010 => BinOp::Ashr,
        0b001011 => BinOp::Ror,
        0b010000..=0b010111 => {
            let sz = opcode & 3;
            if (sz == 3) != sf {
                return Err(Undefined);
            }
            c.call(&CRC32);
            return Ok(());
        }
        _ => return Err(Undefined),
    };
    let a = c.x(c.f(9, 5));
    let b = c.x(c.f(20, 16));
    let r = c.b.bin(op, w, a, b);
    c.set_x(c.f(4, 0), r);
    Ok(())
}

/// MADD, MSUB, SMADDL, SMSUBL, UMADDL, UMSUBL, SMULH, UMULH.
fn dp_3src(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let (op54, op31, o0) = (c.f(30, 29), c.f(23, 21), c.bit(15));
    let (rm, ra, rn, rd) = (c.f(20, 16), c.f(14, 10), c.f(9, 5), c.f(4, 0));
    if op54 != 0 || (!sf && op31 != 0) {
        return Err(Undefined);
    }
    let r = match (op31, o0) {
        (0b000, _) => {
            let n = c.x(rn);
            let m = c.x(rm);
            let a = c.x(ra);
            let p = c.b.bin(BinOp::Mul, w, n, m);
            c.b.bin(if o0 { BinOp::Sub } else { BinOp::Add }, w, a, p)
        }
        (0b001 | 0b101, _) => {
            let n = c.x(rn);
            let m = c.x(rm);
            let (n, m) = if op31 == 0b001 {
                (
                    c.b.un(UnOp::Sext32, Width::W64, n),
                    c.b.un(UnOp::Sext32, Width::W64, m),
                )
            } else {
                (
                    c.b.bini(BinOp::And, Width::W64, n, 0xffff_ffff),
                    c.b.bini(BinOp::And, Width::W64, m, 0xffff_ffff),
                )
            };
            let a = c.x(ra);
            let p = c.b.bin(BinOp::Mul, Width::W64, n, m);
            c.b.bin(if o0 { BinOp::Sub } else { BinOp::Add }, Width::W64, a, p)
        }
        // Ra is a should-be-one field that hardware ignores.
        (0b010, false) | (0b110, false) => {
            let n = c.x(rn);
            let m = c.x(rm);
            c.b.bin(
                if op31 == 0b010 {
                    BinOp::SMulH
                } else {
                    BinOp::UMulH
                },
                Width::W64,
                n,
                m,
            )
        }
        _ => return Err(Undefined),
    };
    c.set_x(rd, r);
    Ok(())
}

/// CRC32B/H/W/X and CRC32CB/H/W/X: bit-reflected CRC with the IEEE or Castagnoli polynomial.
static CRC32: Helper = Helper {
    name: "crc32",
    func: crc32,
    gpr: true,
};

fn crc32(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (rm, rn, rd) = (
        super::bits(insn, 20, 16),
        super::bits(insn, 9, 5),
        super::bits(insn, 4, 0),
    );
    let size = 1u32 << super::bits(insn, 11, 10);
    let poly: u32 = if super::bit(insn, 12) {
        0x82f6_3b78
    } else {
        0xedb8_8320
    };
    let reg = |r: u32| if r == 31 { 0 } else { st.x[r as usize] };
    let mut crc = reg(rn) as u32;
    let data = reg(rm);
    for i in 0..size {
        crc ^= (data >> (8 * i)) as u8 as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    if rd != 31 {
        st.x[rd as usize] = crc as u64;
    }
    Ok(())
}

/// The helpers of this module (for the registry of [`super::helpers`]).
pub(super) static HELPERS: &[&Helper] = &[&CRC32];
