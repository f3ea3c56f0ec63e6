//! Advanced SIMD structure loads and stores:
//! multiple structures (LD1-LD4, ST1-ST4: `0 Q 0011000 L 000000 opcode size Rn Rt`, post-index
//! `0 Q 0011001 L 0 Rm opcode size Rn Rt`) and single structures (single-lane LDn/STn and
//! LDnR: `0 Q 0011010 L R 00000 opcode S size Rn Rt`, post-index `0 Q 0011011 L R Rm ...`).
//!
//! Every access of one instruction is contiguous, so a load reads all its bytes first and
//! only then writes registers: a fault leaves the registers (and the base) untouched.

use super::{elem, set_elem};
use crate::a64::{bit, bits};
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// What one instruction transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `rpt` groups of `selem`-interleaved structures over whole registers.
    Multi { rpt: usize, datasize: u32 },
    /// One lane of each of `selem` registers.
    Single { index: usize },
    /// One structure replicated to all lanes (LDnR).
    Replicate { datasize: u32 },
}

/// A decoded structure load/store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LdSt {
    load: bool,
    kind: Kind,
    /// Registers per structure.
    selem: usize,
    /// Element size in bits.
    esize: u32,
    t: usize,
    n: usize,
    /// Post-index: `Some(31)` means by the transfer size, otherwise by X[m].
    post: Option<usize>,
}

impl LdSt {
    /// Bytes transferred.
    fn bytes(&self) -> usize {
        let eb = (self.esize / 8) as usize;
        match self.kind {
            Kind::Multi { rpt, datasize } => rpt * self.selem * datasize as usize / 8,
            Kind::Single { .. } | Kind::Replicate { .. } => self.selem * eb,
        }
    }
}

/// Decodes a structure load/store, `None` when unallocated.
pub(super) fn decode(insn: u32) -> Option<LdSt> {
    let q = bit(insn, 30);
    let load = bit(insn, 22);
    let post = if bit(insn, 23) {
        Some(bits(insn, 20, 16) as usize)
    } else {
        None
    };
    let (t, n) = (bits(insn, 4, 0) as usize, bits(insn, 9, 5) as usize);
    let size = bits(insn, 11, 10);
    let datasize = if q { 128 } else { 64 };
    if !bit(insn, 24) {
        // Multiple structures.
        let (rpt, selem) = match bits(insn, 15, 12) {
            0b0000 => (1, 4),
            0b0010 => (4, 1),
            0b0100 => (1, 3),
            0b0110 => (3, 1),
            0b0111 => (1, 1),
            0b1000 => (1, 2),
            0b1010 => (2, 1),
            _ => return None,
        };
        if size == 3 && !q && selem != 1 {
            return None;
        }
        return Some(LdSt {
            load,
            kind: Kind::Multi { rpt, datasize },
            selem,
            esize: 8 << size,
            t,
            n,
            post,
        });
    }
    // Single structure.
    let opcode = bits(insn, 15, 13);
    let r = bit(insn, 21) as usize;
    let s = bits(insn, 12, 12) as usize;
    let selem = ((opcode as usize & 1) << 1 | r) + 1;
    let qi = q as usize;
    let size = size as usize;
    let (scale, index) = match opcode >> 1 {
        0 => (0, qi << 3 | s << 2 | size),
        1 if size & 1 == 0 => (1, qi << 2 | s << 1 | size >> 1),
        2 if size & 2 == 0 => {
            if size & 1 == 0 {
                (2, qi << 1 | s)
            } else if s == 0 {
                (3, qi)
            } else {
                return None;
            }
        }
        3 if load && s == 0 => {
            return Some(LdSt {
                load,
                kind: Kind::Replicate { datasize },
                selem,
                esize: 8 << size,
                t,
                n,
                post,
            });
        }
        _ => return None,
    };
    Some(LdSt {
        load,
        kind: Kind::Single { index },
        selem,
        esize: 8 << scale,
        t,
        n,
        post,
    })
}

/// The helper: performs the transfer and the post-index writeback.
pub(super) fn exec(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let d = decode(insn).ok_or(Fault::Undefined { insn })?;
    let addr = st.x[d.n];
    let total = d.bytes();
    let eb = (d.esize / 8) as usize;
    let mut buf = [0u8; 64];
    let buf = &mut buf[..total];
    // Byte offset in `buf` of element `e` of structure register `s` (repeat `r`).
    let get = |buf: &[u8], off: usize| {
        let mut b = [0u8; 8];
        b[..eb].copy_from_slice(&buf[off..off + eb]);
        u64::from_le_bytes(b)
    };
    let put = |buf: &mut [u8], off: usize, v: u64| {
        buf[off..off + eb].copy_from_slice(&v.to_le_bytes()[..eb])
    };
    if d.load {
        mem.read_bytes(addr, buf)?;
        match d.kind {
            Kind::Multi { rpt, datasize } => {
                let elements = (datasize / d.esize) as usize;
                let mut off = 0;
                for r in 0..rpt {
                    let mut regs = [0u128; 4];
                    for e in 0..elements {
                        for s in 0..d.selem {
                            set_elem(&mut regs[r.max(s)], e, d.esize, get(buf, off));
                            off += eb;
                        }
                    }
                    if d.selem == 1 {
                        st.v[(d.t + r) % 32] = regs[r];
                    } else {
                        for (s, v) in regs.iter().enumerate().take(d.selem) {
                            st.v[(d.t + s) % 32] = *v;
                        }
                    }
                }
            }
            Kind::Single { index } => {
                for s in 0..d.selem {
                    set_elem(&mut st.v[(d.t + s) % 32], index, d.esize, get(buf, s * eb));
                }
            }
            Kind::Replicate { datasize } => {
                for s in 0..d.selem {
                    let x = get(buf, s * eb);
                    let mut v = 0u128;
                    for e in 0..(datasize / d.esize) as usize {
                        set_elem(&mut v, e, d.esize, x);
                    }
                    st.v[(d.t + s) % 32] = v;
                }
            }
        }
    } else {
        match d.kind {
            Kind::Multi { rpt, datasize } => {
                let elements = (datasize / d.esize) as usize;
                let mut off = 0;
                for r in 0..rpt {
                    for e in 0..elements {
                        for s in 0..d.selem {
                            put(buf, off, elem(st.v[(d.t + r + s) % 32], e, d.esize));
                            off += eb;
                        }
                    }
                }
            }
            Kind::Single { index } => {
                for s in 0..d.selem {
                    put(buf, s * eb, elem(st.v[(d.t + s) % 32], index, d.esize));
                }
            }
            Kind::Replicate { .. } => return Err(Fault::Undefined { insn }),
        }
        mem.write_bytes(addr, buf)?;
    }
    if let Some(m) = d.post {
        let off = if m == 31 { total as u64 } else { st.x[m] };
        st.x[d.n] = addr.wrapping_add(off);
    }
    Ok(())
}
