//! Generators of random A64 programs and initial states, and the reports comparing two final
//! states: shared by the JIT differential test (`jit_diff.rs`) and the `vmfuzz` harness of
//! vmc-tests (which includes this file by path), so both test the same programs.

use std::fmt::Write as _;

use super::{elf_image, Final, Rng, Segment, TierRun};
use vmc_compiler::a64::disasm;
use vmc_compiler::a64::fp::{FPCR_MASK, FPSR_MASK};
use vmc_compiler::CpuState;

pub const CODE: u64 = 0x40_0000;
pub const DATA: u64 = 0x50_0000;
pub const DATA_LEN: u64 = 4 * 4096;
pub const MID: u64 = DATA + DATA_LEN / 2;

pub const NOP: u32 = 0xd503_201f;
pub const IDX: u32 = 24;
pub const CNT: u32 = 28;
/// Registers random instructions may write.
pub const DST: [u32; 24] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 25, 26, 27, 29, 30,
];
/// Base registers of memory accesses (31 = SP).
pub const BASES: [u32; 5] = [20, 21, 22, 23, 31];

pub fn dst(r: &mut Rng) -> u32 {
    r.pick(&DST)
}
/// A destination where 31 means the zero register.
pub fn dst_zr(r: &mut Rng) -> u32 {
    if r.one_in(8) {
        31
    } else {
        dst(r)
    }
}
pub fn src(r: &mut Rng) -> u32 {
    r.b32(32)
}
pub fn base(r: &mut Rng) -> u32 {
    r.pick(&BASES)
}
/// A signed immediate in lo..=hi encoded in `bits` bits.
pub fn simm(r: &mut Rng, lo: i32, hi: i32, bits: u32) -> u32 {
    let v = lo + r.below((hi - lo + 1) as u64) as i32;
    (v as u32) & ((1 << bits) - 1)
}

// ---------------------------------------------------------------------------------------
// Random instructions.

pub fn bitmask_valid(n: u32, imms: u32, sf: bool) -> bool {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return false;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (!sf && len > 5) {
        return false;
    }
    let levels = (1u32 << len) - 1;
    (imms & levels) != levels
}

pub fn gen_dp_imm(r: &mut Rng) -> Option<u32> {
    let sf = r.b32(2);
    let rn = src(r);
    Some(match r.below(7) {
        0 => r.b32(2) << 31 | r.b32(4) << 29 | 0b10000 << 24 | (r.u32() & 0x7ffff) << 5 | dst(r),
        1 => {
            let (op, s) = (r.b32(2), r.b32(2));
            let rd = if s == 1 { dst_zr(r) } else { dst(r) };
            let imm = if r.coin() { r.b32(16) } else { r.u32() & 0xfff };
            sf << 31
                | op << 30
                | s << 29
                | 0b100010 << 23
                | r.b32(2) << 22
                | imm << 10
                | rn << 5
                | rd
        }
        2 => {
            let n = if sf == 1 { r.b32(2) } else { 0 };
            let (immr, imms) = (r.b32(64), r.b32(64));
            let immr = if sf == 0 { immr & 31 } else { immr };
            if !bitmask_valid(n, imms, sf == 1) {
                return None;
            }
            let opc = r.b32(4);
            let rd = if opc == 3 { dst_zr(r) } else { dst(r) };
            sf << 31 | opc << 29 | 0b100100 << 23 | n << 22 | immr << 16 | imms << 10 | rn << 5 | rd
        }
        3 => {
            let opc = r.pick(&[0u32, 2, 3]);
            let hw = if sf == 1 { r.b32(4) } else { r.b32(2) };
            sf << 31 | opc << 29 | 0b100101 << 23 | hw << 21 | (r.u32() & 0xffff) << 5 | dst_zr(r)
        }
        4 | 5 => {
            let lim = if sf == 1 { 64 } else { 32 };
            sf << 31
                | r.b32(3) << 29
                | 0b100110 << 23
                | sf << 22
                | r.b32(lim) << 16
                | r.b32(lim) << 10
                | rn << 5
                | dst_zr(r)
        }
        _ => {
            let lim = if sf == 1 { 64 } else { 32 };
            sf << 31
                | 0b100111 << 23
                | sf << 22
                | src(r) << 16
                | r.b32(lim) << 10
                | rn << 5
                | dst_zr(r)
        }
    })
}

pub fn gen_dp_reg(r: &mut Rng) -> Option<u32> {
    let sf = r.b32(2);
    let (rm, rn) = (src(r), src(r));
    let imm6 = if sf == 1 { r.b32(64) } else { r.b32(32) };
    Some(match r.below(13) {
        0 | 1 => {
            sf << 31
                | r.b32(4) << 29
                | 0b01010 << 24
                | r.b32(4) << 22
                | r.b32(2) << 21
                | rm << 16
                | imm6 << 10
                | rn << 5
                | dst_zr(r)
        }
        2 | 3 => {
            sf << 31
                | r.b32(4) << 29
                | 0b01011 << 24
                | r.b32(3) << 22
                | rm << 16
                | imm6 << 10
                | rn << 5
                | dst_zr(r)
        }
        4 => {
            let s = r.b32(2);
            let rd = if s == 1 { dst_zr(r) } else { dst(r) };
            sf << 31
                | r.b32(2) << 30
                | s << 29
                | 0b01011001 << 21
                | rm << 16
                | r.b32(8) << 13
                | r.b32(5) << 10
                | rn << 5
                | rd
        }
        5 => sf << 31 | r.b32(4) << 29 | 0b11010000 << 21 | rm << 16 | rn << 5 | dst_zr(r),
        6 => ccmp(r, sf, rm, rn),
        7 | 8 => {
            sf << 31
                | r.b32(2) << 30
                | 0b11010100 << 21
                | rm << 16
                | r.b32(16) << 12
                | r.b32(2) << 10
                | rn << 5
                | dst_zr(r)
        }
        9 => {
            let opcode = if sf == 1 {
                r.b32(6)
            } else {
                r.pick(&[0, 1, 2, 4, 5])
            };
            sf << 31 | 1 << 30 | 0b11010110 << 21 | opcode << 10 | rn << 5 | dst_zr(r)
        }
        10 => {
            sf << 31
                | 0b11010110 << 21
                | rm << 16
                | r.pick(&[2u32, 3, 8, 9, 10, 11]) << 10
                | rn << 5
                | dst_zr(r)
        }
        11 => {
            let sz = if sf == 1 { 3 } else { r.b32(3) };
            sf << 31
                | 0b11010110 << 21
                | rm << 16
                | (0b010 << 3 | r.b32(2) << 2 | sz) << 10
                | rn << 5
                | dst_zr(r)
        }
        _ => {
            let (sf, op31, o0, ra) = match r.below(4) {
                0 => (sf, 0, r.b32(2), src(r)),
                1 => (1, r.pick(&[1u32, 5]), r.b32(2), src(r)),
                2 => (1, r.pick(&[2u32, 6]), 0, 31),
                _ => (1, 0, r.b32(2), src(r)),
            };
            sf << 31
                | 0b11011 << 24
                | op31 << 21
                | rm << 16
                | o0 << 15
                | ra << 10
                | rn << 5
                | dst_zr(r)
        }
    })
}

/// A flag-setting instruction (CMP/CMN/TST/SUBS/ADDS/ANDS/CCMP/ADCS), to put right before a
/// conditional branch or select (the lowering's lazy-flag paths).
/// CCMP/CCMN (register or immediate form, random condition and flags).
pub fn ccmp(r: &mut Rng, sf: u32, rm: u32, rn: u32) -> u32 {
    sf << 31
        | r.b32(2) << 30
        | 1 << 29
        | 0b11010010 << 21
        | rm << 16
        | r.b32(16) << 12
        | r.b32(2) << 11
        | rn << 5
        | r.b32(16)
}

pub fn gen_flag_setter(r: &mut Rng) -> u32 {
    let sf = r.b32(2);
    let (rn, rm) = (src(r), src(r));
    let rd = if r.coin() { 31 } else { dst(r) };
    match r.below(6) {
        // SUBS/ADDS immediate (CMP/CMN when rd = 31).
        0 | 1 => {
            let imm = if r.coin() { r.b32(8) } else { r.u32() & 0xfff };
            sf << 31 | r.b32(2) << 30 | 1 << 29 | 0b100010 << 23 | imm << 10 | rn << 5 | rd
        }
        // SUBS/ADDS shifted register.
        2 | 3 => {
            let imm6 = if r.coin() {
                0
            } else if sf == 1 {
                r.b32(64)
            } else {
                r.b32(32)
            };
            sf << 31
                | r.b32(2) << 30
                | 1 << 29
                | 0b01011 << 24
                | r.b32(3) << 22
                | rm << 16
                | imm6 << 10
                | rn << 5
                | rd
        }
        // ANDS/BICS shifted register (TST).
        4 => sf << 31 | 0b11 << 29 | 0b01010 << 24 | r.b32(2) << 21 | rm << 16 | rn << 5 | rd,
        // CCMP/CCMN.
        _ => ccmp(r, sf, rm, rn),
    }
}

/// (size, opc) of a valid single-register general load/store; `prefetch_ok` allows PRFM.
pub fn single_sz_opc(r: &mut Rng, prefetch_ok: bool) -> (u32, u32) {
    loop {
        let (size, opc) = (r.b32(4), r.b32(4));
        match (opc, size) {
            (0 | 1, _) => return (size, opc),
            (2, 3) if prefetch_ok => return (size, opc),
            (2, 0..=2) => return (size, opc),
            (3, 0 | 1) => return (size, opc),
            _ => {}
        }
    }
}

/// The transfer register of a general load (opc != 0) or store (opc == 0) with base `rn`.
pub fn rt_for(r: &mut Rng, opc: u32, rn: u32, writeback: bool) -> u32 {
    if opc != 0 {
        return dst_zr(r);
    }
    loop {
        let rt = src(r);
        if !(writeback && rt == rn && rn != 31) {
            return rt;
        }
    }
}

pub fn gen_ldst(r: &mut Rng) -> Option<u32> {
    let rn = base(r);
    Some(match r.below(10) {
        // Unscaled (LDUR/STUR/PRFUM), post-index, unprivileged, pre-index.
        0..=2 => {
            let idx = r.b32(4);
            let (size, opc) = single_sz_opc(r, idx == 0);
            let writeback = idx & 1 == 1;
            let imm9 = if writeback {
                simm(r, -48, 48, 9)
            } else {
                simm(r, -256, 255, 9)
            };
            let rt = rt_for(r, opc, rn, writeback);
            size << 30 | 0b111 << 27 | opc << 22 | imm9 << 12 | idx << 10 | rn << 5 | rt
        }
        // Unsigned scaled 12-bit offset.
        3 | 4 => {
            let (size, opc) = single_sz_opc(r, true);
            let imm12 = r.b32(1024 >> size);
            let rt = rt_for(r, opc, rn, false);
            size << 30 | 0b111 << 27 | 1 << 24 | opc << 22 | imm12 << 10 | rn << 5 | rt
        }
        // Register offset with the small index register: UXTW, LSL, SXTW, SXTX.
        5 => {
            let (size, opc) = single_sz_opc(r, true);
            let rt = rt_for(r, opc, rn, false);
            size << 30
                | 0b111 << 27
                | opc << 22
                | 1 << 21
                | IDX << 16
                | r.pick(&[2u32, 3, 6, 7]) << 13
                | r.b32(2) << 12
                | 0b10 << 10
                | rn << 5
                | rt
        }
        // Pairs: STP/LDP (W, X), LDPSW, STNP/LDNP; offset, pre- and post-index.
        6 | 7 => {
            let load = r.b32(2);
            let opc = if load == 1 {
                r.pick(&[0u32, 1, 2])
            } else {
                r.pick(&[0u32, 2])
            };
            let idx = if opc == 1 {
                r.pick(&[1u32, 2, 3])
            } else {
                r.b32(4)
            };
            let writeback = idx & 1 == 1;
            let (rt, rt2) = if load == 1 {
                let a = dst_zr(r);
                let b = loop {
                    let b = dst_zr(r);
                    if b != a {
                        break b;
                    }
                };
                (a, b)
            } else {
                (rt_for(r, 0, rn, writeback), rt_for(r, 0, rn, writeback))
            };
            let imm7 = if writeback {
                simm(r, -6, 6, 7)
            } else {
                simm(r, -64, 63, 7)
            };
            opc << 30 | 0b101 << 27 | idx << 23 | load << 22 | imm7 << 15 | rt2 << 10 | rn << 5 | rt
        }
        // LDAR/STLR, LDAPR, LDAPUR/STLUR.
        8 => {
            let size = r.b32(4);
            match r.below(3) {
                0 => {
                    let l = r.b32(2);
                    let rt = if l == 1 { dst_zr(r) } else { src(r) };
                    size << 30
                        | 0b001000 << 24
                        | 1 << 23
                        | l << 22
                        | 31 << 16
                        | 1 << 15
                        | 31 << 10
                        | rn << 5
                        | rt
                }
                1 => {
                    size << 30
                        | 0b111000 << 24
                        | 0b101 << 21
                        | 31 << 16
                        | 0b110000 << 10
                        | rn << 5
                        | dst_zr(r)
                }
                _ => {
                    let opc = match size {
                        3 => r.b32(2),
                        2 => r.b32(3),
                        _ => r.b32(4),
                    };
                    let rt = rt_for(r, opc, rn, false);
                    size << 30
                        | 0b011001 << 24
                        | opc << 22
                        | simm(r, -64, 63, 9) << 12
                        | rn << 5
                        | rt
                }
            }
        }
        // LSE atomics: LDADD, LDCLR, LDEOR, LDSET, SWP (W and X, all orderings).
        _ => {
            let size = r.pick(&[2u32, 3]);
            let (o3, opc) = if r.one_in(5) { (1, 0) } else { (0, r.b32(4)) };
            size << 30
                | 0b111000 << 24
                | r.b32(2) << 23
                | r.b32(2) << 22
                | 1 << 21
                | src(r) << 16
                | o3 << 15
                | opc << 12
                | rn << 5
                | dst_zr(r)
        }
    })
}

thread_local! {
    /// The program being generated uses scalar FP only (no vector instruction, no Q-register
    /// load or store), so its loops keep V registers in variables across blocks.
    static SCALAR_FP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub fn gen_fp(r: &mut Rng) -> Option<u32> {
    let (rd, rn, rm) = (r.b32(32), r.b32(32), r.b32(32));
    let ty = r.b32(2);
    let k = r.below(20);
    if SCALAR_FP.with(|s| s.get()) && (13..=18).contains(&k) {
        return None;
    }
    Some(match k {
        // FMUL, FDIV, FADD, FSUB, FMAX, FMIN, FMAXNM, FMINNM, FNMUL.
        0..=3 => 0x1e20_0800 | ty << 22 | rm << 16 | r.b32(9) << 12 | rn << 5 | rd,
        // FCMP, FCMPE (register or with zero).
        4 | 5 => {
            let opc = r.pick(&[0u32, 8, 16, 24]);
            let rm = if opc & 8 != 0 { 0 } else { rm };
            0x1e20_2000 | ty << 22 | rm << 16 | rn << 5 | opc
        }
        // FCSEL.
        6 => 0x1e20_0c00 | ty << 22 | rm << 16 | r.b32(16) << 12 | rn << 5 | rd,
        // FMOV between general and FP registers.
        7 => r.pick(&[0x9e67_0000u32, 0x1e27_0000]) | src(r) << 5 | rd,
        8 => r.pick(&[0x9e66_0000u32, 0x1e26_0000]) | rn << 5 | dst_zr(r),
        // SCVTF/UCVTF (X, W sources; single or double), FCVTZS/FCVTZU to X or W.
        9 => r.pick(&[0x1e22_0000u32, 0x1e23_0000]) | r.b32(2) << 31 | ty << 22 | src(r) << 5 | rd,
        10 => {
            r.pick(&[0x1e38_0000u32, 0x1e39_0000]) | r.b32(2) << 31 | ty << 22 | rn << 5 | dst_zr(r)
        }
        // FMOV, FABS, FNEG, FSQRT (single or double), FCVT (double <-> single), FMOV #imm.
        11 => {
            if r.one_in(6) {
                return Some(0x1e20_1000 | ty << 22 | r.b32(256) << 13 | rd);
            }
            let w = r.pick(&[
                0x1e20_4000u32,
                0x1e20_c000,
                0x1e21_4000,
                0x1e21_c000,
                0x1e62_4000,
                0x1e22_c000,
            ]);
            let ty = if w & 0x0002_0000 != 0 { 0 } else { ty };
            w | ty << 22 | rn << 5 | rd
        }
        // FMADD, FMSUB, FNMADD, FNMSUB.
        12 => {
            0x1f00_0000
                | ty << 22
                | r.b32(2) << 21
                | r.b32(2) << 15
                | rm << 16
                | r.b32(32) << 10
                | rn << 5
                | rd
        }
        // ADD/SUB vector.
        13 => {
            let q = r.b32(2);
            let size = if q == 1 { r.b32(4) } else { r.b32(3) };
            r.pick(&[0x0e20_8400u32, 0x2e20_8400]) | q << 30 | size << 22 | rm << 16 | rn << 5 | rd
        }
        // CMEQ, CMGT, CMHI (register).
        14 => {
            let q = r.b32(2);
            let size = if q == 1 { r.b32(4) } else { r.b32(3) };
            r.pick(&[0x2e20_8c00u32, 0x0e20_3400, 0x2e20_3400])
                | q << 30
                | size << 22
                | rm << 16
                | rn << 5
                | rd
        }
        // AND, ORR, EOR, BIC (vector).
        15 => {
            r.pick(&[0x0e20_1c00u32, 0x0ea0_1c00, 0x2e20_1c00, 0x0e60_1c00])
                | r.b32(2) << 30
                | rm << 16
                | rn << 5
                | rd
        }
        // FADD, FSUB, FMUL, FDIV vector (2S, 4S, 2D).
        16 => {
            let sz = r.b32(2);
            let q = if sz == 1 { 1 } else { r.b32(2) };
            r.pick(&[0x0e20_d400u32, 0x0ea0_d400, 0x2e20_dc00, 0x2e20_fc00])
                | q << 30
                | sz << 22
                | rm << 16
                | rn << 5
                | rd
        }
        // DUP (general), UMOV to general.
        17 => {
            let q = r.b32(2);
            let imm5 = if q == 1 {
                r.pick(&[1u32, 2, 4, 8])
            } else {
                r.pick(&[1u32, 2, 4])
            };
            0x0e00_0c00 | q << 30 | imm5 << 16 | src(r) << 5 | rd
        }
        18 => {
            if r.coin() {
                0x0e00_3c00 | (0b00100 | r.b32(4) << 3) << 16 | rn << 5 | dst_zr(r)
            } else {
                0x4e08_3c00 | r.b32(2) << 20 | rn << 5 | dst_zr(r)
            }
        }
        // SIMD&FP loads and stores.
        _ => gen_simd_ldst(r),
    })
}

pub fn gen_simd_ldst(r: &mut Rng) -> u32 {
    let rn = base(r);
    let (rt, rt2) = (r.b32(32), r.b32(32));
    let l = r.b32(2);
    let k = if SCALAR_FP.with(|s| s.get()) {
        1
    } else {
        r.below(6)
    };
    match k {
        // LDR/STR q (scaled 12-bit offset).
        0 => 0x3d80_0000 | l << 22 | r.b32(64) << 10 | rn << 5 | rt,
        // LDR/STR d, s.
        1 => r.pick(&[0xfd00_0000u32, 0xbd00_0000]) | l << 22 | r.b32(128) << 10 | rn << 5 | rt,
        // LDUR/STUR q, and post-/pre-index.
        2 => {
            let idx = r.pick(&[0u32, 1, 3]);
            let imm9 = if idx == 0 {
                simm(r, -256, 255, 9)
            } else {
                simm(r, -48, 48, 9)
            };
            0x3c80_0000 | l << 22 | imm9 << 12 | idx << 10 | rn << 5 | rt
        }
        // LDP/STP q, d (signed offset).
        3 => {
            if l == 1 && rt == rt2 {
                return 0x3d80_0000 | rn << 5 | rt;
            }
            r.pick(&[0xad00_0000u32, 0x6d00_0000])
                | l << 22
                | simm(r, -16, 15, 7) << 15
                | rt2 << 10
                | rn << 5
                | rt
        }
        // LD1/ST1 {vt.16b}, [xn] and {vt.2d}.
        4 => 0x0c00_7000 | 1 << 30 | l << 22 | r.pick(&[0u32, 3]) << 10 | rn << 5 | rt,
        // LDR q (register offset, LSL #4 or unscaled).
        _ => {
            0x3ca0_6800
                | l << 22
                | IDX << 16
                | r.pick(&[3u32, 7]) << 13
                | r.b32(2) << 12
                | rn << 5
                | rt
        }
    }
}

pub fn gen_sys(r: &mut Rng) -> u32 {
    // NZCV, FPCR, FPSR, TPIDR_EL0.
    let sysreg = r.pick(&[0x4200u32, 0x4400, 0x4420, 0xd040]);
    if r.coin() {
        0xd53b_0000 | sysreg | dst_zr(r)
    } else {
        0xd51b_0000 | sysreg | src(r)
    }
}

/// One random non-branch instruction.
pub fn gen_insn(r: &mut Rng) -> u32 {
    loop {
        let w = match r.below(100) {
            0..=24 => gen_dp_imm(r),
            25..=54 => gen_dp_reg(r),
            55..=79 => gen_ldst(r),
            80..=95 => gen_fp(r),
            96..=97 => Some(gen_sys(r)),
            _ => Some(gen_flag_setter(r)),
        };
        if let Some(w) = w {
            return w;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Programs.

/// A generated program: words, and which of them must stay when shrinking (loop control and
/// the exit sequence).
#[derive(Clone, Debug)]
pub struct Program {
    /// The instruction words, from [`CODE`].
    pub words: Vec<u32>,
    /// Which words shrinking must keep.
    pub keep: Vec<bool>,
    /// Registers already used by an ADR + BR/BLR/RET pair.
    pub used_link_regs: Vec<u32>,
}

impl Program {
    /// Appends a word.
    pub fn push(&mut self, w: u32, keep: bool) {
        self.words.push(w);
        self.keep.push(keep);
    }
}

/// A forward branch by `d` words (d >= 1).
pub fn forward_branch(r: &mut Rng, d: u32) -> u32 {
    match r.below(8) {
        0..=2 => 0x5400_0000 | (d & 0x7ffff) << 5 | r.b32(16),
        3 => r.b32(2) << 31 | 0x3400_0000 | r.b32(2) << 24 | (d & 0x7ffff) << 5 | src(r),
        4 => {
            let b = r.b32(64);
            (b >> 5) << 31
                | 0x3600_0000
                | r.b32(2) << 24
                | (b & 31) << 19
                | (d & 0x3fff) << 5
                | src(r)
        }
        5 => 0x1400_0000 | d,
        6 => 0x9400_0000 | d,
        _ => 0x5400_0000 | (d & 0x7ffff) << 5 | r.pick(&[0u32, 1, 10, 11, 12, 13, 14]),
    }
}

/// Appends a straight run of exactly `n` words: random instructions and forward branches that
/// land inside the run or just after it.
pub fn straight(r: &mut Rng, p: &mut Program, n: usize) {
    let start = p.words.len();
    let end = start + n;
    while p.words.len() < end {
        let i = p.words.len();
        let left = end - i; // words left including this one
        match r.below(10) {
            // Flag setter + conditional branch / select.
            0 if left >= 2 => {
                p.push(gen_flag_setter(r), false);
                let left = left - 1;
                if r.coin() {
                    let d = 1 + r.below(left as u64) as u32;
                    let w = 0x5400_0000 | (d & 0x7ffff) << 5 | r.b32(16);
                    p.push(w, false);
                } else {
                    let sf = r.b32(2);
                    let w = sf << 31
                        | r.b32(2) << 30
                        | 0b11010100 << 21
                        | src(r) << 16
                        | r.b32(16) << 12
                        | r.b32(2) << 10
                        | src(r) << 5
                        | dst_zr(r);
                    p.push(w, false);
                }
            }
            1 => {
                let d = 1 + r.below(left as u64) as u32;
                p.push(forward_branch(r, d), false);
            }
            // ADR + BR/BLR/RET to a later word of the run.
            // Each pair gets a register no other pair uses: a branch landing on a BR
            // (skipping its ADR) then still jumps forward, to that pair's own target, so
            // every program terminates.
            2 if left >= 2 && r.one_in(3) => {
                let Some(rk) = (0..8)
                    .map(|_| dst(r))
                    .find(|k| !p.used_link_regs.contains(k))
                else {
                    p.push(gen_insn(r), false);
                    continue;
                };
                p.used_link_regs.push(rk);
                let d = 1 + r.below((left - 1) as u64) as u32; // from the BR
                let off = 4 * (d + 1); // from the ADR
                                       // Kept together when shrinking: a BR without its ADR could jump anywhere.
                p.push(0x1000_0000 | (off & 3) << 29 | (off >> 2) << 5 | rk, true);
                let br = r.pick(&[0xd61f_0000u32, 0xd63f_0000, 0xd65f_0000]);
                p.push(br | rk << 5, true);
            }
            _ => p.push(gen_insn(r), false),
        }
    }
}

/// Appends a loop running its body `k` times (1..=5), bounded by the counter register.
pub fn counted_loop(r: &mut Rng, p: &mut Program, body: usize) {
    let k = 1 + r.b32(5);
    p.push(0xd280_0000 | k << 5 | CNT, true); // movz x28, #k
    let head = p.words.len();
    straight(r, p, body);
    let variant = r.below(4);
    let dec = if variant == 0 {
        0xd100_0400 | CNT << 5 | CNT // sub x28, x28, #1
    } else {
        0xf100_0400 | CNT << 5 | CNT // subs x28, x28, #1
    };
    p.push(dec, true);
    let back = (head as i64 - p.words.len() as i64) as u32;
    let br = match variant {
        0 => 0xb500_0000 | (back & 0x7ffff) << 5 | CNT, // cbnz x28
        1 => 0x5400_0000 | (back & 0x7ffff) << 5 | 1,   // b.ne
        2 => 0x5400_0000 | (back & 0x7ffff) << 5 | 12,  // b.gt
        _ => 0x5400_0000 | (back & 0x7ffff) << 5 | 8,   // b.hi
    };
    p.push(br, true);
}

pub fn gen_program(r: &mut Rng) -> Program {
    let mut p = Program {
        words: Vec::new(),
        keep: Vec::new(),
        used_link_regs: Vec::new(),
    };
    SCALAR_FP.with(|s| s.set(r.one_in(3)));
    let segments = 1 + r.below(4);
    let mut loops = 0;
    for _ in 0..segments {
        if loops < 2 && r.one_in(2) {
            loops += 1;
            let body = 2 + r.below(14) as usize;
            counted_loop(r, &mut p, body);
        } else {
            let n = 1 + r.below(20) as usize;
            straight(r, &mut p, n);
        }
    }
    p.push(0xd280_0ba8, true); // movz x8, #93
    p.push(0xd400_0001, true); // svc #0
    p
}

/// A random initial state.
pub fn gen_state(r: &mut Rng) -> (CpuState, Vec<u8>) {
    let mut st = CpuState::default();
    for v in st.x.iter_mut() {
        *v = r.value();
    }
    for b in [20, 21, 22, 23] {
        let align = r.pick(&[1u64, 4, 8, 16]);
        st.x[b] = (MID as i64 + r.below(1025) as i64 - 512) as u64 & !(align - 1);
    }
    st.x[31] = (MID as i64 + 16 * (r.below(33) as i64 - 16)) as u64;
    st.x[IDX as usize] = r.below(256);
    st.nzcv = r.below(16) << 28;
    st.fpcr = r.pick(&[
        0u64,
        0,
        0,
        1 << 22,
        2 << 22,
        3 << 22,
        1 << 24,
        1 << 25,
        3 << 22 | 1 << 25,
    ]) & FPCR_MASK;
    st.fpsr = if r.one_in(4) { r.next() & FPSR_MASK } else { 0 };
    // IXC (sticky) set or clear selects the inline or the helper path of inexact FP ops.
    if r.coin() {
        st.fpsr |= 1 << 4;
    }
    st.tpidr_el0 = r.value();
    for v in st.v.iter_mut() {
        let lo = if r.coin() {
            r.f64_bits() as u128
        } else {
            (r.f32_bits() as u128) | (r.f32_bits() as u128) << 32
        };
        let hi = match r.below(3) {
            0 => 0,
            1 => r.f64_bits() as u128,
            _ => r.next() as u128,
        };
        *v = lo | hi << 64;
    }
    let mut data = vec![0u8; DATA_LEN as usize];
    for chunk in data.chunks_mut(8) {
        let v = if r.one_in(4) { r.f64_bits() } else { r.value() };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    (st, data)
}

pub fn image(p: &Program, data: &[u8]) -> Vec<u8> {
    let code: Vec<u8> = p.words.iter().flat_map(|w| w.to_le_bytes()).collect();
    elf_image(
        CODE,
        &[
            Segment {
                vaddr: CODE,
                bytes: code,
                flags: 5,
            },
            Segment {
                vaddr: DATA,
                bytes: data.to_vec(),
                flags: 6,
            },
        ],
    )
}

// ---------------------------------------------------------------------------------------
// Reports.

/// The program's listing; with `orig`, words replaced by NOP are left out (shown as `...`).
pub fn listing(p: &Program, orig: Option<&Program>) -> String {
    let mut s = String::new();
    let mut skipped = false;
    for (i, w) in p.words.iter().enumerate() {
        let pc = CODE + 4 * i as u64;
        if orig.is_some_and(|o| o.words[i] != *w) {
            if !skipped {
                s.push_str("    ...\n");
            }
            skipped = true;
            continue;
        }
        skipped = false;
        let _ = writeln!(s, "    {pc:#x}: {w:08x}  {}", disasm(*w, pc));
    }
    s
}

pub fn initial_state(st: &CpuState) -> String {
    let mut s = String::new();
    for i in 0..32 {
        if i % 4 == 0 {
            s.push_str("    ");
        }
        let name = if i == 31 {
            "sp".into()
        } else {
            format!("x{i}")
        };
        let _ = write!(s, "{name:>3}={:016x} ", st.x[i]);
        if i % 4 == 3 {
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "    nzcv={:04b} fpcr={:#x} fpsr={:#x} tpidr={:#x}",
        st.nzcv >> 28,
        st.fpcr,
        st.fpsr,
        st.tpidr_el0
    );
    for i in 0..32 {
        let _ = write!(s, "    v{i:<2}={:032x}", st.v[i]);
        if i % 2 == 1 {
            s.push('\n');
        }
    }
    s
}

/// Side-by-side dump of two final states; `*` on every difference.
pub fn side_by_side(a: &Final, b: &Final, init_mem: &[u8], bname: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "    {:<10} {:>34} {:>34}", "field", "interp", bname);
    let mut row = |name: &str, x: String, y: String| {
        let mark = if x != y { " *" } else { "" };
        let _ = writeln!(s, "    {name:<10} {x:>34} {y:>34}{mark}");
    };
    let (ca, cb) = (&a.cpu, &b.cpu);
    for i in 0..32 {
        let name = if i == 31 {
            "sp".into()
        } else {
            format!("x{i}")
        };
        row(
            &name,
            format!("{:016x}", ca.x[i]),
            format!("{:016x}", cb.x[i]),
        );
    }
    row("pc", format!("{:x}", ca.pc), format!("{:x}", cb.pc));
    row(
        "nzcv",
        format!("{:04b}", ca.nzcv >> 28),
        format!("{:04b}", cb.nzcv >> 28),
    );
    row(
        "nzcv(raw)",
        format!("{:x}", ca.nzcv),
        format!("{:x}", cb.nzcv),
    );
    row("fpcr", format!("{:x}", ca.fpcr), format!("{:x}", cb.fpcr));
    row("fpsr", format!("{:x}", ca.fpsr), format!("{:x}", cb.fpsr));
    row(
        "tpidr",
        format!("{:x}", ca.tpidr_el0),
        format!("{:x}", cb.tpidr_el0),
    );
    row(
        "excl_addr",
        format!("{:x}", ca.excl_addr),
        format!("{:x}", cb.excl_addr),
    );
    row(
        "excl_size",
        format!("{:x}", ca.excl_size),
        format!("{:x}", cb.excl_size),
    );
    for i in 0..32 {
        row(
            &format!("v{i}"),
            format!("{:032x}", ca.v[i]),
            format!("{:032x}", cb.v[i]),
        );
    }
    row("end", format!("{:?}", a.term), format!("{:?}", b.term));
    let mut shown = 0;
    for k in 0..a.mem.len().max(b.mem.len()) {
        let (x, y, z) = (a.mem.get(k), b.mem.get(k), init_mem.get(k));
        if x != y || x != z || y != z {
            if shown < 48 || x != y {
                let mark = if x != y { " *" } else { "" };
                let f = |v: Option<&u8>| v.map(|v| format!("{v:02x}")).unwrap_or("--".into());
                let name = format!("[{:#x}]", DATA + k as u64);
                let _ = writeln!(
                    s,
                    "    {name:<10} {:>34} {:>34}{mark} (was {})",
                    f(x),
                    f(y),
                    f(z)
                );
            }
            shown += 1;
        }
    }
    if shown > 48 {
        let _ = writeln!(s, "    ({shown} changed data bytes in all)");
    }
    s
}

pub fn differing(a: &Final, b: &Final) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..32 {
        if a.cpu.x[i] != b.cpu.x[i] {
            out.push(if i == 31 {
                "sp".into()
            } else {
                format!("x{i}")
            });
        }
    }
    let (ca, cb) = (&a.cpu, &b.cpu);
    for (n, x, y) in [
        ("pc", ca.pc, cb.pc),
        ("nzcv", ca.nzcv, cb.nzcv),
        ("fpcr", ca.fpcr, cb.fpcr),
        ("fpsr", ca.fpsr, cb.fpsr),
        ("tpidr", ca.tpidr_el0, cb.tpidr_el0),
        ("excl_addr", ca.excl_addr, cb.excl_addr),
        ("excl_size", ca.excl_size, cb.excl_size),
    ] {
        if x != y {
            out.push(n.into());
        }
    }
    for i in 0..32 {
        if ca.v[i] != cb.v[i] {
            out.push(format!("v{i}"));
        }
    }
    if ca.excl_val != cb.excl_val || ca._pad != cb._pad {
        out.push("excl_val/pad".into());
    }
    let n = a.mem.iter().zip(&b.mem).filter(|(x, y)| x != y).count();
    if n > 0 || a.mem.len() != b.mem.len() {
        out.push("data bytes".to_string());
    }
    if a.term != b.term {
        out.push("termination".into());
    }
    out
}

/// Whether `got` ended by a host fault of translated code that agrees with the reference
/// in what such a fault keeps: the signal, the faulting address and the memory written.
pub fn host_fault_agrees(reference: &Final, got: &Final) -> bool {
    let addr = |t: &vmc_runtime::Termination| match t {
        vmc_runtime::Termination::Signaled { signal: 11, reason } => reason
            .strip_prefix("segmentation fault: read of address ")
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned),
        _ => None,
    };
    let host = matches!(&got.term, vmc_runtime::Termination::Signaled { reason, .. }
        if reason.contains("in translated code"));
    host && addr(&reference.term).is_some()
        && addr(&reference.term) == addr(&got.term)
        && reference.mem == got.mem
}

/// `tier` with precise faults (translated loads check the page table).
pub fn precise(tier: TierRun) -> TierRun {
    TierRun {
        name: match tier.name {
            "baseline" => "baseline (precise faults)",
            "opt" => "opt (precise faults)",
            "auto-eager" => "auto-eager (precise faults)",
            _ => "precise faults",
        },
        cfg: vmc_runtime::tiers::TierConfig {
            precise_faults: true,
            ..tier.cfg
        },
    }
}
