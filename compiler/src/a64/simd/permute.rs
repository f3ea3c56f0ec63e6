//! Advanced SIMD permute (UZP1/2, TRN1/2, ZIP1/2: `0 Q 001110 size 0 Rm 0 opcode 10 Rn Rd`),
//! extract (EXT: `0 Q 101110 00 0 Rm 0 imm4 0 Rn Rd`) and table lookup
//! (TBL/TBX: `0 Q 001110 00 0 Rm 0 len op 00 Rn Rd`).

use super::{elem, lo64, set_elem};
use crate::a64::{bit, bits};
use crate::state::CpuState;

pub(super) fn exec(st: &mut CpuState, insn: u32) -> Option<()> {
    let q = bit(insn, 30);
    let size = bits(insn, 23, 22);
    let opc = bits(insn, 14, 12);
    let (rm, rn, rd) = (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    );
    if opc & 3 == 0 || (size == 3 && !q) {
        return None;
    }
    let es = 8u32 << size;
    let n = ((if q { 128 } else { 64 }) / es) as usize;
    let part = (opc >> 2) as usize;
    let (vn, vm) = (st.v[rn], st.v[rm]);
    let mut r = 0u128;
    for p in 0..n / 2 {
        let (lo, hi) = match opc & 3 {
            // UZP: even or odd elements of the concatenation Vm:Vn.
            1 => {
                let cat = |j: usize| {
                    if j < n {
                        elem(vn, j, es)
                    } else {
                        elem(vm, j - n, es)
                    }
                };
                let (i0, i1) = (p, p + n / 2);
                set_elem(&mut r, i0, es, cat(2 * i0 + part));
                set_elem(&mut r, i1, es, cat(2 * i1 + part));
                continue;
            }
            // TRN
            2 => (elem(vn, 2 * p + part, es), elem(vm, 2 * p + part, es)),
            // ZIP
            _ => (
                elem(vn, part * n / 2 + p, es),
                elem(vm, part * n / 2 + p, es),
            ),
        };
        set_elem(&mut r, 2 * p, es, lo);
        set_elem(&mut r, 2 * p + 1, es, hi);
    }
    st.v[rd] = r;
    Some(())
}

/// EXT: bytes `imm4..` of the concatenation Vm:Vn.
pub(super) fn exec_ext(st: &mut CpuState, insn: u32) -> Option<()> {
    let q = bit(insn, 30);
    let imm4 = bits(insn, 14, 11);
    let (rm, rn, rd) = (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    );
    if !q && imm4 >= 8 {
        return None;
    }
    let (vn, vm) = (st.v[rn], st.v[rm]);
    let pos = imm4 * 8;
    st.v[rd] = if q {
        if pos == 0 {
            vn
        } else {
            vn >> pos | vm << (128 - pos)
        }
    } else {
        let cat = lo64(vn) | lo64(vm) << 64;
        lo64(cat >> pos)
    };
    Some(())
}

/// TBL, TBX with 1 to 4 table registers.
pub(super) fn exec_tbl(st: &mut CpuState, insn: u32) -> Option<()> {
    let q = bit(insn, 30);
    let regs = bits(insn, 14, 13) as usize + 1;
    let tbx = bit(insn, 12);
    let (rm, rn, rd) = (
        bits(insn, 20, 16) as usize,
        bits(insn, 9, 5) as usize,
        bits(insn, 4, 0) as usize,
    );
    let table: [u128; 4] = std::array::from_fn(|i| st.v[(rn + i) % 32]);
    let (vm, vd) = (st.v[rm], st.v[rd]);
    let mut r = 0u128;
    for i in 0..(if q { 16 } else { 8 }) {
        let idx = elem(vm, i, 8) as usize;
        let v = if idx < 16 * regs {
            elem(table[idx / 16], idx % 16, 8)
        } else if tbx {
            elem(vd, i, 8)
        } else {
            0
        };
        set_elem(&mut r, i, 8, v);
    }
    st.v[rd] = r;
    Some(())
}
