//! Advanced SIMD two-register misc (vector `0 Q U 01110 size 10000 opcode 10 Rn Rd` and
//! scalar `01 U 11110 size 10000 opcode 10 Rn Rd`), across lanes
//! (`0 Q U 01110 size 11000 opcode 10 Rn Rd`) and scalar pairwise ADDP.

use super::{elem, int, lo64, ones, sat, set_elem, set_qc};
use crate::a64::{bit, bits};
use crate::state::CpuState;

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let scalar = bit(insn, 28);
    let q = bit(insn, 30);
    let u = bit(insn, 29);
    let size = bits(insn, 23, 22);
    let opc = bits(insn, 16, 12);
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    // Whether 64-bit elements are allowed: scalar forms need them for the compares and
    // ABS/NEG, vector forms need Q=1.
    let d_ok = scalar || q;
    let ok = if scalar {
        match (opc, u) {
            (0b00011 | 0b00111, _) => true,
            (0b01000 | 0b01001 | 0b01011, _) | (0b01010, false) => size == 3,
            (0b10010, true) | (0b10100, _) => size != 3,
            _ => false,
        }
    } else {
        match (opc, u) {
            (0b00000, false) => size != 3,
            (0b00000, true) => size < 2,
            (0b00001, false) => size == 0,
            (0b00010 | 0b00110 | 0b00100, _) => size != 3,
            (0b00101, false) => size == 0,
            (0b00101, true) => size < 2,
            (0b00011 | 0b00111 | 0b01000 | 0b01001 | 0b01011, _) | (0b01010, false) => {
                size != 3 || d_ok
            }
            (0b10010 | 0b10100, _) | (0b10011, true) => size != 3,
            _ => false,
        }
    };
    if !ok {
        return None;
    }
    let (vn, vd) = (st.v[rn], st.v[rd]);
    let es = 8u32 << size;
    let m = ones(es);
    let mut qc = false;
    let mut r = 0u128;
    match opc {
        0b10010 | 0b10100 => {
            // XTN, SQXTUN, SQXTN, UQXTN: narrow 2*es -> es.
            let ws = 2 * es;
            let n = if scalar { 1 } else { (64 / es) as usize };
            let mut res = 0u128;
            for i in 0..n {
                let x = elem(vn, i, ws);
                let v = match (opc, u) {
                    (0b10010, false) => x & m,
                    (0b10010, true) => sat(int(x, ws, false), es, true, &mut qc),
                    (_, uns) => sat(int(x, ws, uns), es, uns, &mut qc),
                };
                set_elem(&mut res, i, es, v);
            }
            r = if !scalar && q {
                lo64(vd) | res << 64
            } else {
                res
            };
        }
        0b10011 => {
            // SHLL, SHLL2.
            let n = (64 / es) as usize;
            for i in 0..n {
                let x = elem(vn, q as usize * n + i, es);
                set_elem(&mut r, i, 2 * es, x << es);
            }
        }
        0b00010 | 0b00110 => {
            // SADDLP, UADDLP, SADALP, UADALP.
            let ws = 2 * es;
            let n = ((if q { 128 } else { 64 }) / ws) as usize;
            for i in 0..n {
                let mut v = int(elem(vn, 2 * i, es), es, u) + int(elem(vn, 2 * i + 1, es), es, u);
                if opc == 0b00110 {
                    v += elem(vd, i, ws) as i128;
                }
                set_elem(&mut r, i, ws, v as u64);
            }
        }
        0b00000 | 0b00001 if !scalar => {
            // REV64, REV32, REV16: reverse elements within containers.
            let csize = match (opc, u) {
                (0b00000, false) => 64,
                (0b00000, true) => 32,
                _ => 16,
            };
            let n = ((if q { 128 } else { 64 }) / es) as usize;
            let flip = (csize / es) as usize - 1;
            for i in 0..n {
                set_elem(&mut r, i, es, elem(vn, i ^ flip, es));
            }
        }
        _ => {
            // NOT and RBIT use size as part of the opcode: always bytes.
            let es = if opc == 0b00101 { 8 } else { es };
            let datasize = if scalar {
                es
            } else if q {
                128
            } else {
                64
            };
            let n = (datasize / es) as usize;
            for i in 0..n {
                let x = elem(vn, i, es);
                let d = elem(vd, i, es);
                let v = one(opc, u, size, es, x, d, &mut qc);
                set_elem(&mut r, i, es, v);
            }
        }
    }
    st.v[rd] = r;
    set_qc(st, qc);
    Some(())
}

/// One element of an element-wise two-register misc operation.
fn one(opc: u32, u: bool, size: u32, es: u32, x: u64, d: u64, qc: &mut bool) -> u64 {
    let m = ones(es);
    let a = int(x, es, false);
    let mask = |c: bool| if c { m } else { 0 };
    match (opc, u) {
        // SUQADD: signed d + unsigned n; USQADD: unsigned d + signed n.
        (0b00011, false) => sat(int(d, es, false) + int(x, es, true), es, false, qc),
        (0b00011, true) => sat(int(d, es, true) + a, es, true, qc),
        (0b00100, false) => {
            // CLS
            let s = x ^ (((a >> 1) as u64) & m);
            (s.leading_zeros() - (64 - es)) as u64 - 1
        }
        (0b00100, true) => (x.leading_zeros() - (64 - es)) as u64,
        (0b00101, false) => x.count_ones() as u64,
        (0b00101, true) if size == 0 => !x & m,
        (0b00101, true) => (x as u8).reverse_bits() as u64,
        (0b00111, false) => sat(a.abs(), es, false, qc),
        (0b00111, true) => sat(-a, es, false, qc),
        (0b01000, false) => mask(a > 0),
        (0b01000, true) => mask(a >= 0),
        (0b01001, false) => mask(a == 0),
        (0b01001, true) => mask(a <= 0),
        (0b01010, _) => mask(a < 0),
        (0b01011, false) => a.unsigned_abs() as u64 & m,
        (0b01011, true) => (-a) as u64 & m,
        _ => 0,
    }
}

/// Across lanes: ADDV, SADDLV, UADDLV, SMAXV, UMAXV, SMINV, UMINV.
pub(super) fn exec_across(st: &mut CpuState, insn: u32) -> Option<()> {
    let q = bit(insn, 30);
    let u = bit(insn, 29);
    let size = bits(insn, 23, 22);
    let opc = bits(insn, 16, 12);
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    let known = matches!(
        (opc, u),
        (0b00011, _) | (0b01010, _) | (0b11010, _) | (0b11011, false)
    );
    if !known || size == 3 || (size == 2 && !q) {
        return None;
    }
    let es = 8u32 << size;
    let n = ((if q { 128 } else { 64 }) / es) as usize;
    let vn = st.v[rn];
    let xs = (0..n).map(|i| int(elem(vn, i, es), es, u));
    let (v, rs) = match opc {
        0b00011 => (xs.sum::<i128>(), 2 * es),
        0b01010 => (xs.max().unwrap_or(0), es),
        0b11010 => (xs.min().unwrap_or(0), es),
        _ => (xs.sum::<i128>(), es),
    };
    st.v[rd] = (v as u64 & ones(rs)) as u128;
    Some(())
}

/// Scalar pairwise: ADDP Dd, Vn.2D (the FP forms belong to the FP module).
pub(super) fn exec_scalar_pairwise(st: &mut CpuState, insn: u32) -> Option<()> {
    if bit(insn, 29) || bits(insn, 16, 12) != 0b11011 || bits(insn, 23, 22) != 3 {
        return None;
    }
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    let vn = st.v[rn];
    st.v[rd] = elem(vn, 0, 64).wrapping_add(elem(vn, 1, 64)) as u128;
    Some(())
}
