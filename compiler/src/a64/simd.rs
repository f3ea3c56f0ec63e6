//! Advanced SIMD: integer data processing (vector and scalar forms), permutes, copies,
//! modified immediates, and the SIMD structure loads/stores (LD1-LD4, ST1-ST4, LDnR,
//! single-lane forms). Floating-point vector instructions live in [`super::fp`].
//!
//! Every instruction runs as a [`Helper`] call, one helper per encoding group of the ARM ARM
//! (C4.1.96): the helper re-decodes the raw word like the ARM pseudocode (Q, U, size,
//! opcode, Rm, Rn, Rd). [`translate`] classifies the word with the declarative [`GROUPS`]
//! table and rejects unallocated or reserved encodings at translation time (SIGILL) by
//! decoding them the same way: register-only groups are dry-run on a scratch [`CpuState`],
//! so validation and execution can never disagree.

use yaxpeax_arm::armv8::a64::Opcode;

use super::{Ctx, Handler, TResult, Undefined};
use crate::ir::Helper;
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

mod by_elem;
mod copy;
mod ldst;
mod modified_imm;
mod permute;
mod shift_imm;
mod three_diff;
mod three_same;
mod two_misc;

#[cfg(test)]
mod tests;

/// The opcodes yaxpeax-arm yields for the instructions of this module.
pub fn handler_for(op: &Opcode) -> Option<Handler> {
    use Opcode::*;
    match op {
        // Structure loads and stores.
        LD1 | LD2 | LD3 | LD4 | ST1 | ST2 | ST3 | ST4 | LD1R | LD2R | LD3R | LD4R
        // Three same.
        | SHADD | UHADD | SQADD | UQADD | SRHADD | URHADD | SHSUB | UHSUB | SQSUB | UQSUB
        | CMGT | CMHI | CMGE | CMHS | SSHL | USHL | SQSHL | UQSHL | SRSHL | URSHL | SQRSHL
        | UQRSHL | SMAX | UMAX | SMIN | UMIN | SABD | UABD | SABA | UABA | CMTST | CMEQ | MLA
        | MLS | MUL | PMUL | SMAXP | UMAXP | SMINP | UMINP | SQDMULH | SQRDMULH | ADDP | BSL
        | BIT | BIF | NOT
        // Three different.
        | SADDL | SADDL2 | UADDL | UADDL2 | SADDW | SADDW2 | UADDW | UADDW2 | SSUBL | SSUBL2
        | USUBL | USUBL2 | SSUBW | SSUBW2 | USUBW | USUBW2 | ADDHN | ADDHN2 | RADDHN | RADDHN2
        | SUBHN | SUBHN2 | RSUBHN | RSUBHN2 | SABAL | SABAL2 | UABAL | UABAL2 | SABDL | SABDL2
        | UABDL | UABDL2 | SMLAL | SMLAL2 | UMLAL | UMLAL2 | SMLSL | SMLSL2 | UMLSL | UMLSL2
        | SMULL | SMULL2 | UMULL | UMULL2 | PMULL | PMULL2 | SQDMULL | SQDMULL2 | SQDMLAL
        | SQDMLAL2 | SQDMLSL | SQDMLSL2
        // Two-register misc and across lanes.
        | REV64 | SADDLP | UADDLP | SUQADD | USQADD | CNT | SADALP | UADALP | SQABS | SQNEG
        | CMLT | CMLE | ABS | NEG | XTN | XTN2 | SQXTN | SQXTN2 | UQXTN | UQXTN2 | SQXTUN
        | SQXTUN2 | SHLL | SHLL2 | ADDV | SADDLV | UADDLV | SMAXV | UMAXV | SMINV | UMINV
        // Shift by immediate.
        | SSHR | USHR | SSRA | USRA | SRSHR | URSHR | SRSRA | URSRA | SRI | SLI | SHL | SQSHLU
        | SHRN | SHRN2 | RSHRN | RSHRN2 | SQSHRN | SQSHRN2 | UQSHRN | UQSHRN2 | SQRSHRN | SQRSHRN2
        | UQRSHRN | UQRSHRN2 | SQSHRUN | SQSHRUN2 | SQRSHRUN | SQRSHRUN2 | SSHLL | SSHLL2
        | USHLL | USHLL2
        // Copy, permute, modified immediate.
        | DUP | INS | UMOV | SMOV | ZIP1 | ZIP2 | UZP1 | UZP2 | TRN1 | TRN2 | EXT | TBL | TBX
        | MOVI | MVNI
        // Opcodes shared with general-register instructions (normally routed to dp_imm /
        // dp_reg by the main table, which forward Advanced SIMD words to [`translate`]).
        | ADD | SUB | AND | ORR | ORN | EOR | BIC | RBIT | REV16 | REV32 | CLZ | CLS => {
            Some(translate as Handler)
        }
        _ => None,
    }
}

/// An Advanced SIMD encoding group (one helper each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    LdStMulti,
    LdStSingle,
    ThreeSame,
    ThreeDiff,
    TwoMisc,
    Across,
    ScalarPairwise,
    Copy,
    Permute,
    Ext,
    Tbl,
    ModImm,
    ShiftImm,
    ByElem,
}

/// (mask, value, group), first match wins (modified immediate before shift by immediate,
/// which needs immh != 0).
const GROUPS: &[(u32, u32, Group)] = &[
    (0xbfbf_0000, 0x0c00_0000, Group::LdStMulti),
    (0xbfa0_0000, 0x0c80_0000, Group::LdStMulti),
    (0xbf9f_0000, 0x0d00_0000, Group::LdStSingle),
    (0xbf80_0000, 0x0d80_0000, Group::LdStSingle),
    (0x9f20_0400, 0x0e20_0400, Group::ThreeSame),
    (0xdf20_0400, 0x5e20_0400, Group::ThreeSame),
    (0x9f20_0c00, 0x0e20_0000, Group::ThreeDiff),
    (0xdf20_0c00, 0x5e20_0000, Group::ThreeDiff),
    (0x9f3e_0c00, 0x0e20_0800, Group::TwoMisc),
    (0xdf3e_0c00, 0x5e20_0800, Group::TwoMisc),
    (0x9f3e_0c00, 0x0e30_0800, Group::Across),
    (0xdf3e_0c00, 0x5e30_0800, Group::ScalarPairwise),
    (0x9fe0_8400, 0x0e00_0400, Group::Copy),
    (0xdfe0_8400, 0x5e00_0400, Group::Copy),
    (0xbf20_8c00, 0x0e00_0800, Group::Permute),
    (0xbfe0_8400, 0x2e00_0000, Group::Ext),
    (0xbfe0_8c00, 0x0e00_0000, Group::Tbl),
    (0x9ff8_0400, 0x0f00_0400, Group::ModImm),
    (0x9f80_0400, 0x0f00_0400, Group::ShiftImm),
    (0xdf80_0400, 0x5f00_0400, Group::ShiftImm),
    (0x9f00_0400, 0x0f00_0000, Group::ByElem),
    (0xdf00_0400, 0x5f00_0000, Group::ByElem),
];

fn classify(insn: u32) -> Option<Group> {
    GROUPS
        .iter()
        .find(|(m, v, _)| insn & m == *v)
        .map(|&(_, _, g)| g)
}

/// Executes a register-only group on `st`; `None` (state untouched) when the word is
/// unallocated, reserved or not implemented.
type ExecFn = fn(&mut CpuState, u32) -> Option<()>;

fn exec_fn(g: Group) -> Option<ExecFn> {
    Some(match g {
        Group::ThreeSame => three_same::exec,
        Group::ThreeDiff => three_diff::exec,
        Group::TwoMisc => two_misc::exec,
        Group::Across => two_misc::exec_across,
        Group::ScalarPairwise => two_misc::exec_scalar_pairwise,
        Group::Copy => copy::exec,
        Group::Permute => permute::exec,
        Group::Ext => permute::exec_ext,
        Group::Tbl => permute::exec_tbl,
        Group::ModImm => modified_imm::exec,
        Group::ShiftImm => shift_imm::exec,
        Group::ByElem => by_elem::exec,
        Group::LdStMulti | Group::LdStSingle => return None,
    })
}

macro_rules! reg_helpers {
    ($($name:ident = $s:literal, $f:path, $gpr:literal;)*) => {$(
        static $name: Helper = Helper {
            name: $s,
            gpr: $gpr,
            func: {
                fn h(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
                    $f(st, insn).ok_or(Fault::Undefined { insn })
                }
                h
            },
        };
    )*};
}

reg_helpers! {
    H_3SAME = "simd_3same", three_same::exec, false;
    H_3DIFF = "simd_3diff", three_diff::exec, false;
    H_2MISC = "simd_2misc", two_misc::exec, false;
    H_ACROSS = "simd_across", two_misc::exec_across, false;
    H_PAIRWISE = "simd_scalar_pairwise", two_misc::exec_scalar_pairwise, false;
    H_COPY = "simd_copy", copy::exec, true;
    H_PERMUTE = "simd_permute", permute::exec, false;
    H_EXT = "simd_ext", permute::exec_ext, false;
    H_TBL = "simd_tbl", permute::exec_tbl, false;
    H_MODIMM = "simd_modimm", modified_imm::exec, false;
    H_SHIFT_IMM = "simd_shift_imm", shift_imm::exec, false;
    H_BY_ELEM = "simd_by_elem", by_elem::exec, false;
}

static H_LDST_MULTI: Helper = Helper {
    name: "simd_ldst_multi",
    func: ldst::exec,
    gpr: true,
};
static H_LDST_SINGLE: Helper = Helper {
    name: "simd_ldst_single",
    func: ldst::exec,
    gpr: true,
};

fn helper(g: Group) -> &'static Helper {
    match g {
        Group::LdStMulti => &H_LDST_MULTI,
        Group::LdStSingle => &H_LDST_SINGLE,
        Group::ThreeSame => &H_3SAME,
        Group::ThreeDiff => &H_3DIFF,
        Group::TwoMisc => &H_2MISC,
        Group::Across => &H_ACROSS,
        Group::ScalarPairwise => &H_PAIRWISE,
        Group::Copy => &H_COPY,
        Group::Permute => &H_PERMUTE,
        Group::Ext => &H_EXT,
        Group::Tbl => &H_TBL,
        Group::ModImm => &H_MODIMM,
        Group::ShiftImm => &H_SHIFT_IMM,
        Group::ByElem => &H_BY_ELEM,
    }
}

/// Whether `insn` is an Advanced SIMD instruction this module implements.
pub fn implemented(insn: u32) -> bool {
    match classify(insn) {
        None => false,
        Some(Group::LdStMulti | Group::LdStSingle) => ldst::decode(insn).is_some(),
        Some(g) => match exec_fn(g) {
            Some(f) => f(&mut CpuState::default(), insn).is_some(),
            None => false,
        },
    }
}

/// Translates one Advanced SIMD instruction (any word; callers sharing an opcode with
/// general-register instructions may forward here).
pub fn translate(c: &mut Ctx) -> TResult {
    let g = classify(c.insn).ok_or(Undefined)?;
    if !implemented(c.insn) {
        return Err(Undefined);
    }
    c.call(helper(g));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Lane helpers shared by the groups.

/// The low `n` (0..=64) bits set.
pub(crate) fn ones(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Element `i` of `esize` bits of a 128-bit register.
pub(crate) fn elem(v: u128, i: usize, esize: u32) -> u64 {
    ((v >> (i as u32 * esize)) as u64) & ones(esize)
}

/// Sets element `i` of `esize` bits of a 128-bit register.
pub(crate) fn set_elem(v: &mut u128, i: usize, esize: u32, x: u64) {
    let sh = i as u32 * esize;
    let m = (ones(esize) as u128) << sh;
    *v = (*v & !m) | (((x & ones(esize)) as u128) << sh);
}

/// The low `esize` bits of `x` as a signed or unsigned integer.
pub(crate) fn int(x: u64, esize: u32, unsigned: bool) -> i128 {
    if unsigned {
        (x & ones(esize)) as i128
    } else {
        super::sext(x, esize) as i128
    }
}

/// SatQ: saturates `x` to `esize` bits (signed or unsigned), setting `qc` when it clips.
pub(crate) fn sat(x: i128, esize: u32, unsigned: bool, qc: &mut bool) -> u64 {
    let (lo, hi) = if unsigned {
        (0i128, ones(esize) as i128)
    } else {
        (-(1i128 << (esize - 1)), (1i128 << (esize - 1)) - 1)
    };
    let r = if x < lo {
        *qc = true;
        lo
    } else if x > hi {
        *qc = true;
        hi
    } else {
        x
    };
    r as u64 & ones(esize)
}

/// `x << sh`, or `None` when it does not fit in an i128.
pub(crate) fn shl_checked(x: i128, sh: u32) -> Option<i128> {
    if x == 0 {
        Some(0)
    } else if sh >= 126 {
        None
    } else {
        x.checked_mul(1i128 << sh)
    }
}

/// `x >> n` (arithmetic), adding the rounding constant `1 << (n - 1)` first when `round`.
pub(crate) fn shr_round(x: i128, n: u32, round: bool) -> i128 {
    if n == 0 {
        x
    } else if n >= 120 {
        if round {
            0
        } else {
            x >> 127
        }
    } else if round {
        (x + (1i128 << (n - 1))) >> n
    } else {
        x >> n
    }
}

/// Sets FPSR.QC when `qc`.
pub(crate) fn set_qc(st: &mut CpuState, qc: bool) {
    if qc {
        st.fpsr |= 1 << 27;
    }
}

/// The low 64 bits of a register, as a u128.
pub(crate) fn lo64(v: u128) -> u128 {
    v & u64::MAX as u128
}

/// The helpers of this module (for the registry of [`super::helpers`]).
pub(super) static HELPERS: &[&Helper] = &[
    &H_3SAME,
    &H_3DIFF,
    &H_2MISC,
    &H_ACROSS,
    &H_PAIRWISE,
    &H_COPY,
    &H_PERMUTE,
    &H_EXT,
    &H_TBL,
    &H_MODIMM,
    &H_SHIFT_IMM,
    &H_BY_ELEM,
    &H_LDST_MULTI,
    &H_LDST_SINGLE,
];
