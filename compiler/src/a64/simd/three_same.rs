//! Advanced SIMD three same (vector and scalar): `0 Q U 0111 0 size 1 Rm opcode 1 Rn Rd`
//! and `01 U 11110 size 1 Rm opcode 1 Rn Rd`. Integer opcodes only (opcode < 11000).

use super::{elem, int, lo64, ones, sat, set_elem, set_qc, shl_checked, shr_round};
use crate::a64::{bit, bits};
use crate::state::CpuState;

/// Which sizes an opcode accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sizes {
    /// Any size; vector 64-bit elements need Q=1.
    All,
    /// Sizes 00..10.
    NoD,
    /// Sizes 01 and 10 (SQDMULH, SQRDMULH).
    HS,
    /// Scalar: 64-bit elements only; vector: any size (64-bit needs Q=1).
    DScalar,
}

/// (opcode, U) -> (accepted sizes, allowed as scalar). `None`: unallocated here.
fn table(opc: u32, u: bool) -> Option<(Sizes, bool)> {
    use Sizes::*;
    Some(match (opc, u) {
        (0b00000 | 0b00010 | 0b00100, _) => (NoD, false),
        (0b00001 | 0b00101 | 0b01001 | 0b01011, _) => (All, true),
        (0b00110 | 0b00111 | 0b01000 | 0b01010 | 0b10000 | 0b10001, _) => (DScalar, true),
        (0b01100..=0b01111 | 0b10010 | 0b10100 | 0b10101, _) => (NoD, false),
        (0b10011, false) => (NoD, false),
        (0b10011, true) => (NoD, false), // PMUL: size 00 checked below
        (0b10110, _) => (HS, true),
        (0b10111, false) => (DScalar, false),
        _ => return None,
    })
}

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let scalar = bit(insn, 28);
    let q = bit(insn, 30);
    let u = bit(insn, 29);
    let size = bits(insn, 23, 22);
    let opc = bits(insn, 15, 11);
    let (rm, rn, rd) = (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    );
    let (a, b, d) = (st.v[rn], st.v[rm], st.v[rd]);

    if opc == 0b00011 {
        // Logical: size is part of the opcode.
        if scalar {
            return None;
        }
        let r = match (u, size) {
            (false, 0) => a & b,
            (false, 1) => a & !b,
            (false, 2) => a | b,
            (false, _) => a | !b,
            (true, 0) => a ^ b,
            (true, 1) => (a & d) | (b & !d), // BSL
            (true, 2) => (d & !b) | (a & b), // BIT
            (true, _) => (d & b) | (a & !b), // BIF
        };
        st.v[rd] = if q { r } else { lo64(r) };
        return Some(());
    }

    let (sizes, scalar_ok) = table(opc, u)?;
    let ok = match sizes {
        Sizes::All => scalar || size != 3 || q,
        Sizes::NoD => size != 3,
        Sizes::HS => size == 1 || size == 2,
        Sizes::DScalar => {
            if scalar {
                size == 3
            } else {
                size != 3 || q
            }
        }
    };
    if !ok || (scalar && !scalar_ok) || (opc == 0b10011 && u && size != 0) {
        return None;
    }
    let es = 8 << size;
    let datasize = if scalar {
        es
    } else if q {
        128
    } else {
        64
    };
    let n = (datasize / es) as usize;
    let mut qc = false;
    let mut r = 0u128;
    if matches!(opc, 0b10100 | 0b10101 | 0b10111) {
        // Pairwise over the concatenation Vm:Vn.
        let (lo, hi) = if q {
            (a, b)
        } else {
            (lo64(a) | lo64(b) << 64, 0)
        };
        let get = |j: usize| {
            let per = 128 / es as usize;
            if j < per {
                elem(lo, j, es)
            } else {
                elem(hi, j - per, es)
            }
        };
        for i in 0..n {
            let (x, y) = (get(2 * i), get(2 * i + 1));
            let v = match opc {
                0b10111 => x.wrapping_add(y),
                _ => {
                    let (ix, iy) = (int(x, es, u), int(y, es, u));
                    let max = opc == 0b10100;
                    if (ix >= iy) == max {
                        x
                    } else {
                        y
                    }
                }
            };
            set_elem(&mut r, i, es, v);
        }
    } else {
        for i in 0..n {
            let v = op(
                opc,
                u,
                es,
                elem(a, i, es),
                elem(b, i, es),
                elem(d, i, es),
                &mut qc,
            );
            set_elem(&mut r, i, es, v);
        }
    }
    st.v[rd] = r;
    set_qc(st, qc);
    Some(())
}

/// One element of a non-pairwise, non-logical three-same operation.
fn op(opc: u32, u: bool, es: u32, x: u64, y: u64, d: u64, qc: &mut bool) -> u64 {
    let m = ones(es);
    let (a, b) = (int(x, es, u), int(y, es, u));
    let mask = |c: bool| if c { m } else { 0 };
    let r: i128 = match opc {
        0b00000 => (a + b) >> 1,
        0b00001 => return sat(a + b, es, u, qc),
        0b00010 => (a + b + 1) >> 1,
        0b00100 => (a - b) >> 1,
        0b00101 => return sat(a - b, es, u, qc),
        0b00110 => return mask(a > b),
        0b00111 => return mask(a >= b),
        0b01000..=0b01011 => return shl_reg(x, y, es, u, opc & 2 != 0, opc & 1 != 0, qc),
        0b01100 => a.max(b),
        0b01101 => a.min(b),
        0b01110 => (a - b).abs(),
        0b01111 => d as i128 + (a - b).abs(),
        0b10000 => {
            return if u {
                x.wrapping_sub(y) & m
            } else {
                x.wrapping_add(y) & m
            }
        }
        0b10001 => return if u { mask(x == y) } else { mask(x & y != 0) },
        0b10010 => {
            let p = x.wrapping_mul(y);
            return if u {
                d.wrapping_sub(p) & m
            } else {
                d.wrapping_add(p) & m
            };
        }
        0b10011 => {
            return if u {
                pmul8(x, y)
            } else {
                x.wrapping_mul(y) & m
            }
        }
        0b10110 => {
            let (a, b) = (int(x, es, false), int(y, es, false));
            let round = if u { 1i128 << (es - 1) } else { 0 };
            return sat((2 * a * b + round) >> es, es, false, qc);
        }
        _ => 0,
    };
    r as u64 & m
}

/// Polynomial (carry-less) multiply of two bytes, low 8 bits of the product.
pub(super) fn pmul8(x: u64, y: u64) -> u64 {
    clmul(x & 0xff, y & 0xff) as u64 & 0xff
}

/// Carry-less product of two 64-bit values.
pub(super) fn clmul(x: u64, y: u64) -> u128 {
    let mut r = 0u128;
    for i in 0..64 {
        if y >> i & 1 != 0 {
            r ^= (x as u128) << i;
        }
    }
    r
}

/// SSHL/USHL/SRSHL/URSHL/SQSHL/UQSHL/SQRSHL/UQRSHL: shift by the signed low byte of `y`.
pub(super) fn shl_reg(
    x: u64,
    y: u64,
    es: u32,
    unsigned: bool,
    round: bool,
    saturate: bool,
    qc: &mut bool,
) -> u64 {
    let shift = y as u8 as i8 as i32;
    let v = int(x, es, unsigned);
    let r = if shift >= 0 {
        shl_checked(v, shift as u32)
    } else {
        Some(shr_round(v, (-shift) as u32, round))
    };
    match (r, saturate) {
        (Some(r), true) => sat(r, es, unsigned, qc),
        (Some(r), false) => r as u64 & ones(es),
        (None, true) => sat(if v < 0 { i128::MIN } else { i128::MAX }, es, unsigned, qc),
        (None, false) => 0,
    }
}
