//! Advanced SIMD three different: `0 Q U 01110 size 1 Rm opcode 00 Rn Rd` (long, wide and
//! narrowing-high-half forms; Q selects the "2" variants).

use super::three_same::clmul;
use super::{elem, int, lo64, ones, sat, set_elem, set_qc};
use crate::a64::{bit, bits};
use crate::state::CpuState;

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    // Scalar forms: SQDMLAL, SQDMLSL, SQDMULL only (one element, Q is 1 in the encoding).
    let scalar = bit(insn, 28);
    let q = bit(insn, 30) && !scalar;
    let u = bit(insn, 29);
    let size = bits(insn, 23, 22);
    let opc = bits(insn, 15, 12);
    let (rm, rn, rd) = (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    );
    let ok = match (opc, u) {
        (0b1110, false) => size == 0 || size == 3,
        (0b1001 | 0b1011 | 0b1101, false) => size == 1 || size == 2,
        (0b1001 | 0b1011 | 0b1101 | 0b1110, true) | (0b1111, _) => false,
        _ => size != 3,
    };
    if !ok || (scalar && (u || !matches!(opc, 0b1001 | 0b1011 | 0b1101))) {
        return None;
    }
    let (vn, vm, vd) = (st.v[rn], st.v[rm], st.v[rd]);
    let es = 8u32 << size;
    let part = q as usize;
    let n = if scalar { 1 } else { (64 / es) as usize };
    let mut qc = false;
    let mut r = 0u128;
    match opc {
        0b0100 | 0b0110 => {
            // ADDHN, RADDHN, SUBHN, RSUBHN.
            let ws = 2 * es;
            let mut res = 0u128;
            for i in 0..n {
                let (x, y) = (elem(vn, i, ws), elem(vm, i, ws));
                let mut s = if opc == 0b0100 {
                    x.wrapping_add(y)
                } else {
                    x.wrapping_sub(y)
                };
                if u {
                    s = s.wrapping_add(1 << (es - 1));
                }
                set_elem(&mut res, i, es, (s & ones(ws)) >> es);
            }
            r = if q { lo64(vd) | res << 64 } else { res };
        }
        0b1110 => {
            // PMULL, PMULL2.
            if size == 3 {
                r = clmul(elem(vn, part, 64), elem(vm, part, 64));
            } else {
                for i in 0..8 {
                    let p = clmul(elem(vn, 8 * part + i, 8), elem(vm, 8 * part + i, 8));
                    set_elem(&mut r, i, 16, p as u64);
                }
            }
        }
        _ => {
            let ws = 2 * es;
            for i in 0..n {
                let wide_n = matches!(opc, 0b0001 | 0b0011);
                let x = if wide_n {
                    int(elem(vn, i, ws), ws, u)
                } else {
                    int(elem(vn, part * n + i, es), es, u)
                };
                let y = int(elem(vm, part * n + i, es), es, u);
                let acc = int(elem(vd, i, ws), ws, u);
                let v: i128 = match opc {
                    0b0000 | 0b0001 => x + y,
                    0b0010 | 0b0011 => x - y,
                    0b0101 => acc + (x - y).abs(),
                    0b0111 => (x - y).abs(),
                    0b1000 => acc + x * y,
                    0b1010 => acc - x * y,
                    0b1100 => x * y,
                    _ => {
                        // SQDMLAL, SQDMLSL, SQDMULL.
                        let p = int(sat(2 * x * y, ws, false, &mut qc), ws, false);
                        let v = match opc {
                            0b1001 => acc + p,
                            0b1011 => acc - p,
                            _ => p,
                        };
                        int(sat(v, ws, false, &mut qc), ws, false)
                    }
                };
                set_elem(&mut r, i, ws, v as u64);
            }
        }
    }
    st.v[rd] = r;
    set_qc(st, qc);
    Some(())
}
