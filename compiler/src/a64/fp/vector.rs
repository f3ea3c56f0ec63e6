//! Advanced SIMD floating-point encodings, vector and scalar: three same, two-register
//! miscellaneous, by element, across lanes, scalar pairwise, shift by immediate (fixed-point
//! conversions) and modified immediate (FMOV).

use super::soft::{self, Cmp, Env, Fmt, Rounding, D, H, S};
use super::{finish, undef, vfp_expand_imm};
use crate::a64::{bit, bits};
use crate::ir::Helper;
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

static SIMD_FP_3SAME: Helper = Helper {
    name: "simd_fp_3same",
    func: simd_3same,
    gpr: false,
};
static SIMD_FP_2MISC: Helper = Helper {
    name: "simd_fp_2misc",
    func: simd_2misc,
    gpr: false,
};
static SIMD_FP_ELEM: Helper = Helper {
    name: "simd_fp_elem",
    func: simd_elem,
    gpr: false,
};
static SIMD_FP_ACROSS: Helper = Helper {
    name: "simd_fp_across",
    func: simd_across,
    gpr: false,
};
static SIMD_FP_CVT_FIXED: Helper = Helper {
    name: "simd_fp_cvt_fixed",
    func: simd_cvt_fixed,
    gpr: false,
};
static SIMD_FP_IMM: Helper = Helper {
    name: "simd_fp_imm",
    func: simd_imm,
    gpr: false,
};

/// Lane `i` of `esize` bits.
fn lane(v: u128, i: u32, esize: u32) -> u64 {
    let m = if esize == 64 {
        u64::MAX
    } else {
        (1u64 << esize) - 1
    };
    (v >> (i * esize)) as u64 & m
}

/// `v` with lane `i` of `esize` bits replaced by `x`.
fn with_lane(v: u128, i: u32, esize: u32, x: u64) -> u128 {
    let m = if esize == 64 {
        u64::MAX as u128
    } else {
        (1u128 << esize) - 1
    };
    let sh = i * esize;
    (v & !(m << sh)) | ((x as u128 & m) << sh)
}

fn fmt_sz(sz: bool) -> Fmt {
    if sz {
        D
    } else {
        S
    }
}

/// Common fields: (scalar form, Q, U, size<1>, sz).
fn fields(insn: u32) -> (bool, bool, bool, bool, bool) {
    (
        bit(insn, 28),
        bit(insn, 30),
        bit(insn, 29),
        bit(insn, 23),
        bit(insn, 22),
    )
}

/// Number of bits operated on: the element for scalar forms, 64 or 128 for vectors.
fn datasize(scalar: bool, q: bool, esize: u32) -> u32 {
    if scalar {
        esize
    } else if q {
        128
    } else {
        64
    }
}

/// The three-same FP operations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op3 {
    MaxNm,
    Fmla,
    Add,
    Mulx,
    CmEq,
    Max,
    Recps,
    MinNm,
    Fmls,
    Sub,
    Min,
    Rsqrts,
    MaxNmP,
    AddP,
    Mul,
    CmGe,
    AcGe,
    MaxP,
    Div,
    MinNmP,
    Abd,
    CmGt,
    AcGt,
    MinP,
}

fn op3(u: bool, a: bool, opcode: u32) -> Option<Op3> {
    use Op3::*;
    Some(match (u, a, opcode) {
        (false, false, 0x18) => MaxNm,
        (false, false, 0x19) => Fmla,
        (false, false, 0x1a) => Add,
        (false, false, 0x1b) => Mulx,
        (false, false, 0x1c) => CmEq,
        (false, false, 0x1e) => Max,
        (false, false, 0x1f) => Recps,
        (false, true, 0x18) => MinNm,
        (false, true, 0x19) => Fmls,
        (false, true, 0x1a) => Sub,
        (false, true, 0x1e) => Min,
        (false, true, 0x1f) => Rsqrts,
        (true, false, 0x18) => MaxNmP,
        (true, false, 0x1a) => AddP,
        (true, false, 0x1b) => Mul,
        (true, false, 0x1c) => CmGe,
        (true, false, 0x1d) => AcGe,
        (true, false, 0x1e) => MaxP,
        (true, false, 0x1f) => Div,
        (true, true, 0x18) => MinNmP,
        (true, true, 0x1a) => Abd,
        (true, true, 0x1c) => CmGt,
        (true, true, 0x1d) => AcGt,
        (true, true, 0x1e) => MinP,
        _ => return None,
    })
}

/// The two-register-misc FP operations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op2 {
    Cvtn,
    Cvtl,
    Cvtxn,
    Rint(Rounding, bool),
    /// FCVT<r>S/U: rounding, unsigned.
    ToInt(Rounding, bool),
    /// SCVTF/UCVTF: unsigned.
    FromInt(bool),
    /// Compare with zero: op, swapped (zero first).
    CmpZero(Cmp, bool),
    Abs,
    Neg,
    Recpe,
    Rsqrte,
    Recpx,
    Sqrt,
}

fn op2(u: bool, a: bool, opcode: u32) -> Option<Op2> {
    use Op2::*;
    use Rounding::*;
    // `None` as the rounding of FRINTX/FRINTI means "from FPCR", resolved at run time.
    Some(match (u, a, opcode) {
        (false, false, 0x16) => Cvtn,
        (false, false, 0x17) => Cvtl,
        (false, false, 0x18) => Rint(TieEven, false),
        (false, false, 0x19) => Rint(NegInf, false),
        (false, false, 0x1a) => ToInt(TieEven, false),
        (false, false, 0x1b) => ToInt(NegInf, false),
        (false, false, 0x1c) => ToInt(TieAway, false),
        (false, false, 0x1d) => FromInt(false),
        (false, true, 0x0c) => CmpZero(Cmp::Gt, false),
        (false, true, 0x0d) => CmpZero(Cmp::Eq, false),
        (false, true, 0x0e) => CmpZero(Cmp::Gt, true),
        (false, true, 0x0f) => Abs,
        (false, true, 0x18) => Rint(PosInf, false),
        (false, true, 0x19) => Rint(Zero, false),
        (false, true, 0x1a) => ToInt(PosInf, false),
        (false, true, 0x1b) => ToInt(Zero, false),
        (false, true, 0x1d) => Recpe,
        (false, true, 0x1f) => Recpx,
        (true, false, 0x16) => Cvtxn,
        (true, false, 0x18) => Rint(TieAway, false),
        // FRINTX: FPCR rounding, exact (Odd is a placeholder for "FPCR").
        (true, false, 0x19) => Rint(Odd, true),
        (true, false, 0x1a) => ToInt(TieEven, true),
        (true, false, 0x1b) => ToInt(NegInf, true),
        (true, false, 0x1c) => ToInt(TieAway, true),
        (true, false, 0x1d) => FromInt(true),
        (true, true, 0x0c) => CmpZero(Cmp::Ge, false),
        (true, true, 0x0d) => CmpZero(Cmp::Ge, true),
        (true, true, 0x0f) => Neg,
        // FRINTI: FPCR rounding, not exact.
        (true, true, 0x19) => Rint(Odd, false),
        (true, true, 0x1a) => ToInt(PosInf, true),
        (true, true, 0x1b) => ToInt(Zero, true),
        (true, true, 0x1d) => Rsqrte,
        (true, true, 0x1f) => Sqrt,
        _ => return None,
    })
}

/// Decodes the Advanced SIMD FP groups; `None` for anything else or any invalid form.
pub fn decode(insn: u32) -> Option<&'static Helper> {
    let scalar = bits(insn, 31, 30) == 0b01 && bit(insn, 28);
    let vector = !bit(insn, 31) && !bit(insn, 28);
    if !(scalar || vector) || bits(insn, 27, 25) != 0b111 {
        return None;
    }
    let (_, q, u, a, sz) = fields(insn);
    // 64-bit elements need a 128-bit vector.
    let bad_vec_d = vector && sz && !q;
    if !bit(insn, 24) {
        if !bit(insn, 21) {
            return None;
        }
        if bit(insn, 10) {
            // Three same.
            let op = op3(u, a, bits(insn, 15, 11))?;
            let ok = if scalar {
                use Op3::*;
                matches!(
                    op,
                    Mulx | CmEq | Recps | Rsqrts | CmGe | AcGe | Abd | CmGt | AcGt
                )
            } else {
                !bad_vec_d
            };
            return ok.then_some(&SIMD_FP_3SAME);
        }
        if bits(insn, 11, 10) != 0b10 {
            return None;
        }
        let opcode = bits(insn, 16, 12);
        match bits(insn, 20, 17) {
            0b0000 => {
                // Two-register miscellaneous.
                let op = op2(u, a, opcode)?;
                let ok = match op {
                    Op2::Cvtn | Op2::Cvtl => vector,
                    Op2::Cvtxn => sz,
                    Op2::ToInt(..)
                    | Op2::FromInt(_)
                    | Op2::CmpZero(..)
                    | Op2::Recpe
                    | Op2::Rsqrte => scalar || !bad_vec_d,
                    Op2::Recpx => scalar,
                    Op2::Rint(..) | Op2::Abs | Op2::Neg | Op2::Sqrt => vector && !bad_vec_d,
                };
                ok.then_some(&SIMD_FP_2MISC)
            }
            0b1000 => {
                // Across lanes (vector) or pairwise (scalar); U=0 forms are FP16.
                if !u {
                    return None;
                }
                let ok = if scalar {
                    matches!((a, opcode), (_, 0x0c) | (false, 0x0d) | (_, 0x0f))
                } else {
                    matches!(opcode, 0x0c | 0x0f) && q && !sz
                };
                ok.then_some(&SIMD_FP_ACROSS)
            }
            _ => None,
        }
    } else if !bit(insn, 10) {
        // By element.
        let opcode = bits(insn, 15, 12);
        let ok_op = matches!((u, opcode), (false, 0b0001) | (false, 0b0101) | (_, 0b1001));
        let ok_size = a && !(sz && bit(insn, 21)) && !bad_vec_d;
        (ok_op && ok_size).then_some(&SIMD_FP_ELEM)
    } else {
        if bit(insn, 23) {
            return None;
        }
        let immh = bits(insn, 22, 19);
        if immh == 0 {
            // Modified immediate: only FMOV (cmode 1111, o2 0) is ours.
            let op = bit(insn, 29);
            let ok = vector && bits(insn, 15, 12) == 0b1111 && !bit(insn, 11) && (!op || q);
            return ok.then_some(&SIMD_FP_IMM);
        }
        // Shift by immediate: SCVTF/UCVTF (11100), FCVTZS/FCVTZU (11111), single or double.
        let opcode = bits(insn, 15, 11);
        let ok = matches!(opcode, 0x1c | 0x1f) && immh >= 4 && !(vector && immh >= 8 && !q);
        ok.then_some(&SIMD_FP_CVT_FIXED)
    }
}

/// Writes the result of a vector or scalar operation of `datasize` bits to V[d].
fn write_result(st: &mut CpuState, d: u32, datasize: u32, r: u128) {
    let m = if datasize == 128 {
        u128::MAX
    } else {
        (1u128 << datasize) - 1
    };
    st.v[d as usize] = r & m;
}

fn regs(insn: u32) -> (usize, usize, usize) {
    (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    )
}

/// Advanced SIMD (scalar) three same, FP forms.
fn simd_3same(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (scalar, q, u, a, sz) = fields(insn);
    let op = op3(u, a, bits(insn, 15, 11)).ok_or_else(|| undef(insn))?;
    let fmt = fmt_sz(sz);
    let esize = fmt.n;
    let ds = datasize(scalar, q, esize);
    let elements = ds / esize;
    let (rm, rn, rd) = regs(insn);
    let (vn, vm, vd) = (st.v[rn], st.v[rm], st.v[rd]);
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let mut r = 0u128;
    let mask = fmt.mask();
    let bool_mask = |b: bool| if b { mask } else { 0 };
    for i in 0..elements {
        let (x, y) = match op {
            Op3::MaxNmP | Op3::AddP | Op3::MaxP | Op3::MinNmP | Op3::MinP => {
                // Pairwise over the concatenation Vm:Vn.
                let src = |j: u32| {
                    if j < elements {
                        lane(vn, j, esize)
                    } else {
                        lane(vm, j - elements, esize)
                    }
                };
                (src(2 * i), src(2 * i + 1))
            }
            _ => (lane(vn, i, esize), lane(vm, i, esize)),
        };
        let res = match op {
            Op3::MaxNm | Op3::MaxNmP => soft::maxmin_num(fmt, x, y, true, e),
            Op3::MinNm | Op3::MinNmP => soft::maxmin_num(fmt, x, y, false, e),
            Op3::Max | Op3::MaxP => soft::maxmin(fmt, x, y, true, e),
            Op3::Min | Op3::MinP => soft::maxmin(fmt, x, y, false, e),
            Op3::Fmla => soft::muladd(fmt, lane(vd, i, esize), x, y, e),
            Op3::Fmls => soft::muladd(fmt, lane(vd, i, esize), fmt.neg(x), y, e),
            Op3::Add | Op3::AddP => soft::add(fmt, x, y, false, e),
            Op3::Sub => soft::add(fmt, x, y, true, e),
            Op3::Abd => fmt.abs(soft::add(fmt, x, y, true, e)),
            Op3::Mul => soft::mul(fmt, x, y, false, e),
            Op3::Mulx => soft::mul(fmt, x, y, true, e),
            Op3::Div => soft::div(fmt, x, y, e),
            Op3::Recps => soft::step_fused(fmt, x, y, false, e),
            Op3::Rsqrts => soft::step_fused(fmt, x, y, true, e),
            Op3::CmEq => bool_mask(soft::compare_cond(fmt, x, y, Cmp::Eq, e)),
            Op3::CmGe => bool_mask(soft::compare_cond(fmt, x, y, Cmp::Ge, e)),
            Op3::CmGt => bool_mask(soft::compare_cond(fmt, x, y, Cmp::Gt, e)),
            Op3::AcGe => bool_mask(soft::compare_cond(fmt, fmt.abs(x), fmt.abs(y), Cmp::Ge, e)),
            Op3::AcGt => bool_mask(soft::compare_cond(fmt, fmt.abs(x), fmt.abs(y), Cmp::Gt, e)),
        };
        r = with_lane(r, i, esize, res);
    }
    write_result(st, rd as u32, ds, r);
    finish(st, &env);
    Ok(())
}

/// Advanced SIMD (scalar) two-register miscellaneous, FP forms.
fn simd_2misc(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (scalar, q, u, a, sz) = fields(insn);
    let op = op2(u, a, bits(insn, 16, 12)).ok_or_else(|| undef(insn))?;
    let (_, rn, rd) = regs(insn);
    let vn = st.v[rn];
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let fpcr_rm = e.rounding();
    match op {
        Op2::Cvtn | Op2::Cvtxn => {
            // Narrow 2D -> 2S (or 4S -> 4H) into the lower or (Q=1, "2") upper half.
            let (from, to, rm) = match (op, sz) {
                (Op2::Cvtxn, _) => (D, S, Rounding::Odd),
                (_, true) => (D, S, fpcr_rm),
                (_, false) => (S, H, fpcr_rm),
            };
            let n = if scalar { 1 } else { 64 / to.n };
            let mut r = 0u128;
            for i in 0..n {
                let x = lane(vn, i, from.n);
                r = with_lane(r, i, to.n, soft::convert(from, to, x, rm, e));
            }
            if scalar {
                st.v[rd] = r & 0xffff_ffff;
            } else if q {
                st.v[rd] = (st.v[rd] & u64::MAX as u128) | (r << 64);
            } else {
                st.v[rd] = r;
            }
        }
        Op2::Cvtl => {
            let (from, to) = if sz { (S, D) } else { (H, S) };
            let src = if q { vn >> 64 } else { vn };
            let n = 128 / to.n;
            let mut r = 0u128;
            for i in 0..n {
                let x = lane(src, i, from.n);
                r = with_lane(r, i, to.n, soft::convert(from, to, x, fpcr_rm, e));
            }
            st.v[rd] = r;
        }
        _ => {
            let fmt = fmt_sz(sz);
            let esize = fmt.n;
            let ds = datasize(scalar, q, esize);
            let mut r = 0u128;
            for i in 0..ds / esize {
                let x = lane(vn, i, esize);
                let res = match op {
                    Op2::Rint(rm, exact) => {
                        let rm = if rm == Rounding::Odd { fpcr_rm } else { rm };
                        soft::round_int(fmt, x, rm, exact, e)
                    }
                    Op2::ToInt(rm, unsigned) => soft::to_fixed(fmt, x, 0, unsigned, esize, rm, e),
                    Op2::FromInt(unsigned) => {
                        soft::from_fixed(fmt, x, esize, 0, unsigned, fpcr_rm, e)
                    }
                    Op2::CmpZero(cmp, swap) => {
                        let t = if swap {
                            soft::compare_cond(fmt, 0, x, cmp, e)
                        } else {
                            soft::compare_cond(fmt, x, 0, cmp, e)
                        };
                        if t {
                            fmt.mask()
                        } else {
                            0
                        }
                    }
                    Op2::Abs => fmt.abs(x),
                    Op2::Neg => fmt.neg(x),
                    Op2::Recpe => soft::recip_estimate_fp(fmt, x, e),
                    Op2::Rsqrte => soft::rsqrt_estimate_fp(fmt, x, e),
                    Op2::Recpx => soft::recpx(fmt, x, e),
                    Op2::Sqrt => soft::sqrt(fmt, x, e),
                    Op2::Cvtn | Op2::Cvtl | Op2::Cvtxn => return Err(undef(insn)),
                };
                r = with_lane(r, i, esize, res);
            }
            write_result(st, rd as u32, ds, r);
        }
    }
    finish(st, &env);
    Ok(())
}

/// Advanced SIMD (scalar) by element: FMLA, FMLS, FMUL, FMULX.
fn simd_elem(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (scalar, q, u, _, sz) = fields(insn);
    let fmt = fmt_sz(sz);
    let esize = fmt.n;
    let (h, l) = (bit(insn, 11) as u32, bit(insn, 21) as u32);
    let index = if sz { h } else { (h << 1) | l };
    let (rm, rn, rd) = regs(insn);
    let ds = datasize(scalar, q, esize);
    let (vn, vd) = (st.v[rn], st.v[rd]);
    let y = lane(st.v[rm], index, esize);
    let opcode = bits(insn, 15, 12);
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let mut r = 0u128;
    for i in 0..ds / esize {
        let x = lane(vn, i, esize);
        let res = match (u, opcode) {
            (false, 0b0001) => soft::muladd(fmt, lane(vd, i, esize), x, y, e),
            (false, 0b0101) => soft::muladd(fmt, lane(vd, i, esize), fmt.neg(x), y, e),
            (false, 0b1001) => soft::mul(fmt, x, y, false, e),
            (true, 0b1001) => soft::mul(fmt, x, y, true, e),
            _ => return Err(undef(insn)),
        };
        r = with_lane(r, i, esize, res);
    }
    write_result(st, rd as u32, ds, r);
    finish(st, &env);
    Ok(())
}

/// Across lanes FMAXNMV/FMINNMV/FMAXV/FMINV (4S), and scalar pairwise
/// FADDP/FMAXP/FMINP/FMAXNMP/FMINNMP.
fn simd_across(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (scalar, _, _, a, sz) = fields(insn);
    let fmt = if scalar { fmt_sz(sz) } else { S };
    let esize = fmt.n;
    let opcode = bits(insn, 16, 12);
    let (_, rn, rd) = regs(insn);
    let vn = st.v[rn];
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let mut f = |x: u64, y: u64| match (opcode, a) {
        (0x0c, false) => soft::maxmin_num(fmt, x, y, true, e),
        (0x0c, true) => soft::maxmin_num(fmt, x, y, false, e),
        (0x0f, false) => soft::maxmin(fmt, x, y, true, e),
        (0x0f, true) => soft::maxmin(fmt, x, y, false, e),
        _ => soft::add(fmt, x, y, false, e),
    };
    let r = if scalar {
        f(lane(vn, 0, esize), lane(vn, 1, esize))
    } else {
        // Reduce(): op(op(e0, e1), op(e2, e3)).
        let lo = f(lane(vn, 0, 32), lane(vn, 1, 32));
        let hi = f(lane(vn, 2, 32), lane(vn, 3, 32));
        f(lo, hi)
    };
    st.v[rd] = r as u128;
    finish(st, &env);
    Ok(())
}

/// Advanced SIMD (scalar) shift by immediate: SCVTF, UCVTF, FCVTZS, FCVTZU (#fbits).
fn simd_cvt_fixed(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let (scalar, q, u, _, _) = fields(insn);
    let immh = bits(insn, 22, 19);
    let fmt = if immh >= 8 { D } else { S };
    let esize = fmt.n;
    let fbits = esize * 2 - bits(insn, 22, 16);
    let ds = datasize(scalar, q, esize);
    let (_, rn, rd) = regs(insn);
    let vn = st.v[rn];
    let to_fp = bits(insn, 15, 11) == 0x1c;
    let mut env = Env::new(st.fpcr);
    let e = &mut env;
    let rm = e.rounding();
    let mut r = 0u128;
    for i in 0..ds / esize {
        let x = lane(vn, i, esize);
        let res = if to_fp {
            soft::from_fixed(fmt, x, esize, fbits, u, rm, e)
        } else {
            soft::to_fixed(fmt, x, fbits, u, esize, Rounding::Zero, e)
        };
        r = with_lane(r, i, esize, res);
    }
    write_result(st, rd as u32, ds, r);
    finish(st, &env);
    Ok(())
}

/// Advanced SIMD modified immediate: FMOV Vd.2S/4S/2D, #imm.
fn simd_imm(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let q = bit(insn, 30);
    let imm8 = (bits(insn, 18, 16) << 5) | bits(insn, 9, 5);
    let rd = bits(insn, 4, 0) as usize;
    let r = if bit(insn, 29) {
        let d = vfp_expand_imm(D, imm8) as u128;
        d | (d << 64)
    } else {
        let s = vfp_expand_imm(S, imm8) as u128;
        s * 0x0000_0001_0000_0001_0000_0001_0000_0001
    };
    st.v[rd] = if q { r } else { r & u64::MAX as u128 };
    Ok(())
}

/// The helpers of this module (for the registry of [`crate::a64::helpers`]).
pub(super) static HELPERS: &[&Helper] = &[
    &SIMD_FP_3SAME,
    &SIMD_FP_2MISC,
    &SIMD_FP_ELEM,
    &SIMD_FP_ACROSS,
    &SIMD_FP_CVT_FIXED,
    &SIMD_FP_IMM,
];
