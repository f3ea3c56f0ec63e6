//! Inline fast paths for scalar floating point (instead of a call to the soft-float helper).
//!
//! Moves (FMOV register, immediate and to/from general registers, FABS, FNEG) never raise
//! flags and are always inline. Arithmetic, square root, conversions and compares are inline
//! behind a run-time guard under which the host's IEEE result *and* the guest's FPSR update
//! are provably those of the ARM pseudocode; otherwise the slow branch calls the helper
//! exactly as a plain helper call would, from the unchanged source registers:
//!
//! - FPCR.RMode = RN and FPCR.FZ = 0 (DN and AHP only matter for NaN or half-precision
//!   results, which never take the fast path): the host's default SSE environment (round to
//!   nearest, no DAZ/FTZ) then computes the same value, subnormal inputs included.
//! - Operations that may be inexact additionally need FPSR.IXC already set (it is sticky, so
//!   inexactness never has to be computed).
//! - The result must show that no other exception arose: not NaN or infinite (no IOC, DZC,
//!   OFC), and, for operations that can underflow, a biased exponent of at least 2: ARM
//!   detects tininess before rounding, so even a result rounded up to the smallest normal
//!   binade may have raised UFC. Sums and differences never underflow inexactly (a tiny sum is
//!   exact), so they only exclude NaN and infinity.
//! - FCMP/FCMPE are exact for ordered operands under FZ = 0; unordered ones take the helper.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::{reg_offset, state_flags, vreg_offset, Env, Lower, NZCV};
use crate::a64::fp::{soft, vfp_expand_imm};
use crate::a64::{bit, bits};
use crate::ir::Helper;
use crate::state::CpuState;

/// Flags of a lane reinterpretation (`bitcast` between vector types): lanes in little-endian
/// order, as the guest's and the host's.
fn vector_flags() -> cranelift_codegen::ir::MemFlagsData {
    cranelift_codegen::ir::MemFlagsData::new()
        .with_endianness(cranelift_codegen::ir::Endianness::Little)
}

/// FPCR.FZ (24) and FPCR.RMode (23:22).
const FPCR_FZ_RMODE: i64 = 0x01c0_0000;
/// FPSR.IXC.
const FPSR_IXC: i64 = 1 << 4;

/// Bits of the FP mode value ([`fpmode_value`]): FPSR.IXC clear (12), FPCR.RMode (13, 14),
/// FPCR.FZ (15). A guard wants the bits of its mask all zero. They sit above any biased
/// exponent, so a guard on a result folds into the exponent's range compare (`(e | mode) <
/// limit`, see [`Lower::result_ok`]).
const MODE_IXC_CLEAR: i64 = 1 << 12;
/// Mode bits of round to nearest without flushing.
const MODE_RN_NO_FZ: i64 = 0b111 << 13;
/// Mode bit of FPCR.FZ.
const MODE_FZ: i64 = 1 << 15;
/// The guard of an operation that may be inexact: RN, no FZ, IXC already set.
const MODE_INEXACT_OK: i64 = MODE_RN_NO_FZ | MODE_IXC_CLEAR;

/// What the lowering knows of the low 64 bits of a V register within one IR block (the CPU
/// state holds the same value unless the register is dirty). See [`Lower::vcache`].
#[derive(Clone, Copy, Debug)]
pub(super) enum VCached {
    /// The low 64 bits as an i64 (upper 64 bits zero).
    Bits(Value),
    /// A scalar of this precision (upper bits zero).
    Float(Prec, Value),
}

/// Scalar precision of an inline FP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prec {
    S,
    D,
}

impl Prec {
    fn from_type(ty: u32) -> Option<Prec> {
        match ty {
            0 => Some(Prec::S),
            1 => Some(Prec::D),
            _ => None,
        }
    }
    /// Size in bytes.
    pub(super) fn bytes(self) -> u8 {
        match self {
            Prec::S => 4,
            Prec::D => 8,
        }
    }
    pub(super) fn float(self) -> Type {
        match self {
            Prec::S => types::F32,
            Prec::D => types::F64,
        }
    }
    fn int(self) -> Type {
        match self {
            Prec::S => types::I32,
            Prec::D => types::I64,
        }
    }
    /// Exponent field position and all-ones value.
    fn exp(self) -> (i64, i64) {
        match self {
            Prec::S => (23, 0xff),
            Prec::D => (52, 0x7ff),
        }
    }
    /// The 128-bit vector of this lane precision.
    fn vector(self) -> Type {
        match self {
            Prec::S => types::F32X4,
            Prec::D => types::F64X2,
        }
    }
    fn sign(self) -> u64 {
        match self {
            Prec::S => 1 << 31,
            Prec::D => 1 << 63,
        }
    }
}

/// Two-operand arithmetic (fp_dp2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    NMul,
}

impl Arith {
    /// Exact tiny sums cannot underflow: only NaN and infinity need the helper.
    fn tiny_ok(self) -> bool {
        matches!(self, Arith::Add | Arith::Sub)
    }
}

/// Bit operations of fp_dp1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MoveOp {
    Mov,
    Abs,
    Neg,
}

/// A scalar FP instruction with an inline lowering.
#[derive(Clone, Copy, Debug)]
enum FpFast {
    /// FMOV, FABS, FNEG (register).
    Move { p: Prec, op: MoveOp, rn: u8, rd: u8 },
    /// FMOV (immediate): the expanded constant.
    Imm { rd: u8, value: u64 },
    /// FMOV Wd, Sn / Xd, Dn.
    ToGpr { p: Prec, rn: u8, rd: u8 },
    /// FMOV Sd, Wn / Dd, Xn.
    FromGpr { p: Prec, rn: u8, rd: u8 },
    /// FADD, FSUB, FMUL, FDIV, FNMUL.
    Arith2 {
        p: Prec,
        op: Arith,
        rn: u8,
        rm: u8,
        rd: u8,
    },
    /// FMADD, FMSUB, FNMADD, FNMSUB: (±a) + (±n) * m, fused.
    Arith3 {
        p: Prec,
        rn: u8,
        rm: u8,
        ra: u8,
        rd: u8,
        neg_a: bool,
        neg_n: bool,
    },
    /// FSQRT.
    Sqrt { p: Prec, rn: u8, rd: u8 },
    /// FADD, FSUB, FMUL, FDIV (vector, 128-bit: 4S or 2D).
    Vec2 {
        p: Prec,
        op: Arith,
        rn: u8,
        rm: u8,
        rd: u8,
    },
    /// FCVT from precision `from` to the other one.
    Cvt { from: Prec, rn: u8, rd: u8 },
    /// FCMP, FCMPE (`rm` None: against +0.0).
    Cmp { p: Prec, rn: u8, rm: Option<u8> },
    /// SCVTF, UCVTF (general register, no fraction bits).
    IntToFp {
        p: Prec,
        sf: bool,
        unsigned: bool,
        rn: u8,
        rd: u8,
    },
    /// FCVTZS, FCVTZU (general register, no fraction bits).
    FpToInt {
        p: Prec,
        sf: bool,
        unsigned: bool,
        rn: u8,
        rd: u8,
    },
}

impl FpFast {
    /// The X register (not XZR) the inline path writes, if any.
    fn x_written(self) -> Option<u8> {
        match self {
            FpFast::ToGpr { rd, .. } | FpFast::FpToInt { rd, .. } if rd != 31 => Some(rd),
            _ => None,
        }
    }
}

/// The inline lowering of `insn` (run by `helper`), if it has one. `fma`: the host has a
/// native fused multiply-add (otherwise Cranelift would need a libcall).
fn classify(helper: &Helper, insn: u32, fma: bool) -> Option<FpFast> {
    let r = |hi: u32| bits(insn, hi, hi - 4) as u8;
    let (rd, rn, rm) = (r(4), r(9), r(20));
    let ty = bits(insn, 23, 22);
    match helper.name {
        "fp_dp1" => {
            let p = Prec::from_type(ty)?;
            Some(match bits(insn, 20, 15) {
                0 => FpFast::Move {
                    p,
                    op: MoveOp::Mov,
                    rn,
                    rd,
                },
                1 => FpFast::Move {
                    p,
                    op: MoveOp::Abs,
                    rn,
                    rd,
                },
                2 => FpFast::Move {
                    p,
                    op: MoveOp::Neg,
                    rn,
                    rd,
                },
                3 => FpFast::Sqrt { p, rn, rd },
                4 | 5 => FpFast::Cvt { from: p, rn, rd },
                _ => return None,
            })
        }
        "fp_dp2" => {
            let p = Prec::from_type(ty)?;
            let op = match bits(insn, 15, 12) {
                0 => Arith::Mul,
                1 => Arith::Div,
                2 => Arith::Add,
                3 => Arith::Sub,
                8 => Arith::NMul,
                _ => return None,
            };
            Some(FpFast::Arith2 { p, op, rn, rm, rd })
        }
        "fp_dp3" if fma => {
            let p = Prec::from_type(ty)?;
            let (o1, o0) = (bit(insn, 21), bit(insn, 15));
            Some(FpFast::Arith3 {
                p,
                rn,
                rm,
                ra: r(14),
                rd,
                neg_a: o1,
                neg_n: o0 != o1,
            })
        }
        "simd_fp_3same" if bits(insn, 31, 30) == 0b01 && !bit(insn, 28) => {
            // Q = 1 (128 bits); sz picks 4S or 2D.
            let p = if bit(insn, 22) { Prec::D } else { Prec::S };
            let op = match (bit(insn, 29), bit(insn, 23), bits(insn, 15, 11)) {
                (false, false, 0x1a) => Arith::Add,
                (false, true, 0x1a) => Arith::Sub,
                (true, false, 0x1b) => Arith::Mul,
                (true, false, 0x1f) => Arith::Div,
                _ => return None,
            };
            Some(FpFast::Vec2 { p, op, rn, rm, rd })
        }
        "fp_imm" => {
            let p = Prec::from_type(ty)?;
            let fmt = if p == Prec::S { soft::S } else { soft::D };
            let value = vfp_expand_imm(fmt, bits(insn, 20, 13));
            Some(FpFast::Imm { rd, value })
        }
        "fp_cmp" => {
            let p = Prec::from_type(ty)?;
            let rm = (!bit(insn, 3)).then_some(rm);
            Some(FpFast::Cmp { p, rn, rm })
        }
        "fp_cvt_int" => {
            let p = Prec::from_type(ty)?;
            let sf = bit(insn, 31);
            match (bits(insn, 20, 19), bits(insn, 18, 16)) {
                (0, 6) => Some(FpFast::ToGpr { p, rn, rd }),
                (0, 7) => Some(FpFast::FromGpr { p, rn, rd }),
                (0, op @ (2 | 3)) => Some(FpFast::IntToFp {
                    p,
                    sf,
                    unsigned: op == 3,
                    rn,
                    rd,
                }),
                (3, op @ (0 | 1)) => Some(FpFast::FpToInt {
                    p,
                    sf,
                    unsigned: op == 1,
                    rn,
                    rd,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether the inline lowering of an `Op::Call` of `helper` tests the FP mode (see
/// [`fpmode_value`]): the region then keeps it in a variable.
pub(super) fn uses_fpmode(helper: &Helper, insn: u32, fma: bool) -> bool {
    match classify(helper, insn, fma) {
        Some(
            FpFast::Move { .. }
            | FpFast::Imm { .. }
            | FpFast::ToGpr { .. }
            | FpFast::FromGpr { .. },
        )
        | None => false,
        Some(_) => true,
    }
}

/// The FP mode the guards test, from the CPU state: `(FPCR & (FZ | RMode)) >> 9 | (~FPSR &
/// IXC) << 8` (see [`MODE_IXC_CLEAR`]), so a guard is one mask test of a value in a register.
/// The region computes it at entry and again after anything that may change FPCR or FPSR.
pub(super) fn fpmode_value(b: &mut FunctionBuilder, cpu: Value) -> Value {
    let off = std::mem::offset_of!(CpuState, fpcr) as i32;
    let fpcr = b.ins().load(types::I64, state_flags(), cpu, off);
    let off = std::mem::offset_of!(CpuState, fpsr) as i32;
    let fpsr = b.ins().load(types::I64, state_flags(), cpu, off);
    let m = b.ins().band_imm_u(fpcr, FPCR_FZ_RMODE);
    let m = b.ins().ushr_imm_u(m, 9);
    let x = b.ins().band_imm_u(fpsr, FPSR_IXC);
    let x = b.ins().bxor_imm_u(x, FPSR_IXC);
    let x = b.ins().ishl_imm_u(x, 8);
    b.ins().bor(m, x)
}

/// Registers an `Op::Call` of `helper` writes through the lowering's variables when it has an
/// inline path: (X register, NZCV). The region's register scan includes them.
pub(super) fn writes(helper: &Helper, insn: u32, fma: bool) -> (Option<u8>, bool) {
    match classify(helper, insn, fma) {
        Some(k) => (k.x_written(), matches!(k, FpFast::Cmp { .. })),
        None => (None, false),
    }
}

impl<E: Env> Lower<'_, '_, E> {
    /// Lowers a helper call inline when the instruction has a fast path; `false` if not (the
    /// caller emits the plain call).
    pub(super) fn fp_inline(&mut self, helper: &'static Helper, insn: u32) -> bool {
        let Some(k) = classify(helper, insn, self.has_fma) else {
            return false;
        };
        match k {
            FpFast::Move { p, op, rn, rd } => {
                let v = self.load_vint(p, rn);
                let v = match op {
                    MoveOp::Mov => v,
                    MoveOp::Abs => self.b.ins().band_imm_u(v, !p.sign() as i64),
                    MoveOp::Neg => self.b.ins().bxor_imm_u(v, p.sign() as i64),
                };
                self.store_vint(rd, v);
            }
            FpFast::Imm { rd, value } => {
                let v = self.b.ins().iconst(types::I64, value as i64);
                self.store_vint(rd, v);
            }
            FpFast::ToGpr { p, rn, rd } => {
                let v = self.load_vint(p, rn);
                self.set_x(rd, v);
            }
            FpFast::FromGpr { p, rn, rd } => {
                let x = self.get_x(rn);
                let v = match p {
                    Prec::S => self.b.ins().band_imm_u(x, 0xffff_ffff),
                    Prec::D => x,
                };
                self.store_vint(rd, v);
            }
            FpFast::Arith2 { p, op, rn, rm, rd } => {
                let (a, b) = (self.load_vf(p, rn), self.load_vf(p, rm));
                let r = self.arith(op, a, b);
                let tiny_ok = op.tiny_ok();
                let ok = self.result_ok(p, r, tiny_ok, MODE_INEXACT_OK);
                let r = if op == Arith::NMul {
                    self.b.ins().fneg(r)
                } else {
                    r
                };
                self.guarded(helper, insn, ok, Some((p, rd, r)), |l| l.store_vf(p, rd, r));
            }
            FpFast::Arith3 {
                p,
                rn,
                rm,
                ra,
                rd,
                neg_a,
                neg_n,
            } => {
                let (n, m, a) = (
                    self.load_vf(p, rn),
                    self.load_vf(p, rm),
                    self.load_vf(p, ra),
                );
                let n = if neg_n { self.b.ins().fneg(n) } else { n };
                let a = if neg_a { self.b.ins().fneg(a) } else { a };
                let r = self.b.ins().fma(n, m, a);
                let ok = self.result_ok(p, r, false, MODE_INEXACT_OK);
                self.guarded(helper, insn, ok, Some((p, rd, r)), |l| l.store_vf(p, rd, r));
            }
            FpFast::Sqrt { p, rn, rd } => {
                let x = self.load_vf(p, rn);
                let r = self.b.ins().sqrt(x);
                let ok = self.result_ok(p, r, false, MODE_INEXACT_OK);
                self.guarded(helper, insn, ok, Some((p, rd, r)), |l| l.store_vf(p, rd, r));
            }
            FpFast::Vec2 { p, op, rn, rm, rd } => {
                let ty = p.vector();
                let (a, b) = (self.load_vq(ty, rn), self.load_vq(ty, rm));
                let r = self.arith(op, a, b);
                let lanes_ok = self.lanes_ok(p, r, op.tiny_ok());
                let g = self.guard(MODE_INEXACT_OK);
                let ok = self.b.ins().band(lanes_ok, g);
                self.guarded(helper, insn, ok, None, |l| {
                    let cpu = l.cpu();
                    l.b.ins().store(state_flags(), r, cpu, vreg_offset(rd));
                });
                // Both paths wrote the whole register to the state.
                self.vcache[rd as usize] = None;
                self.vdirty &= !(1 << rd);
            }
            FpFast::Cvt { from, rn, rd } => {
                let x = self.load_vf(from, rn);
                let (to, r, ok) = match from {
                    // Widening is exact: only NaN (IOC for signalling, DN) and infinity
                    // (excluded for simplicity) need the helper.
                    Prec::S => {
                        let r = self.b.ins().fpromote(types::F64, x);
                        (Prec::D, r, self.result_ok(Prec::D, r, true, MODE_RN_NO_FZ))
                    }
                    Prec::D => {
                        let r = self.b.ins().fdemote(types::F32, x);
                        let ok = self.result_ok(Prec::S, r, false, MODE_INEXACT_OK);
                        (Prec::S, r, ok)
                    }
                };
                self.guarded(helper, insn, ok, Some((to, rd, r)), |l| {
                    l.store_vf(to, rd, r)
                });
            }
            FpFast::Cmp { p, rn, rm } => {
                let a = self.load_vf(p, rn);
                let b = match rm {
                    Some(rm) => self.load_vf(p, rm),
                    None => match p {
                        Prec::S => self.b.ins().f32const(0.0),
                        Prec::D => self.b.ins().f64const(0.0),
                    },
                };
                let ordered = self.b.ins().fcmp(FloatCC::Ordered, a, b);
                let g = self.guard(MODE_FZ);
                let ok = self.b.ins().band(ordered, g);
                // Ordered: less 1000, equal 0110, greater 0010.
                let lt = self.b.ins().fcmp(FloatCC::LessThan, a, b);
                let eq = self.b.ins().fcmp(FloatCC::Equal, a, b);
                let (vlt, veq, vgt) = (
                    self.b.ins().iconst(types::I64, 0x8000_0000),
                    self.b.ins().iconst(types::I64, 0x6000_0000),
                    self.b.ins().iconst(types::I64, 0x2000_0000),
                );
                let ne = self.b.ins().select(eq, veq, vgt);
                let nzcv = self.b.ins().select(lt, vlt, ne);
                self.guarded(helper, insn, ok, None, |l| {
                    l.def_packed(nzcv);
                    l.flags = None;
                });
            }
            FpFast::IntToFp {
                p,
                sf,
                unsigned,
                rn,
                rd,
            } => {
                let x = self.get_x(rn);
                let src = if sf { types::I64 } else { types::I32 };
                let xs = if sf {
                    x
                } else {
                    self.b.ins().ireduce(types::I32, x)
                };
                let r = if unsigned {
                    self.b.ins().fcvt_from_uint(p.float(), xs)
                } else {
                    self.b.ins().fcvt_from_sint(p.float(), xs)
                };
                // Exact (any rounding mode, no flags) when |x| <= 2^mantissa bits.
                let exact_bits = if p == Prec::S { 24 } else { 53 };
                let exact = if !sf && (p == Prec::D) {
                    self.b.ins().iconst(types::I8, 1)
                } else {
                    let mag = if unsigned {
                        xs
                    } else {
                        // |x| as unsigned (MIN stays MIN, which is out of range anyway).
                        let sh = self.b.ins().sshr_imm_u(xs, src.bits() as i64 - 1);
                        let t = self.b.ins().bxor(xs, sh);
                        self.b.ins().isub(t, sh)
                    };
                    self.b
                        .ins()
                        .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, mag, 1i64 << exact_bits)
                };
                let g = self.guard(MODE_INEXACT_OK);
                let ok = self.b.ins().bor(exact, g);
                self.guarded(helper, insn, ok, Some((p, rd, r)), |l| l.store_vf(p, rd, r));
            }
            FpFast::FpToInt {
                p,
                sf,
                unsigned,
                rn,
                rd,
            } => {
                let x = self.load_vf(p, rn);
                let dst = if sf { types::I64 } else { types::I32 };
                // In range of the destination after truncation (false for NaN): no IOC.
                let hi = if sf { 2f64.powi(64) } else { 2f64.powi(32) };
                let (lo, hi) = if unsigned {
                    (-1.0, hi)
                } else if sf {
                    // Below -2^63 - 1 nothing is representable above -2^63 - 2^10.
                    (-(2f64.powi(63)) - 2048.0, hi / 2.0)
                } else {
                    (-(2f64.powi(31)) - 1.0, hi / 2.0)
                };
                // Single precision is compared after (exact) widening.
                let (lo, hi) = (self.b.ins().f64const(lo), self.b.ins().f64const(hi));
                let xd = match p {
                    Prec::D => x,
                    Prec::S => self.b.ins().fpromote(types::F64, x),
                };
                let above = self.b.ins().fcmp(FloatCC::GreaterThan, xd, lo);
                let below = self.b.ins().fcmp(FloatCC::LessThan, xd, hi);
                let inr = self.b.ins().band(above, below);
                let g = self.guard(MODE_FZ | MODE_IXC_CLEAR);
                let ok = self.b.ins().band(inr, g);
                let r = if unsigned {
                    self.b.ins().fcvt_to_uint_sat(dst, x)
                } else {
                    self.b.ins().fcvt_to_sint_sat(dst, x)
                };
                let r = if sf {
                    r
                } else {
                    self.b.ins().uextend(types::I64, r)
                };
                self.guarded(helper, insn, ok, None, |l| l.set_x(rd, r));
            }
        }
        true
    }

    /// Emits `brif ok, fast, slow`: `fast` fills the fast branch, the slow branch is the plain
    /// helper call; both continue at a join block, which becomes current. `vdest`: the
    /// instruction writes the float `r` (defined before the branch) to V[rd] as a scalar of
    /// that precision; the join then caches V[rd] as a parameter (`r`, or on the slow path the
    /// helper's result reloaded).
    fn guarded(
        &mut self,
        helper: &'static Helper,
        insn: u32,
        ok: Value,
        vdest: Option<(Prec, u8, Value)>,
        fast: impl FnOnce(&mut Self),
    ) {
        let fast_blk = self.b.create_block();
        let slow_blk = self.b.create_block();
        let join = self.b.create_block();
        self.b.set_cold_block(slow_blk);
        self.b.ins().brif(ok, fast_blk, &[], slow_blk, &[]);
        let (fk_before, flags_before) = (self.fk_static, self.flags);
        let (vcache_before, vdirty_before) = (self.vcache, self.vdirty);
        self.b.switch_to_block(fast_blk);
        fast(self);
        let args: Vec<BlockArg> = vdest.map(|(_, _, r)| r.into()).into_iter().collect();
        self.b.ins().jump(join, &args);
        let (fk_fast, flags_fast) = (self.fk_static, self.flags);
        self.fk_static = fk_before;
        self.flags = flags_before;
        (self.vcache, self.vdirty) = (vcache_before, vdirty_before);
        self.b.switch_to_block(slow_blk);
        self.call_helper_cold(helper, insn);
        let args: Vec<BlockArg> = match vdest {
            Some((p, rd, _)) => vec![self.load_vf_mem(p, rd).into()],
            None => Vec::new(),
        };
        self.b.ins().jump(join, &args);
        let fk_slow = self.fk_static;
        self.b.switch_to_block(join);
        // The helper implements this very instruction, so it writes no V register but V[rd]:
        // the values cached before the branch still hold on both paths.
        // The slow path stored the dirty registers for the helper; the fast one did not.
        self.vcache = vcache_before;
        self.vdirty = vdirty_before;
        if let Some((p, rd, _)) = vdest {
            let v = self.b.append_block_param(join, p.float());
            self.vcache[rd as usize] = Some(VCached::Float(p, v));
            self.vdirty |= 1 << rd;
        }
        // The lazy-flag variables merge by SSA; the static kind only when both paths agree.
        // The direct flag producer survives only when neither path changed the flags: the
        // slow path's reload redefines NZCV with the same value, so `flags_before` still
        // describes it.
        self.fk_static = if fk_fast == fk_slow { fk_fast } else { None };
        self.flags = match (flags_before, flags_fast) {
            (Some(_), Some(_)) if fk_fast == fk_before => flags_before,
            _ => None,
        };
    }

    /// `a op b` (FNMUL's negation is the caller's), scalar or vector.
    fn arith(&mut self, op: Arith, a: Value, b: Value) -> Value {
        match op {
            Arith::Add => self.b.ins().fadd(a, b),
            Arith::Sub => self.b.ins().fsub(a, b),
            Arith::Mul | Arith::NMul => self.b.ins().fmul(a, b),
            Arith::Div => self.b.ins().fdiv(a, b),
        }
    }

    /// The guard that the mode bits of `mask` (`MODE_*`) are all zero (i8): a test of the
    /// region's FP mode variable.
    fn guard(&mut self, mask: i64) -> Value {
        let m = self.mode_bits(mask);
        self.b.ins().icmp_imm_u(IntCC::Equal, m, 0)
    }

    /// The region's FP mode, masked (no mask op when `mask` covers every mode bit).
    fn mode_bits(&mut self, mask: i64) -> Value {
        let var = self
            .fpmode
            .expect("the region scan found the guarded FP op");
        let mode = self.b.use_var(var);
        if mask == MODE_INEXACT_OK {
            mode
        } else {
            self.b.ins().band_imm_u(mode, mask)
        }
    }

    /// Recomputes the FP mode variable (if the region has one) from the CPU state, after
    /// something may have changed FPCR or FPSR.
    pub(super) fn reload_fpmode(&mut self) {
        if let Some(var) = self.fpmode {
            let cpu = self.cpu();
            let v = fpmode_value(&mut self.b, cpu);
            self.b.def_var(var, v);
        }
    }

    /// The fast path's condition for the float result `r` (i8): the mode bits of `mask` are
    /// zero and the result proves that no exception other than IXC arose: not NaN or
    /// infinite and, unless `tiny_ok`, a biased exponent of at least 2. One compare: the
    /// mode bits lie above any exponent, so `(e | mode) < max` (or `(e - 2 | mode) < max - 2`,
    /// unsigned) fails whenever one is set.
    fn result_ok(&mut self, p: Prec, r: Value, tiny_ok: bool, mask: i64) -> Value {
        let (shift, max) = p.exp();
        let bits = self.b.ins().bitcast(p.int(), state_flags(), r);
        let e = self.b.ins().ushr_imm_u(bits, shift);
        let e = self.b.ins().band_imm_u(e, max);
        let (e, limit) = if tiny_ok {
            (e, max)
        } else {
            (self.b.ins().iadd_imm_s(e, -2), max - 2)
        };
        let mode = self.mode_bits(mask);
        let mode = match p {
            Prec::S => self.b.ins().ireduce(types::I32, mode),
            Prec::D => mode,
        };
        let e = self.b.ins().bor(e, mode);
        self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, e, limit)
    }

    /// The low element of V[r] as a float.
    fn load_vf(&mut self, p: Prec, r: u8) -> Value {
        if let Some(VCached::Float(q, v)) = self.vcache[r as usize] {
            if q == p {
                return v;
            }
        }
        match self.vcached_bits(r) {
            Some(v) => match p {
                Prec::D => self.b.ins().bitcast(types::F64, state_flags(), v),
                Prec::S => {
                    let w = self.b.ins().ireduce(types::I32, v);
                    self.b.ins().bitcast(types::F32, state_flags(), w)
                }
            },
            None => self.load_vf_mem(p, r),
        }
    }

    /// V[r] as a 128-bit vector of type `ty` (a cached scalar has zero upper lanes).
    fn load_vq(&mut self, ty: Type, r: u8) -> Value {
        match self.vcached_bits(r) {
            Some(v) => {
                let q = self.b.ins().scalar_to_vector(types::I64X2, v);
                self.b.ins().bitcast(ty, vector_flags(), q)
            }
            None => {
                let cpu = self.cpu();
                self.b.ins().load(ty, state_flags(), cpu, vreg_offset(r))
            }
        }
    }

    /// Whether every lane of the vector result `r` proves that no exception other than IXC
    /// arose (i8), as [`Self::result_ok`] for a scalar: `|x| < inf` (false for NaN) and,
    /// unless `tiny_ok`, `|x| >= 2^(2 - bias)` (a biased exponent of at least 2).
    fn lanes_ok(&mut self, p: Prec, r: Value, tiny_ok: bool) -> Value {
        let abs = self.b.ins().fabs(r);
        let splat = |l: &mut Self, d: f64| match p {
            Prec::S => l.splat_f32(d as f32),
            Prec::D => l.splat_f64(d),
        };
        let inf = splat(self, f64::INFINITY);
        let mut ok = self.b.ins().fcmp(FloatCC::LessThan, abs, inf);
        if !tiny_ok {
            let min = match p {
                Prec::S => 2f64.powi(2 - 127),
                Prec::D => 2f64.powi(2 - 1023),
            };
            let min = splat(self, min);
            let big = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, abs, min);
            ok = self.b.ins().band(ok, big);
        }
        self.b.ins().vall_true(ok)
    }

    fn splat_f32(&mut self, x: f32) -> Value {
        let c = self.b.ins().f32const(x);
        self.b.ins().splat(types::F32X4, c)
    }

    fn splat_f64(&mut self, x: f64) -> Value {
        let c = self.b.ins().f64const(x);
        self.b.ins().splat(types::F64X2, c)
    }

    /// The low element of V[r] as a float, loaded from the CPU state.
    pub(super) fn load_vf_mem(&mut self, p: Prec, r: u8) -> Value {
        let cpu = self.cpu();
        self.b
            .ins()
            .load(p.float(), state_flags(), cpu, vreg_offset(r))
    }

    /// The low element of V[r] as a zero-extended i64.
    fn load_vint(&mut self, p: Prec, r: u8) -> Value {
        if let Some(VCached::Float(q, v)) = self.vcache[r as usize] {
            if q == p {
                let bits = self.b.ins().bitcast(p.int(), state_flags(), v);
                return match p {
                    Prec::S => self.b.ins().uextend(types::I64, bits),
                    Prec::D => bits,
                };
            }
        }
        if let Some(v) = self.vcached_bits(r) {
            return match p {
                Prec::D => v,
                Prec::S => self.b.ins().band_imm_u(v, 0xffff_ffff),
            };
        }
        let (off, cpu) = (vreg_offset(r), self.cpu());
        match p {
            Prec::S => self.b.ins().uload32(state_flags(), cpu, off),
            Prec::D => self.b.ins().load(types::I64, state_flags(), cpu, off),
        }
    }

    /// Writes a scalar (zero-extended i64 bits) to V[rd], clearing the rest of the register
    /// (in the V cache: the state gets it when the block writes its dirty registers back).
    pub(super) fn store_vint(&mut self, rd: u8, v: Value) {
        self.zero_upper(rd);
        self.vcache[rd as usize] = Some(VCached::Bits(v));
        self.vdirty |= 1 << rd;
    }

    /// Writes a float scalar to V[rd], clearing the rest of the register (see
    /// [`Self::store_vint`]).
    pub(super) fn store_vf(&mut self, p: Prec, rd: u8, r: Value) {
        self.zero_upper(rd);
        self.vcache[rd as usize] = Some(VCached::Float(p, r));
        self.vdirty |= 1 << rd;
    }

    /// The cached low 64 bits of V[r] as a zero-extended i64, if the block knows them.
    pub(super) fn vcached_bits(&mut self, r: u8) -> Option<Value> {
        Some(match self.vcache[r as usize]? {
            VCached::Bits(v) => v,
            VCached::Float(p, v) => {
                let bits = self.b.ins().bitcast(p.int(), state_flags(), v);
                match p {
                    Prec::S => self.b.ins().uextend(types::I64, bits),
                    Prec::D => bits,
                }
            }
        })
    }

    /// Stores cached V[r] to the CPU state (its upper half zero). It stays dirty: the caller
    /// may be on a side path.
    pub(super) fn store_vreg(&mut self, r: u8) {
        let off = vreg_offset(r);
        if self.vpromoted & (1 << r) != 0 {
            // Its upper half was zeroed where it was written ([`Self::zero_upper`]).
            let v = self.vcached_f64(r);
            let cpu = self.cpu();
            self.b.ins().store(state_flags(), v, cpu, off);
            return;
        }
        let v = match self.vcache[r as usize] {
            // A double as it is (no move to a general register).
            Some(VCached::Float(Prec::D, v)) => v,
            _ => self
                .vcached_bits(r)
                .expect("a dirty V register is in the cache"),
        };
        let zero = self.b.ins().iconst(types::I64, 0);
        let cpu = self.cpu();
        self.b.ins().store(state_flags(), v, cpu, off);
        self.b.ins().store(state_flags(), zero, cpu, off + 8);
    }

    /// Stores every dirty V register (they stay dirty; see [`Self::store_vreg`]).
    pub(super) fn store_vdirty(&mut self) {
        for r in 0..32u8 {
            if self.vdirty & (1 << r) != 0 {
                self.store_vreg(r);
            }
        }
    }

    /// The low 64 bits of cached V[r] as an f64 (the value of its region variable).
    fn vcached_f64(&mut self, r: u8) -> Value {
        match self.vcache[r as usize] {
            Some(VCached::Float(Prec::D, v)) => v,
            Some(_) => {
                let bits = self.vcached_bits(r).expect("cached");
                self.b.ins().bitcast(types::F64, state_flags(), bits)
            }
            None => self.load_vf_mem(Prec::D, r),
        }
    }

    /// At a block's terminator: the promoted V registers ([`promoted_vregs`]) go to their
    /// variables for the next block (they stay dirty for the exits); the others are stored.
    pub(super) fn end_block_vregs(&mut self) {
        for r in 0..32u8 {
            let bit = 1u32 << r;
            if self.vpromoted & bit != 0 {
                let v = self.vcached_f64(r);
                self.b.def_var(self.vvars[r as usize], v);
                self.vcache[r as usize] = Some(VCached::Float(Prec::D, v));
            } else if self.vdirty & bit != 0 {
                self.store_vreg(r);
            }
        }
        self.vdirty &= self.vpromoted;
    }

    /// At a block's start: the promoted V registers from their variables, dirty where the
    /// region writes them.
    pub(super) fn start_block_vregs(&mut self) {
        self.vcache = [None; 32];
        let promoted = self.vpromoted;
        for r in (0..32u8).filter(|r| promoted & (1 << r) != 0) {
            let v = self.b.use_var(self.vvars[r as usize]);
            self.vcache[r as usize] = Some(VCached::Float(Prec::D, v));
        }
        self.vdirty = self.vpromoted & self.vwritten;
        self.vzeroed = self.vzeroed_in.get(&self.block_pc).copied().unwrap_or(0) as u32;
    }

    /// After a helper call: the promoted V registers again from the CPU state (clean).
    pub(super) fn reload_promoted(&mut self) {
        let promoted = self.vpromoted;
        for r in (0..32u8).filter(|r| promoted & (1 << r) != 0) {
            let v = self.load_vf_mem(Prec::D, r);
            self.vcache[r as usize] = Some(VCached::Float(Prec::D, v));
        }
    }

    /// Before a scalar write of V[r]: a promoted register's write-back stores only its low
    /// half, so its upper half is zeroed in the state here (once per block).
    pub(super) fn zero_upper(&mut self, r: u8) {
        let bit = 1u32 << r;
        if self.vpromoted & bit != 0 && self.vzeroed & bit == 0 {
            self.vzeroed |= bit;
            let zero = self.b.ins().iconst(types::I64, 0);
            let cpu = self.cpu();
            self.b
                .ins()
                .store(state_flags(), zero, cpu, vreg_offset(r) + 8);
        }
    }

    /// X[n] (31 is XZR) as i64.
    fn get_x(&mut self, n: u8) -> Value {
        let n = n as usize;
        if n == 31 {
            self.b.ins().iconst(types::I64, 0)
        } else if self.tracked[n] {
            self.b.use_var(self.vars[n])
        } else if let Some(v) = self.ro_cache[n] {
            // Loaded on the block's main path, which dominates this.
            v
        } else {
            let cpu = self.cpu();
            self.b
                .ins()
                .load(types::I64, state_flags(), cpu, reg_offset(n))
        }
    }

    /// Writes X[d] (31 is XZR); the region scan made d a variable (see [`writes`]).
    fn set_x(&mut self, d: u8, v: Value) {
        if d != 31 {
            debug_assert!(
                (self.tracked[d as usize] || self.through[d as usize]) && d as usize != NZCV
            );
            self.set_reg(d as usize, v);
        }
    }
}

/// The V registers a region with loops keeps in variables across its blocks (bit r), and
/// those of them it writes: the registers it only ever reads or writes as scalars (upper
/// half zero after a write), through scalar loads and stores and the scalar FP
/// instructions. None when some other SIMD&FP instruction (a vector one may touch any
/// register's upper half) is in the region.
pub(super) fn promoted_vregs(blocks: &[&crate::ir::Block]) -> (u32, u32) {
    use crate::ir::Op;
    let (mut touched, mut written, mut unsafe_) = (0u32, 0u32, 0u32);
    for op in blocks.iter().flat_map(|b| b.ops.iter()) {
        match *op {
            Op::LoadVec { reg, size, .. } if size <= 8 => {
                touched |= 1 << reg;
                written |= 1 << reg;
            }
            Op::StoreVec { reg, size, .. } if size <= 8 => touched |= 1 << reg,
            Op::LoadVec { reg, .. } | Op::StoreVec { reg, .. } => unsafe_ |= 1 << reg,
            Op::Call { insn, .. } => match scalar_fields(insn) {
                Some(fields) => {
                    touched |= fields;
                    written |= 1 << (insn & 31);
                }
                None if touches_v(insn) => return (0, 0),
                None => {}
            },
            _ => {}
        }
    }
    let promoted = touched & !unsafe_;
    (promoted, written & promoted)
}

/// For a scalar FP instruction (FP data processing, conversions, compares, selects,
/// immediates, FMADD & co.) or a 64-bit MOVI/MVNI/FMOV (vector immediate), the register
/// fields it may name (Rd, Rn, Rm, Ra; a field that names an X register only costs a
/// promotion).
pub(super) fn scalar_fields(insn: u32) -> Option<u32> {
    let group = (insn >> 24) & 0x1f;
    // Ra only with three sources; Rm with two, compares and selects.
    let at: &[u32] = if group == 0x1f {
        &[0, 5, 10, 16]
    } else if bit(insn, 21) && (bits(insn, 11, 10) != 0 || bits(insn, 13, 10) == 0b1000) {
        &[0, 5, 16]
    } else {
        &[0, 5]
    };
    let fields = at.iter().fold(0u32, |m, &at| m | 1 << ((insn >> at) & 31));
    let scalar_fp = !bit(insn, 30) && !bit(insn, 29) && (group == 0x1e || group == 0x1f);
    // FMOV to or from the upper half of a D register (Vn.D[1]).
    let fmov_top = insn >> 17 == 0x4f57;
    // MOVI, MVNI, FMOV (vector, immediate) with Q = 0: 64 bits, upper half zeroed.
    let imm64 = insn & 0xdff8_0400 == 0x0f00_0400;
    if (scalar_fp && !fmov_top) || imm64 {
        Some(fields | 1 << (insn & 31))
    } else {
        None
    }
}

/// For an instruction [`scalar_fields`] accepts: whether it surely writes V[Rd] as a scalar
/// (FP data processing with 1, 2 or 3 sources, immediates, selects, 64-bit vector
/// immediates; conversions and compares are left out: they may write X registers or flags).
pub(super) fn writes_vd(insn: u32) -> bool {
    let group = (insn >> 24) & 0x1f;
    if group == 0x1f || insn & 0xdff8_0400 == 0x0f00_0400 {
        return true;
    }
    if !bit(insn, 21) {
        return false;
    }
    match bits(insn, 11, 10) {
        0b10 | 0b11 => true,
        0b01 => false,
        _ => bits(insn, 12, 10) == 0b100 || bits(insn, 14, 10) == 0b10000,
    }
}

/// Whether an instruction (executed by a helper) may read or write V registers: SIMD&FP
/// data processing and SIMD&FP loads and stores.
fn touches_v(insn: u32) -> bool {
    (insn >> 25) & 7 == 7 || (insn >> 25) & 5 == 4 && bit(insn, 26)
}
