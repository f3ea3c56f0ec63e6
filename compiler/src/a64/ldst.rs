//! Loads and stores of general and SIMD&FP registers (ARM ARM C4.1.88): literal, pair
//! (offset, pre-/post-index, non-temporal), single register (unscaled, pre-/post-index,
//! unprivileged, unsigned offset, register offset with extend/shift), load-acquire /
//! store-release (LDAR, STLR, LDAPR, LDAPUR, STLUR). Exclusives and LSE atomics live in
//! [`super::atomic`]. Guest memory is sequentially consistent here, so the acquire/release
//! forms are plain accesses; prefetches do nothing.

use super::{dp_reg::extend_reg, sext, Ctx, TResult, Undefined};
use crate::ir::{BinOp, Op, Temp, UnOp, Width};

/// What one register transfer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Store a general register.
    Store,
    /// Load a general register, zero-extended.
    Load,
    /// Load a general register, sign-extended to 64 bits.
    LoadSigned64,
    /// Load a general register, sign-extended to 32 bits (then zero-extended).
    LoadSigned32,
    /// Load a SIMD&FP register (upper bytes zeroed).
    LoadVec,
    /// Store a SIMD&FP register.
    StoreVec,
    /// Prefetch hint: no effect.
    Prefetch,
}

/// Translates one load/store instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    let v = c.bit(26);
    match (c.f(29, 27), c.f(25, 24)) {
        (0b011, 0b00) => literal(c, v),
        (0b101, _) => pair(c, v),
        (0b111, 0b00) if !c.bit(21) => imm9(c, v),
        (0b111, 0b00) if c.f(11, 10) == 0b10 => register_offset(c, v),
        (0b111, 0b00) if c.f(11, 10) == 0b00 && !v && c.f(23, 10) == 0b10_1111_1111_0000 => {
            // LDAPR{B,H}: o3=1, opc=100, Rs=11111.
            let size = 1u8 << c.f(31, 30);
            let addr = c.xsp(c.f(9, 5));
            let wb = access(c, Kind::Load, size, addr, c.f(4, 0));
            finish(c, wb, None);
            Ok(())
        }
        (0b111, 0b01) => unsigned_offset(c, v),
        (0b001, 0b00) if !v && c.bit(23) && !c.bit(21) => ordered(c),
        (0b011, 0b01) if !v && !c.bit(21) && c.f(11, 10) == 0 => rcpc_unscaled(c),
        _ => Err(Undefined),
    }
}

/// Kind and size in bytes of a single-register access from size, V and opc.
fn single_kind(size: u32, v: bool, opc: u32) -> Option<(Kind, u8)> {
    if v {
        let scale = ((opc >> 1) << 2) | size;
        if scale > 4 {
            return None;
        }
        let kind = if opc & 1 == 1 {
            Kind::LoadVec
        } else {
            Kind::StoreVec
        };
        return Some((kind, 1 << scale));
    }
    let kind = match (opc, size) {
        (0b00, _) => Kind::Store,
        (0b01, _) => Kind::Load,
        (0b10, 0b11) => Kind::Prefetch,
        (0b10, _) => Kind::LoadSigned64,
        (0b11, 0b00 | 0b01) => Kind::LoadSigned32,
        _ => return None,
    };
    Some((kind, 1 << size))
}

/// Emits one transfer; loads of general registers return their value to be written
/// after every access of the instruction has succeeded.
fn access(c: &mut Ctx, kind: Kind, size: u8, addr: Temp, rt: u32) -> Option<(u32, Temp)> {
    match kind {
        Kind::Store => {
            let v = c.x(rt);
            c.b.store(addr, v, size);
            None
        }
        Kind::StoreVec => {
            c.b.push(Op::StoreVec {
                reg: rt as u8,
                addr,
                size,
            });
            None
        }
        Kind::LoadVec => {
            c.b.push(Op::LoadVec {
                reg: rt as u8,
                addr,
                size,
            });
            None
        }
        Kind::Prefetch => None,
        Kind::Load | Kind::LoadSigned64 | Kind::LoadSigned32 => {
            let mut v = c.b.load(addr, size);
            if kind != Kind::Load {
                let ext = match size {
                    1 => UnOp::Sext8,
                    2 => UnOp::Sext16,
                    _ => UnOp::Sext32,
                };
                v = c.b.un(ext, Width::W64, v);
                if kind == Kind::LoadSigned32 {
                    v = c.b.bini(BinOp::And, Width::W64, v, 0xffff_ffff);
                }
            }
            Some((rt, v))
        }
    }
}

/// Writes loaded registers, then the base-register writeback.
fn finish(c: &mut Ctx, loaded: Option<(u32, Temp)>, writeback: Option<(u32, Temp)>) {
    if let Some((rt, v)) = loaded {
        c.set_x(rt, v);
    }
    if let Some((rn, v)) = writeback {
        c.set_xsp(rn, v);
    }
}

/// LDR (literal) for W, X, S, D, Q; LDRSW (literal); PRFM (literal).
fn literal(c: &mut Ctx, v: bool) -> TResult {
    let opc = c.f(31, 30);
    let (kind, size) = match (v, opc) {
        (false, 0b00) => (Kind::Load, 4),
        (false, 0b01) => (Kind::Load, 8),
        (false, 0b10) => (Kind::LoadSigned64, 4),
        (false, _) => (Kind::Prefetch, 8),
        (true, 0b11) => return Err(Undefined),
        (true, _) => (Kind::LoadVec, 4 << opc),
    };
    let target = c.pc.wrapping_add((sext(c.f(23, 5) as u64, 19) << 2) as u64);
    let addr = c.b.konst(target);
    let wb = access(c, kind, size, addr, c.f(4, 0));
    finish(c, wb, None);
    Ok(())
}

/// Base address and writeback for the indexing mode `idx` (0 = offset/no-allocate,
/// 1 = post-index, 2 = offset, 3 = pre-index in pair numbering).
fn indexed(
    c: &mut Ctx,
    rn: u32,
    offset: i64,
    post: bool,
    writeback: bool,
) -> (Temp, Option<(u32, Temp)>) {
    let base = c.xsp(rn);
    let moved = c.b.bini(BinOp::Add, Width::W64, base, offset as u64);
    let addr = if post { base } else { moved };
    (addr, writeback.then_some((rn, moved)))
}

/// LDP, STP, LDPSW, LDNP, STNP for general and SIMD&FP registers.
fn pair(c: &mut Ctx, v: bool) -> TResult {
    let opc = c.f(31, 30);
    let load = c.bit(22);
    let idx = c.f(24, 23);
    let (kind, size) = match (v, opc, load) {
        (false, 0b00, false) => (Kind::Store, 4),
        (false, 0b00, true) => (Kind::Load, 4),
        (false, 0b01, true) if idx != 0 => (Kind::LoadSigned64, 4),
        (false, 0b10, false) => (Kind::Store, 8),
        (false, 0b10, true) => (Kind::Load, 8),
        (true, 0b11, _) | (false, _, _) => return Err(Undefined),
        (true, _, false) => (Kind::StoreVec, 4 << opc),
        (true, _, true) => (Kind::LoadVec, 4 << opc),
    };
    let offset = sext(c.f(21, 15) as u64, 7) * size as i64;
    let (rt2, rn, rt) = (c.f(14, 10), c.f(9, 5), c.f(4, 0));
    let (addr, wb) = indexed(c, rn, offset, idx == 0b01, idx == 0b01 || idx == 0b11);
    let addr2 = c.b.bini(BinOp::Add, Width::W64, addr, size as u64);
    let first = access(c, kind, size, addr, rt);
    let second = access(c, kind, size, addr2, rt2);
    finish(c, first, None);
    finish(c, second, wb);
    Ok(())
}

/// LDUR/STUR, post-index, unprivileged (LDTR/STTR) and pre-index forms with a signed imm9.
fn imm9(c: &mut Ctx, v: bool) -> TResult {
    let (kind, size) = single_kind(c.f(31, 30), v, c.f(23, 22)).ok_or(Undefined)?;
    let idx = c.f(11, 10);
    if idx == 0b10 && v {
        return Err(Undefined);
    }
    if kind == Kind::Prefetch && idx != 0b00 {
        return Err(Undefined);
    }
    let offset = sext(c.f(20, 12) as u64, 9);
    let (rn, rt) = (c.f(9, 5), c.f(4, 0));
    let (addr, wb) = indexed(c, rn, offset, idx == 0b01, idx == 0b01 || idx == 0b11);
    let loaded = access(c, kind, size, addr, rt);
    finish(c, loaded, wb);
    Ok(())
}

/// LDR/STR (register offset) with LSL, UXTW, SXTW or SXTX and optional scaling.
fn register_offset(c: &mut Ctx, v: bool) -> TResult {
    let (kind, size) = single_kind(c.f(31, 30), v, c.f(23, 22)).ok_or(Undefined)?;
    let option = c.f(15, 13);
    if option & 0b010 == 0 {
        return Err(Undefined);
    }
    let shift = if c.bit(12) { size.trailing_zeros() } else { 0 };
    let (rm, rn, rt) = (c.f(20, 16), c.f(9, 5), c.f(4, 0));
    let offset = extend_reg(c, Width::W64, rm, option, shift);
    let base = c.xsp(rn);
    let addr = c.b.bin(BinOp::Add, Width::W64, base, offset);
    let loaded = access(c, kind, size, addr, rt);
    finish(c, loaded, None);
    Ok(())
}

/// LDR/STR (unsigned scaled 12-bit offset).
fn unsigned_offset(c: &mut Ctx, v: bool) -> TResult {
    let (kind, size) = single_kind(c.f(31, 30), v, c.f(23, 22)).ok_or(Undefined)?;
    let offset = c.f(21, 10) as i64 * size as i64;
    let (rn, rt) = (c.f(9, 5), c.f(4, 0));
    let (addr, _) = indexed(c, rn, offset, false, false);
    let loaded = access(c, kind, size, addr, rt);
    finish(c, loaded, None);
    Ok(())
}

/// LDAR, LDLAR, STLR, STLLR (o2 = 1, o1 = 0). Rs and Rt2 are should-be-one fields that
/// hardware (and qemu) ignore, so other values execute the same way.
fn ordered(c: &mut Ctx) -> TResult {
    let size = 1u8 << c.f(31, 30);
    let kind = if c.bit(22) { Kind::Load } else { Kind::Store };
    let addr = c.xsp(c.f(9, 5));
    let loaded = access(c, kind, size, addr, c.f(4, 0));
    finish(c, loaded, None);
    Ok(())
}

/// LDAPUR*, STLUR* (RCpc, unscaled signed imm9).
fn rcpc_unscaled(c: &mut Ctx) -> TResult {
    let size_f = c.f(31, 30);
    let kind = match (c.f(23, 22), size_f) {
        (0b00, _) => Kind::Store,
        (0b01, _) => Kind::Load,
        (0b10, 0b11) => return Err(Undefined),
        (0b10, _) => Kind::LoadSigned64,
        (0b11, 0b00 | 0b01) => Kind::LoadSigned32,
        _ => return Err(Undefined),
    };
    let offset = sext(c.f(20, 12) as u64, 9);
    let (addr, _) = indexed(c, c.f(9, 5), offset, false, false);
    let loaded = access(c, kind, 1 << size_f, addr, c.f(4, 0));
    finish(c, loaded, None);
    Ok(())
}
