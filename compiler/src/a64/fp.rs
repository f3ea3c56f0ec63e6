//! Floating-point instructions, scalar and Advanced SIMD: every yaxpeax-arm opcode starting
//! with `F`, plus SCVTF/UCVTF.
//!
//! The translator only validates the encoding (unallocated, reserved and FP16 arithmetic forms
//! are `Undefined` at translation time) and emits one [`Helper`] call per instruction; each
//! helper executes one encoding group of the ARM ARM (e.g. "Floating-point data-processing
//! (2 source)") on the whole CPU state, re-reading its fields from the instruction word.
//! The arithmetic is the software implementation in [`soft`], which follows the ARM
//! pseudocode (`FPUnpack`, `FPRound`, `FPProcessNaNs`, ...) so results, NaN payloads and
//! FPSR flags are bit-exact for every FPCR setting (rounding mode, FZ, DN, AHP).
//! `fast` short-cuts FADD/FSUB/FMUL/FDIV with host arithmetic in the common case
//! (round to nearest, no FZ, operands and result well inside the normal range).

use yaxpeax_arm::armv8::a64::Opcode;

use super::{bit, bits, Ctx, Handler, TResult, Undefined};
use crate::interp::cond_holds;
use crate::ir::Helper;
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

mod fast;
pub mod soft;
mod vector;

#[cfg(test)]
mod tests;

use soft::{Env, Fmt, Rounding, D, H, S};

/// Writable FPCR bits: AHP (26), DN (25), FZ (24), RMode (23:22), Stride (21:20), FZ16 (19)
/// and Len (18:16). The trap-enable bits (IDE, IXE, UFE, OFE, DZE, IOE) are RAZ/WI as on
/// most implementations and in QEMU, since trapped exceptions are not supported.
pub const FPCR_MASK: u64 = 0x07ff_0000;
/// Writable FPSR bits (cumulative exception flags and QC).
pub const FPSR_MASK: u64 = 0x0800_009f;

/// Handlers of this class, or `None` when the opcode is not one of them.
pub fn handler_for(op: &Opcode) -> Option<Handler> {
    use Opcode::*;
    match op {
        FMADD | FMSUB | FNMADD | FNMSUB | SCVTF | UCVTF | FCVTZS | FCVTZU | FMOV | FABS | FNEG
        | FSQRT | FRINTN | FRINTP | FRINTM | FRINTZ | FRINTA | FRINTX | FRINTI | FRINT32Z
        | FRINT32X | FRINT64Z | FRINT64X | FCVT | FCMP | FCMPE | FMUL | FDIV | FADD | FSUB
        | FMAX | FMIN | FMAXNM | FMINNM | FNMUL | FCSEL | FCCMP | FCCMPE | FMULX | FMLSL
        | FMLAL | FCMLA | FMLA | FCMEQ | FRECPS | FMAXNMP | FMINMNP | FADDP | FCMGE | FACGE
        | FMAXP | FCVTN | FCVTN2 | FCMGT | FCVTL | FCVTL2 | FCVTNS | FCVTPS | FCVTMS | FCVTAS
        | FRECPE | FCVTXN | FCVTXN2 | FCVTNU | FCVTMU | FCVTAU | FMLS | FRECPX | FRSQRTE
        | FCVTPU | FCMLT | FCMLE | FMAXNMV | FMINNMV | FMAXV | FMINV | FRSQRTS | FMINNMP
        | FMLAL2 | FMLSL2 | FABD | FACGT | FMINP | FJCVTZS | FCADD => Some(translate as Handler),
        _ => None,
    }
}

/// Validates the encoding and emits the call to its group's helper.
fn translate(ctx: &mut Ctx) -> TResult {
    let helper = decode(ctx.insn).ok_or(Undefined)?;
    ctx.call(helper);
    Ok(())
}

/// The helper executing `insn`, or `None` if it is not an allocated ARMv8.0 FP encoding.
pub fn decode(insn: u32) -> Option<&'static Helper> {
    decode_scalar(insn).or_else(|| vector::decode(insn))
}

/// Runs the helper for `insn` directly (for tests and tools).
pub fn execute(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    match decode(insn) {
        Some(h) => (h.func)(st, mem, insn),
        None => Err(Fault::Undefined { insn }),
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// Fault for a word the helper cannot execute (never expected after [`decode`]).
fn undef(insn: u32) -> Fault {
    Fault::Undefined { insn }
}

/// The low `fmt.n` bits of V[n].
fn vs(st: &CpuState, n: u32, fmt: Fmt) -> u64 {
    st.v[(n & 31) as usize] as u64 & fmt.mask()
}

/// Writes a scalar to V[d], zeroing the rest of the register.
fn set_vs(st: &mut CpuState, d: u32, fmt: Fmt, val: u64) {
    st.v[(d & 31) as usize] = (val & fmt.mask()) as u128;
}

/// X[n] (31 is XZR) truncated to 32 bits unless `sf`.
fn xreg(st: &CpuState, n: u32, sf: bool) -> u64 {
    let v = if n == 31 { 0 } else { st.x[n as usize] };
    if sf {
        v
    } else {
        v & 0xffff_ffff
    }
}

/// Writes X[d] (31 is XZR), zero-extending a 32-bit value.
fn set_xreg(st: &mut CpuState, d: u32, sf: bool, v: u64) {
    if d != 31 {
        st.x[d as usize] = if sf { v } else { v & 0xffff_ffff };
    }
}

/// The scalar FP format of a `type`/`ftype` field (00 single, 01 double, 11 half).
fn ftype(ty: u32) -> Option<Fmt> {
    match ty {
        0 => Some(S),
        1 => Some(D),
        3 => Some(H),
        _ => None,
    }
}

/// Adds the raised exception flags to FPSR.
fn finish(st: &mut CpuState, env: &Env) {
    st.fpsr |= env.flags as u64;
}

/// `VFPExpandImm(imm8)` for single or double precision.
pub fn vfp_expand_imm(fmt: Fmt, imm8: u32) -> u64 {
    let imm8 = imm8 as u64;
    let sign = imm8 >> 7 & 1;
    let b = imm8 >> 6 & 1;
    let cd = imm8 >> 4 & 3;
    let efgh = imm8 & 0xf;
    // Exponent: NOT(b) : Replicate(b, E-3) : cd.
    let e = fmt.e as u64;
    let rep = if b == 1 { (1u64 << (e - 3)) - 1 } else { 0 };
    let exp = ((b ^ 1) << (e - 1)) | (rep << 2) | cd;
    (sign << (fmt.n - 1)) | (exp << fmt.f) | (efgh << (fmt.f - 4))
}

// ---------------------------------------------------------------------------------------
// Scalar floating-point encodings (op0 = x0x1 1110/1111).

macro_rules! helper {
    ($name:ident, $s:literal, $f:path, $gpr:literal) => {
        static $name: Helper = Helper {
            name: $s,
            func: $f,
            gpr: $gpr,
        };
    };
}

helper!(FP_DP1, "fp_dp1", fp_dp1, false);
helper!(FP_DP2, "fp_dp2", fp_dp2, false);
helper!(FP_DP3, "fp_dp3", fp_dp3, false);
helper!(FP_CMP, "fp_cmp", fp_cmp, true);
helper!(FP_CCMP, "fp_ccmp", fp_ccmp, true);
helper!(FP_CSEL, "fp_csel", fp_csel, true);
helper!(FP_IMM, "fp_imm", fp_imm, false);
helper!(FP_CVT_INT, "fp_cvt_int", fp_cvt_int, true);
helper!(FP_CVT_FIXED, "fp_cvt_fixed", fp_cvt_fixed, true);

/// Decodes the scalar FP groups of the A64 encoding table.
fn decode_scalar(insn: u32) -> Option<&'static Helper> {
    if bit(insn, 30) || bits(insn, 28, 25) != 0b1111 {
        return None;
    }
    let m = bit(insn, 31);
    let s = bit(insn, 29);
    let ty = bits(insn, 23, 22);
    // Arithmetic is single/double only (FP16 arithmetic is ARMv8.2).
    let arith = !m && !s && ty <= 1;
    if bit(insn, 24) {
        // Floating-point data-processing (3 source).
        return arith.then_some(&FP_DP3);
    }
    if !bit(insn, 21) {
        // Conversion between floating-point and fixed-point.
        let sf = m;
        let (rmode, opcode, scale) = (bits(insn, 20, 19), bits(insn, 18, 16), bits(insn, 15, 10));
        if s || ty > 1 || (!sf && scale < 32) {
            return None;
        }
        return matches!((rmode, opcode), (0, 2) | (0, 3) | (3, 0) | (3, 1))
            .then_some(&FP_CVT_FIXED);
    }
    match bits(insn, 11, 10) {
        0b01 => arith.then_some(&FP_CCMP),
        0b10 => (arith && bits(insn, 15, 12) <= 8).then_some(&FP_DP2),
        0b11 => arith.then_some(&FP_CSEL),
        _ => {
            if bit(insn, 12) {
                // Floating-point immediate.
                (arith && bits(insn, 9, 5) == 0).then_some(&FP_IMM)
            } else if bit(insn, 13) {
                // Floating-point compare.
                (arith && bits(insn, 15, 14) == 0 && bits(insn, 2, 0) == 0).then_some(&FP_CMP)
            } else if bit(insn, 14) {
                // Floating-point data-processing (1 source).
                let opcode = bits(insn, 20, 15);
                if m || s || ty == 2 {
                    return None;
                }
                let ok = match opcode {
                    0..=3 | 8..=12 | 14 | 15 => ty <= 1,
                    // FCVT: opc (destination) must be a valid type different from the source.
                    4 | 5 | 7 => (opcode & 3) != ty,
                    _ => false,
                };
                ok.then_some(&FP_DP1)
            } else if bits(insn, 15, 10) == 0 {
                // Conversion between floating-point and integer.
                let sf = m;
                let (rmode, opcode) = (bits(insn, 20, 19), bits(insn, 18, 16));
                if s {
                    return None;
                }
                let ok = match (ty, opcode) {
                    // FMOV Xd, Vn.D[1] / FMOV Vd.D[1], Xn.
                    (2, 6 | 7) => sf && rmode == 1,
                    (2 | 3, _) => false,
                    (_, 6 | 7) => rmode == 0 && sf == (ty == 1),
                    (_, 0 | 1) => true,
                    (_, 2..=5) => rmode == 0,
                    _ => false,
                };
                ok.then_some(&FP_CVT_INT)
            } else {
                None
            }
        }
    }
}

/// Format of an arithmetic scalar instruction (type 00 or 01).
fn arith_fmt(insn: u32) -> Result<Fmt, Fault> {
    match bits(insn, 23, 22) {
        0 => Ok(S),
        1 => Ok(D),
        _ => Err(undef(insn)),
    }
}

/// Floating-point data-processing (1 source): FMOV, FABS, FNEG, FSQRT, FCVT, FRINT*.
fn fp_dp1(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (rn, rd) = (bits(insn, 9, 5), bits(insn, 4, 0));
    let opcode = bits(insn, 20, 15);
    let src = ftype(bits(insn, 23, 22)).ok_or_else(|| undef(insn))?;
    let mut env = Env::new(st.fpcr);
    let x = vs(st, rn, src);
    let (fmt, r) = match opcode {
        0 => (src, x),
        1 => (src, src.abs(x)),
        2 => (src, src.neg(x)),
        3 => (src, soft::sqrt(src, x, &mut env)),
        4 | 5 | 7 => {
            let dst = ftype(opcode & 3).ok_or_else(|| undef(insn))?;
            let rm = env.rounding();
            (dst, soft::convert(src, dst, x, rm, &mut env))
        }
        8..=12 | 14 | 15 => {
            let (rm, exact) = match opcode {
                8..=11 => (Rounding::from_rmode(opcode & 3), false),
                12 => (Rounding::TieAway, false),
                14 => (env.rounding(), true),
                _ => (env.rounding(), false),
            };
            (src, soft::round_int(src, x, rm, exact, &mut env))
        }
        _ => return Err(undef(insn)),
    };
    set_vs(st, rd, fmt, r);
    finish(st, &env);
    Ok(())
}

/// Floating-point data-processing (2 source): FMUL FDIV FADD FSUB FMAX FMIN FMAXNM FMINNM FNMUL.
fn fp_dp2(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let (rm, rn, rd) = (bits(insn, 20, 16), bits(insn, 9, 5), bits(insn, 4, 0));
    let (a, b) = (vs(st, rn, fmt), vs(st, rm, fmt));
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let r = match bits(insn, 15, 12) {
        0 => soft::mul(fmt, a, b, false, e),
        1 => soft::div(fmt, a, b, e),
        2 => soft::add(fmt, a, b, false, e),
        3 => soft::add(fmt, a, b, true, e),
        4 => soft::maxmin(fmt, a, b, true, e),
        5 => soft::maxmin(fmt, a, b, false, e),
        6 => soft::maxmin_num(fmt, a, b, true, e),
        7 => soft::maxmin_num(fmt, a, b, false, e),
        8 => fmt.neg(soft::mul(fmt, a, b, false, e)),
        _ => return Err(undef(insn)),
    };
    set_vs(st, rd, fmt, r);
    finish(st, &env);
    Ok(())
}

/// Floating-point data-processing (3 source): FMADD FMSUB FNMADD FNMSUB.
fn fp_dp3(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let (rm, ra, rn, rd) = (
        bits(insn, 20, 16),
        bits(insn, 14, 10),
        bits(insn, 9, 5),
        bits(insn, 4, 0),
    );
    let (o1, o0) = (bit(insn, 21), bit(insn, 15));
    let mut a = vs(st, ra, fmt);
    let mut n = vs(st, rn, fmt);
    let m = vs(st, rm, fmt);
    if o1 {
        a = fmt.neg(a);
    }
    if o0 != o1 {
        n = fmt.neg(n);
    }
    let mut env = Env::new(st.fpcr);
    let r = soft::muladd(fmt, a, n, m, &mut env);
    set_vs(st, rd, fmt, r);
    finish(st, &env);
    Ok(())
}

/// Floating-point compare: FCMP, FCMPE (also against #0.0).
fn fp_cmp(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let (rm, rn) = (bits(insn, 20, 16), bits(insn, 9, 5));
    let a = vs(st, rn, fmt);
    let b = if bit(insn, 3) { 0 } else { vs(st, rm, fmt) };
    let mut env = Env::new(st.fpcr);
    let flags = soft::compare(fmt, a, b, bit(insn, 4), &mut env);
    st.nzcv = (flags as u64) << 28;
    finish(st, &env);
    Ok(())
}

/// Floating-point conditional compare: FCCMP, FCCMPE.
fn fp_ccmp(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let (rm, rn) = (bits(insn, 20, 16), bits(insn, 9, 5));
    let cond = bits(insn, 15, 12) as u8;
    if cond_holds(st.nzcv, cond) {
        let mut env = Env::new(st.fpcr);
        let flags = soft::compare(
            fmt,
            vs(st, rn, fmt),
            vs(st, rm, fmt),
            bit(insn, 4),
            &mut env,
        );
        st.nzcv = (flags as u64) << 28;
        finish(st, &env);
    } else {
        st.nzcv = (bits(insn, 3, 0) as u64) << 28;
    }
    Ok(())
}

/// Floating-point conditional select: FCSEL.
fn fp_csel(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let (rm, rn, rd) = (bits(insn, 20, 16), bits(insn, 9, 5), bits(insn, 4, 0));
    let cond = bits(insn, 15, 12) as u8;
    let r = if cond_holds(st.nzcv, cond) {
        vs(st, rn, fmt)
    } else {
        vs(st, rm, fmt)
    };
    set_vs(st, rd, fmt, r);
    Ok(())
}

/// Floating-point immediate: FMOV Sd/Dd, #imm.
fn fp_imm(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let fmt = arith_fmt(insn)?;
    let r = vfp_expand_imm(fmt, bits(insn, 20, 13));
    set_vs(st, bits(insn, 4, 0), fmt, r);
    Ok(())
}

/// The rounding of FCVT<r>S/U for `rmode`:`opcode<2>` (N, P, M, Z, A).
fn cvt_rounding(rmode: u32, opcode: u32) -> Rounding {
    if opcode & 4 != 0 {
        Rounding::TieAway
    } else {
        Rounding::from_rmode(rmode)
    }
}

/// Conversion between floating-point and integer: FCVT{N,P,M,Z,A}{S,U}, SCVTF, UCVTF, FMOV.
fn fp_cvt_int(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let sf = bit(insn, 31);
    let ty = bits(insn, 23, 22);
    let (rmode, opcode) = (bits(insn, 20, 19), bits(insn, 18, 16));
    let (rn, rd) = (bits(insn, 9, 5), bits(insn, 4, 0));
    let width = if sf { 64 } else { 32 };
    if ty == 2 {
        // FMOV to or from the top half of a 128-bit register.
        if opcode == 6 {
            let v = (st.v[rn as usize] >> 64) as u64;
            set_xreg(st, rd, true, v);
        } else {
            let x = xreg(st, rn, true) as u128;
            let v = &mut st.v[rd as usize];
            *v = (*v & u64::MAX as u128) | (x << 64);
        }
        return Ok(());
    }
    let fmt = arith_fmt(insn)?;
    let mut env = Env::new(st.fpcr);
    match opcode {
        6 => {
            let v = vs(st, rn, fmt);
            set_xreg(st, rd, sf, v);
        }
        7 => {
            let x = xreg(st, rn, sf);
            set_vs(st, rd, fmt, x);
        }
        2 | 3 => {
            let x = xreg(st, rn, sf);
            let rm = env.rounding();
            let r = soft::from_fixed(fmt, x, width, 0, opcode == 3, rm, &mut env);
            set_vs(st, rd, fmt, r);
        }
        _ => {
            let x = vs(st, rn, fmt);
            let r = soft::to_fixed(
                fmt,
                x,
                0,
                opcode & 1 != 0,
                width,
                cvt_rounding(rmode, opcode),
                &mut env,
            );
            set_xreg(st, rd, sf, r);
        }
    }
    finish(st, &env);
    Ok(())
}

/// Conversion between floating-point and fixed-point: SCVTF, UCVTF, FCVTZS, FCVTZU (#fbits).
fn fp_cvt_fixed(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let sf = bit(insn, 31);
    let fmt = arith_fmt(insn)?;
    let opcode = bits(insn, 18, 16);
    let fbits = 64 - bits(insn, 15, 10);
    let (rn, rd) = (bits(insn, 9, 5), bits(insn, 4, 0));
    let width = if sf { 64 } else { 32 };
    let mut env = Env::new(st.fpcr);
    if opcode & 2 != 0 {
        let x = xreg(st, rn, sf);
        let rm = env.rounding();
        let r = soft::from_fixed(fmt, x, width, fbits, opcode & 1 != 0, rm, &mut env);
        set_vs(st, rd, fmt, r);
    } else {
        let x = vs(st, rn, fmt);
        let r = soft::to_fixed(
            fmt,
            x,
            fbits,
            opcode & 1 != 0,
            width,
            Rounding::Zero,
            &mut env,
        );
        set_xreg(st, rd, sf, r);
    }
    finish(st, &env);
    Ok(())
}

/// The scalar and vector FP helpers (for the registry of [`super::helpers`]).
pub(super) fn helpers() -> impl Iterator<Item = &'static Helper> {
    [
        &FP_DP1,
        &FP_DP2,
        &FP_DP3,
        &FP_CMP,
        &FP_CCMP,
        &FP_CSEL,
        &FP_IMM,
        &FP_CVT_INT,
        &FP_CVT_FIXED,
    ]
    .into_iter()
    .chain(vector::HELPERS.iter().copied())
}
