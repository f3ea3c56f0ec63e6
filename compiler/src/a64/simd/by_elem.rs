//! Advanced SIMD vector x indexed element, integer forms
//! (`0 Q U 01111 size L M Rm opcode H 0 Rn Rd`): MUL, MLA, MLS, SQDMULH, SQRDMULH,
//! SMULL/UMULL, SMLAL/UMLAL, SMLSL/UMLSL, SQDMULL, SQDMLAL, SQDMLSL (and their "2" forms).

use super::{elem, int, ones, sat, set_elem, set_qc};
use crate::a64::{bit, bits};
use crate::state::CpuState;

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    // Scalar forms: the saturating doubling ones only (FP ones belong to the FP module).
    let scalar = bit(insn, 28);
    let q = bit(insn, 30);
    let u = bit(insn, 29);
    let size = bits(insn, 23, 22);
    let (l, m, h) = (bits(insn, 21, 21), bits(insn, 20, 20), bits(insn, 11, 11));
    let opc = bits(insn, 15, 12);
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    let (index, rm) = match size {
        1 => ((h << 2 | l << 1 | m) as usize, bits(insn, 19, 16) as usize),
        2 => ((h << 1 | l) as usize, bits(insn, 20, 16) as usize),
        _ => return None,
    };
    let long = match (opc, u) {
        (0b0000 | 0b0100, true) | (0b1000 | 0b1100 | 0b1101, false) => false,
        (0b0010 | 0b0110 | 0b1010, _) | (0b0011 | 0b0111 | 0b1011, false) => true,
        _ => return None,
    };
    if scalar && (u || !matches!(opc, 0b0011 | 0b0111 | 0b1011 | 0b1100 | 0b1101)) {
        return None;
    }
    let es = 8u32 << size;
    let (vn, vd) = (st.v[rn], st.v[rd]);
    let mut qc = false;
    let mut r = 0u128;
    if !long {
        let y = elem(st.v[rm], index, es);
        let n = if scalar {
            1
        } else {
            ((if q { 128 } else { 64 }) / es) as usize
        };
        for i in 0..n {
            let x = elem(vn, i, es);
            let d = elem(vd, i, es);
            let v = match opc {
                0b0000 => d.wrapping_add(x.wrapping_mul(y)),
                0b0100 => d.wrapping_sub(x.wrapping_mul(y)),
                0b1000 => x.wrapping_mul(y),
                _ => {
                    let round = if opc == 0b1101 { 1i128 << (es - 1) } else { 0 };
                    sat(
                        (2 * int(x, es, false) * int(y, es, false) + round) >> es,
                        es,
                        false,
                        &mut qc,
                    )
                }
            };
            set_elem(&mut r, i, es, v & ones(es));
        }
    } else {
        let ws = 2 * es;
        let sgn = !u || opc & 1 == 1;
        let y = int(elem(st.v[rm], index, es), es, !sgn);
        let n = if scalar { 1 } else { (64 / es) as usize };
        let part = (q && !scalar) as usize;
        for i in 0..n {
            let x = int(elem(vn, part * n + i, es), es, !sgn);
            let acc = int(elem(vd, i, ws), ws, !sgn);
            let v = match opc {
                0b0010 => acc + x * y,
                0b0110 => acc - x * y,
                0b1010 => x * y,
                _ => {
                    let p = int(sat(2 * x * y, ws, false, &mut qc), ws, false);
                    let v = match opc {
                        0b0011 => acc + p,
                        0b0111 => acc - p,
                        _ => p,
                    };
                    int(sat(v, ws, false, &mut qc), ws, false)
                }
            };
            set_elem(&mut r, i, ws, v as u64);
        }
    }
    st.v[rd] = r;
    set_qc(st, qc);
    Some(())
}
