//! Advanced SIMD copy: DUP (element, general), INS (element, general), SMOV, UMOV
//! (`0 Q op 01110000 imm5 0 imm4 1 Rn Rd`) and scalar DUP (element)
//! (`01 0 11110000 imm5 0 0000 1 Rn Rd`).

use super::{elem, ones, set_elem};
use crate::a64::{bit, bits, sext};
use crate::state::CpuState;

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let scalar = bit(insn, 28);
    let q = bit(insn, 30);
    let op = bit(insn, 29);
    let imm5 = bits(insn, 20, 16);
    let imm4 = bits(insn, 14, 11);
    let (rn, rd) = (bits(insn, 9, 5) as usize, bits(insn, 4, 0) as usize);
    if imm5 & 0xf == 0 {
        return None;
    }
    let size = imm5.trailing_zeros();
    let es = 8u32 << size;
    let index = (imm5 >> (size + 1)) as usize;
    let xn = if rn == 31 { 0 } else { st.x[rn] };
    if scalar {
        if op || imm4 != 0 {
            return None;
        }
        st.v[rd] = elem(st.v[rn], index, es) as u128;
        return Some(());
    }
    let datasize = if q { 128 } else { 64 };
    let dup = |x: u64| {
        let mut r = 0u128;
        for i in 0..(datasize / es) as usize {
            set_elem(&mut r, i, es, x);
        }
        r
    };
    if op {
        // INS (element)
        if !q {
            return None;
        }
        let src = (imm4 >> size) as usize;
        let x = elem(st.v[rn], src, es);
        set_elem(&mut st.v[rd], index, es, x);
        return Some(());
    }
    match imm4 {
        0b0000 if size < 3 || q => st.v[rd] = dup(elem(st.v[rn], index, es)),
        0b0001 if size < 3 || q => st.v[rd] = dup(xn),
        0b0011 if q => set_elem(&mut st.v[rd], index, es, xn),
        0b0101 if size < 2 || (q && size < 3) => {
            let v = sext(elem(st.v[rn], index, es), es) as u64;
            let v = if q { v } else { v & ones(32) };
            if rd != 31 {
                st.x[rd] = v;
            }
        }
        0b0111 if (q && size == 3) || (!q && size < 3) => {
            let v = elem(st.v[rn], index, es);
            if rd != 31 {
                st.x[rd] = v;
            }
        }
        _ => return None,
    }
    Some(())
}
