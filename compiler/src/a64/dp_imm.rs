//! Data processing - immediate: PC-relative addressing, add/sub, logical, move wide,
//! bitfield and extract (ARM ARM C4.1.86). Register forms sharing an opcode go to
//! [`super::dp_reg`].

use super::{Ctx, TResult, Undefined};
use crate::ir::{BinOp, Width};

/// Translates one data-processing (immediate) instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    if c.f(28, 26) != 0b100 {
        return super::dp_reg::translate(c);
    }
    match c.f(25, 23) {
        0b000 | 0b001 => pc_rel(c),
        0b010 => add_sub(c),
        0b100 => logical(c),
        0b101 => move_wide(c),
        0b110 => bitfield(c),
        0b111 => extract(c),
        _ => Err(Undefined),
    }
}

/// ADR, ADRP.
fn pc_rel(c: &mut Ctx) -> TResult {
    let imm = (c.f(23, 5) << 2 | c.f(30, 29)) as u64;
    let off = super::sext(imm, 21);
    let value = if c.bit(31) {
        (c.pc & !0xfff).wrapping_add((off << 12) as u64)
    } else {
        c.pc.wrapping_add(off as u64)
    };
    let t = c.b.konst(value);
    c.set_x(c.f(4, 0), t);
    Ok(())
}

/// ADD, ADDS, SUB, SUBS (immediate).
fn add_sub(c: &mut Ctx) -> TResult {
    let w = Width::from_sf(c.bit(31));
    let (sub, setflags) = (c.bit(30), c.bit(29));
    let imm = match c.f(22, 22) {
        0 => c.f(21, 10) as u64,
        _ => (c.f(21, 10) as u64) << 12,
    };
    let (rn, rd) = (c.f(9, 5), c.f(4, 0));
    let op1 = c.xsp(rn);
    if setflags {
        let (op2, carry) = if sub {
            (c.b.konst(!imm & w.mask()), 1)
        } else {
            (c.b.konst(imm), 0)
        };
        let carry = c.b.konst(carry);
        let r = c.b.add_flags(w, op1, op2, carry);
        c.set_x(rd, r);
    } else {
        let op2 = c.b.konst(imm);
        let r =
            c.b.bin(if sub { BinOp::Sub } else { BinOp::Add }, w, op1, op2);
        c.set_xsp(rd, r);
    }
    Ok(())
}

/// DecodeBitMasks from the ARM pseudocode: (wmask, tmask), or `None` when reserved.
pub fn decode_bit_masks(
    n: u32,
    imms: u32,
    immr: u32,
    immediate: bool,
    datasize: u32,
) -> Option<(u64, u64)> {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return None;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (1 << len) > datasize {
        return None;
    }
    let levels = (1u32 << len) - 1;
    if immediate && (imms & levels) == levels {
        return None;
    }
    let s = imms & levels;
    let r = immr & levels;
    let d = s.wrapping_sub(r) & levels;
    let esize = 1u32 << len;
    let ones = |k: u32| if k >= 64 { u64::MAX } else { (1u64 << k) - 1 };
    let emask = ones(esize);
    let welem = ones(s + 1);
    let telem = ones(d + 1);
    let ror = |x: u64| {
        if r == 0 {
            x
        } else {
            ((x >> r) | (x << (esize - r))) & emask
        }
    };
    let replicate = |x: u64| {
        let mut out = 0u64;
        let mut i = 0;
        while i < datasize {
            out |= x << i;
            i += esize;
        }
        out & ones(datasize)
    };
    Some((replicate(ror(welem)), replicate(telem)))
}

/// AND, ORR, EOR, ANDS (immediate).
fn logical(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let n = c.f(22, 22);
    if !sf && n == 1 {
        return Err(Undefined);
    }
    let (imm, _) =
        decode_bit_masks(n, c.f(15, 10), c.f(21, 16), true, w.bits()).ok_or(Undefined)?;
    let (rn, rd) = (c.f(9, 5), c.f(4, 0));
    let op1 = c.x(rn);
    let op2 = c.b.konst(imm);
    let opc = c.f(30, 29);
    let op = [BinOp::And, BinOp::Or, BinOp::Xor, BinOp::And][opc as usize];
    let r = c.b.bin(op, w, op1, op2);
    if opc == 0b11 {
        c.b.push(crate::ir::Op::LogicFlags { w, a: r });
        c.set_x(rd, r);
    } else {
        c.set_xsp(rd, r);
    }
    Ok(())
}

/// MOVN, MOVZ, MOVK.
fn move_wide(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let hw = c.f(22, 21);
    let opc = c.f(30, 29);
    if (!sf && hw >= 2) || opc == 0b01 {
        return Err(Undefined);
    }
    let pos = hw * 16;
    let imm = (c.f(20, 5) as u64) << pos;
    let rd = c.f(4, 0);
    let r = match opc {
        0b00 => c.b.konst(!imm & w.mask()),
        0b10 => c.b.konst(imm),
        _ => {
            let old = c.x(rd);
            let kept = c.b.bini(BinOp::And, w, old, !(0xffffu64 << pos));
            c.b.bini(BinOp::Or, w, kept, imm)
        }
    };
    c.set_x(rd, r);
    Ok(())
}

/// SBFM, BFM, UBFM (and their aliases LSL/LSR/ASR/SXT*/UXT*/BFI/BFXIL/SBFX/UBFX).
fn bitfield(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let opc = c.f(30, 29);
    let n = c.f(22, 22);
    let (immr, imms) = (c.f(21, 16), c.f(15, 10));
    if opc == 0b11 || (sf && n != 1) || (!sf && (n != 0 || immr >= 32 || imms >= 32)) {
        return Err(Undefined);
    }
    let (wmask, tmask) = decode_bit_masks(n, imms, immr, false, w.bits()).ok_or(Undefined)?;
    let (rn, rd) = (c.f(9, 5), c.f(4, 0));
    let src = c.x(rn);
    if opc != 0b01 {
        // SBFM and UBFM are two shifts: bit `imms` to the top, then an arithmetic (SBFM) or
        // logical (UBFM) shift right that puts the field at its place (bit 0 for
        // SBFX/UBFX/ASR/LSR/SXT*/UXT*, `-immr mod width` for SBFIZ/UBFIZ/LSL, whose field
        // fits: imms < immr). The host compiler sees `x << 32 >> 32` as an extension.
        let up = w.bits() - 1 - imms;
        let down = if imms >= immr {
            up + immr
        } else {
            immr - 1 - imms
        };
        let right = if opc == 0b00 {
            BinOp::Ashr
        } else {
            BinOp::Lshr
        };
        let r = match (up, down) {
            // Still an op at the width, so a W result is zero-extended.
            (0, 0) => c.b.bini(BinOp::And, w, src, w.mask()),
            (0, d) => c.b.bini(right, w, src, d as u64),
            (u, 0) => c.b.bini(BinOp::Shl, w, src, u as u64),
            (u, d) => {
                let top = c.b.bini(BinOp::Shl, w, src, u as u64);
                c.b.bini(right, w, top, d as u64)
            }
        };
        c.set_x(rd, r);
        return Ok(());
    }
    let rot = c.b.bini(BinOp::Ror, w, src, immr as u64);
    let bot_src = c.b.bini(BinOp::And, w, rot, wmask);
    let bot = if opc == 0b01 {
        // BFM keeps the destination bits outside the inserted field.
        let dst = c.x(rd);
        let kept = c.b.bini(BinOp::And, w, dst, !wmask);
        c.b.bin(BinOp::Or, w, kept, bot_src)
    } else {
        bot_src
    };
    let bot_t = c.b.bini(BinOp::And, w, bot, tmask);
    let r = match opc {
        // SBFM: top = Replicate(src<S>).
        0b00 => {
            let up = c.b.bini(BinOp::Shl, w, src, (w.bits() - 1 - imms) as u64);
            let top = c.b.bini(BinOp::Ashr, w, up, (w.bits() - 1) as u64);
            let top_t = c.b.bini(BinOp::And, w, top, !tmask);
            c.b.bin(BinOp::Or, w, top_t, bot_t)
        }
        // BFM: top = dst.
        0b01 => {
            let dst = c.x(rd);
            let top_t = c.b.bini(BinOp::And, w, dst, !tmask);
            c.b.bin(BinOp::Or, w, top_t, bot_t)
        }
        // UBFM: top = 0.
        _ => bot_t,
    };
    c.set_x(rd, r);
    Ok(())
}

/// EXTR (and ROR immediate).
fn extract(c: &mut Ctx) -> TResult {
    let sf = c.bit(31);
    let w = Width::from_sf(sf);
    let n = c.f(22, 22);
    let lsb = c.f(15, 10);
    if c.f(30, 29) != 0 || c.bit(21) || (sf as u32) != n || (!sf && lsb >= 32) {
        return Err(Undefined);
    }
    let (rm, rn, rd) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let hi = c.x(rn);
    let lo = c.x(rm);
    let r = if lsb == 0 {
        // Still an op at the width, so a W result is zero-extended.
        c.b.bini(BinOp::And, w, lo, w.mask())
    } else {
        let a = c.b.bini(BinOp::Lshr, w, lo, lsb as u64);
        let b = c.b.bini(BinOp::Shl, w, hi, (w.bits() - lsb) as u64);
        c.b.bin(BinOp::Or, w, a, b)
    };
    c.set_x(rd, r);
    Ok(())
}
