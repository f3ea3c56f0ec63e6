//! Advanced SIMD modified immediate: MOVI, MVNI, ORR, BIC (vector, immediate)
//! (`0 Q op 0111100000 abc cmode o2 1 defgh Rd`). The FMOV forms (cmode 1111, o2) belong
//! to the FP module.

use super::lo64;
use crate::a64::{bit, bits};
use crate::state::CpuState;

/// AdvSIMDExpandImm for the integer cmodes.
fn expand(op: bool, cmode: u32, imm8: u64) -> u64 {
    let rep32 = |x: u64| x | x << 32;
    let rep16 = |x: u64| rep32(x | x << 16);
    match cmode >> 1 {
        0b000 => rep32(imm8),
        0b001 => rep32(imm8 << 8),
        0b010 => rep32(imm8 << 16),
        0b011 => rep32(imm8 << 24),
        0b100 => rep16(imm8),
        0b101 => rep16(imm8 << 8),
        0b110 if cmode & 1 == 0 => rep32(imm8 << 8 | 0xff),
        0b110 => rep32(imm8 << 16 | 0xffff),
        _ if !op => rep16(imm8 | imm8 << 8),
        _ => (0..8).fold(0, |acc, i| {
            if imm8 >> i & 1 != 0 {
                acc | 0xff << (8 * i)
            } else {
                acc
            }
        }),
    }
}

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let q = bit(insn, 30);
    let op = bit(insn, 29);
    let cmode = bits(insn, 15, 12);
    let rd = bits(insn, 4, 0) as usize;
    if bit(insn, 11) || cmode == 0b1111 {
        return None;
    }
    let imm8 = (bits(insn, 18, 16) << 5 | bits(insn, 9, 5)) as u64;
    let imm64 = expand(op, cmode, imm8);
    let imm = imm64 as u128 | if q { (imm64 as u128) << 64 } else { 0 };
    // ORR / BIC: cmode 0xx1 and 10x1.
    let logical = cmode & 1 == 1 && cmode < 0b1100;
    let vd = if q { st.v[rd] } else { lo64(st.v[rd]) };
    st.v[rd] = match (logical, op) {
        (false, false) => imm,
        (false, true) if cmode == 0b1110 => imm,
        (false, true) => !imm & if q { u128::MAX } else { u64::MAX as u128 },
        (true, false) => vd | imm,
        (true, true) => vd & !imm,
    };
    Some(())
}
