//! Advanced SIMD shift by immediate, vector `0 Q U 011110 immh immb opcode 1 Rn Rd` and
//! scalar `01 U 111110 immh immb opcode 1 Rn Rd` (immh != 0). The fixed-point conversions
//! (opcodes 11100, 11111) belong to the FP module.

use super::{elem, int, lo64, ones, sat, set_elem, set_qc, shl_checked, shr_round};
use crate::a64::{bit, bits};
use crate::state::CpuState;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Same-size right shifts (and SRI).
    Right,
    /// Same-size left shifts (SHL, SLI, SQSHL, UQSHL, SQSHLU).
    Left,
    /// Narrowing right shifts.
    Narrow,
    /// SSHLL, USHLL.
    Long,
}

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let scalar = bit(insn, 28);
    let q = bit(insn, 30);
    let u = bit(insn, 29);
    let immh = bits(insn, 22, 19);
    let immhb = bits(insn, 22, 16);
    let opc = bits(insn, 15, 11);
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    if immh == 0 {
        return None;
    }
    let hsb = 31 - immh.leading_zeros();
    let es = 8u32 << hsb;
    let form = match (opc, u) {
        (0b00000 | 0b00010 | 0b00100 | 0b00110, _) | (0b01000, true) => Form::Right,
        (0b01010, _) => Form::Left,
        (0b01100, true) | (0b01110, _) => Form::Left,
        (0b10000..=0b10011, _) => Form::Narrow,
        (0b10100, _) => Form::Long,
        _ => return None,
    };
    let sat_left = matches!(opc, 0b01100 | 0b01110);
    let ok = match form {
        Form::Right | Form::Left if scalar => hsb == 3 || sat_left,
        Form::Right | Form::Left => hsb != 3 || q,
        Form::Narrow => hsb != 3 && (!scalar || u || opc >= 0b10010),
        Form::Long => hsb != 3 && !scalar,
    };
    if !ok {
        return None;
    }
    let (vn, vd) = (st.v[rn], st.v[rd]);
    let mut qc = false;
    let mut r = 0u128;
    match form {
        Form::Right | Form::Left => {
            let datasize = if scalar {
                es
            } else if q {
                128
            } else {
                64
            };
            let n = (datasize / es) as usize;
            let sr = 2 * es - immhb;
            let sl = immhb - es;
            let m = ones(es);
            for i in 0..n {
                let x = elem(vn, i, es);
                let d = elem(vd, i, es);
                let v = match (opc, u) {
                    (0b00000..=0b00111, _) => {
                        let round = opc & 0b00100 != 0;
                        let acc = opc & 0b00010 != 0;
                        let s = shr_round(int(x, es, u), sr, round) as u64;
                        if acc {
                            d.wrapping_add(s)
                        } else {
                            s
                        }
                    }
                    (0b01000, _) => {
                        // SRI
                        let mask = if sr >= 64 { 0 } else { m >> sr };
                        let s = if sr >= 64 { 0 } else { x >> sr };
                        (d & !mask) | s
                    }
                    (0b01010, false) => x << sl,
                    (0b01010, true) => (d & !(m << sl)) | x << sl,
                    _ => {
                        // SQSHLU (01100), SQSHL / UQSHL (01110).
                        let src_unsigned = opc == 0b01110 && u;
                        let dst_unsigned = u;
                        let v = int(x, es, src_unsigned);
                        match shl_checked(v, sl) {
                            Some(s) => sat(s, es, dst_unsigned, &mut qc),
                            None => sat(v.signum() * i128::MAX, es, dst_unsigned, &mut qc),
                        }
                    }
                };
                set_elem(&mut r, i, es, v & m);
            }
        }
        Form::Narrow => {
            let ws = 2 * es;
            let sh = ws - immhb;
            let round = opc & 1 != 0;
            let n = if scalar { 1 } else { (64 / es) as usize };
            let mut res = 0u128;
            for i in 0..n {
                let x = elem(vn, i, ws);
                let v = match (opc >> 1, u) {
                    // SHRN, RSHRN
                    (0b1000, false) => shr_round(int(x, ws, true), sh, round) as u64 & ones(es),
                    // SQSHRUN, SQRSHRUN
                    (0b1000, true) => {
                        sat(shr_round(int(x, ws, false), sh, round), es, true, &mut qc)
                    }
                    // SQSHRN, UQSHRN, SQRSHRN, UQRSHRN
                    (_, uns) => sat(shr_round(int(x, ws, uns), sh, round), es, uns, &mut qc),
                };
                set_elem(&mut res, i, es, v);
            }
            r = if !scalar && q {
                lo64(vd) | res << 64
            } else {
                res
            };
        }
        Form::Long => {
            let sl = immhb - es;
            let n = (64 / es) as usize;
            for i in 0..n {
                let x = int(elem(vn, q as usize * n + i, es), es, u);
                set_elem(&mut r, i, 2 * es, (x << sl) as u64);
            }
        }
    }
    st.v[rd] = r;
    set_qc(st, qc);
    Some(())
}
