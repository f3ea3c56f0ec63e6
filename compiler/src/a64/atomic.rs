//! Exclusives and LSE atomics (ARM ARM C4.1.88.6, C6.2 CAS/LD<op>/SWP): LDXR/STXR and their
//! acquire/release and pair forms, CLREX, CAS/CASP, LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/
//! LDUMAX/LDUMIN and SWP in every size and ordering.
//!
//! The exclusive monitor is the reservation in [`CpuState`]: a store-exclusive succeeds when
//! the reservation covers the address and the memory still holds the value the
//! load-exclusive saw (QEMU's compare-and-swap model, which stays correct once guests run
//! threads). Misaligned exclusive or atomic accesses raise SIGBUS as on Linux.

use super::{bit, bits, Ctx, TResult, Undefined};
use crate::ir::Helper;
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// Translates one exclusive or atomic instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    let insn = c.insn;
    // CLREX: 1101 0101 0000 0011 0011 CRm 010 11111.
    if insn & 0xffff_f0ff == 0xd503_305f {
        c.call(&CLREX);
        return Ok(());
    }
    match (c.f(29, 24), c.bit(23), c.bit(21)) {
        // Load/store exclusive (o2 = 0): single or pair; CASP when size = 0x and o1 = 1.
        (0b001000, false, false) => {
            c.call(&EXCLUSIVE);
            Ok(())
        }
        (0b001000, false, true) if c.bit(31) => {
            c.call(&EXCLUSIVE);
            Ok(())
        }
        (0b001000, false, true) => {
            // CASP: Rs and Rt even, Rt2 = 11111.
            if c.f(14, 10) != 31 || c.f(20, 16) & 1 != 0 || c.f(4, 0) & 1 != 0 {
                return Err(Undefined);
            }
            c.call(&CASP);
            Ok(())
        }
        // CAS (o2 = 1, o1 = 1, Rt2 = 11111).
        (0b001000, true, true) if c.f(14, 10) == 31 => {
            c.call(&CAS);
            Ok(())
        }
        // Atomic memory operations: size 111 0 00 A R 1 Rs o3 opc 00 Rn Rt.
        (0b111000, _, true) if c.f(11, 10) == 0 && !c.bit(26) => {
            let (o3, opc) = (c.bit(15), c.f(14, 12));
            if o3 && opc != 0 {
                return Err(Undefined);
            }
            c.call(&LSE_RMW);
            Ok(())
        }
        _ => Err(Undefined),
    }
}

fn reg(st: &CpuState, r: u32) -> u64 {
    if r == 31 {
        0
    } else {
        st.x[r as usize]
    }
}

fn set_reg(st: &mut CpuState, r: u32, v: u64) {
    if r != 31 {
        st.x[r as usize] = v;
    }
}

fn mask(size: u8) -> u64 {
    if size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

fn aligned(addr: u64, size: u64) -> Result<(), Fault> {
    if addr.is_multiple_of(size) {
        Ok(())
    } else {
        Err(Fault::Bus { addr })
    }
}

static CLREX: Helper = Helper {
    name: "clrex",
    func: |st, _, _| {
        st.excl_size = 0;
        Ok(())
    },
    gpr: false,
};

static EXCLUSIVE: Helper = Helper {
    name: "exclusive",
    func: exclusive,
    gpr: true,
};

/// LDXR, LDAXR, STXR, STLXR (all sizes) and LDXP, LDAXP, STXP, STLXP.
fn exclusive(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let size_f = bits(insn, 31, 30);
    let pair = bit(insn, 21);
    let load = bit(insn, 22);
    let (rs, rt2, rn, rt) = (
        bits(insn, 20, 16),
        bits(insn, 14, 10),
        bits(insn, 9, 5),
        bits(insn, 4, 0),
    );
    // Element size: pairs use size<0> to choose 32- or 64-bit registers.
    let esize: u8 = if pair { 4 << (size_f & 1) } else { 1 << size_f };
    let total = esize as u64 * if pair { 2 } else { 1 };
    let addr = st.x[rn as usize];
    aligned(addr, total)?;
    if load {
        let v0 = mem.read(addr, esize)?;
        let v1 = if pair {
            mem.read(addr + esize as u64, esize)?
        } else {
            0
        };
        st.excl_addr = addr;
        st.excl_size = total;
        st.excl_val = [v0, v1];
        set_reg(st, rt, v0);
        if pair {
            set_reg(st, rt2, v1);
        }
        return Ok(());
    }
    let reserved = st.excl_size == total && st.excl_addr == addr;
    st.excl_size = 0;
    let mut ok = false;
    if reserved {
        let cur0 = mem.read(addr, esize)?;
        let cur1 = if pair {
            mem.read(addr + esize as u64, esize)?
        } else {
            0
        };
        if [cur0, cur1] == st.excl_val {
            let (v0, v1) = (reg(st, rt) & mask(esize), reg(st, rt2) & mask(esize));
            mem.write(addr, esize, v0)?;
            if pair {
                mem.write(addr + esize as u64, esize, v1)?;
            }
            ok = true;
        }
    } else {
        // A failing store-exclusive still checks that the address is writable.
        mem.read(addr, esize)?;
    }
    set_reg(st, rs, !ok as u64);
    Ok(())
}

static CAS: Helper = Helper {
    name: "cas",
    func: cas,
    gpr: true,
};

/// CAS, CASA, CASL, CASAL in B, H, W and X sizes.
fn cas(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let size = 1u8 << bits(insn, 31, 30);
    let (rs, rn, rt) = (bits(insn, 20, 16), bits(insn, 9, 5), bits(insn, 4, 0));
    let addr = st.x[rn as usize];
    aligned(addr, size as u64)?;
    let old = mem.read(addr, size)?;
    if old == reg(st, rs) & mask(size) {
        mem.write(addr, size, reg(st, rt) & mask(size))?;
    } else {
        // The access is a write even when the comparison fails.
        mem.write(addr, size, old)?;
    }
    set_reg(st, rs, old);
    Ok(())
}

static CASP: Helper = Helper {
    name: "casp",
    func: casp,
    gpr: true,
};

/// CASP, CASPA, CASPL, CASPAL on W or X register pairs.
fn casp(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let size: u8 = if bit(insn, 30) { 8 } else { 4 };
    let (rs, rn, rt) = (bits(insn, 20, 16), bits(insn, 9, 5), bits(insn, 4, 0));
    let addr = st.x[rn as usize];
    aligned(addr, 2 * size as u64)?;
    let hi = addr + size as u64;
    let old = (mem.read(addr, size)?, mem.read(hi, size)?);
    let expect = (reg(st, rs) & mask(size), reg(st, rs + 1) & mask(size));
    let new = if old == expect {
        (reg(st, rt) & mask(size), reg(st, rt + 1) & mask(size))
    } else {
        old
    };
    mem.write(addr, size, new.0)?;
    mem.write(hi, size, new.1)?;
    set_reg(st, rs, old.0);
    set_reg(st, rs + 1, old.1);
    Ok(())
}

static LSE_RMW: Helper = Helper {
    name: "lse_rmw",
    func: lse_rmw,
    gpr: true,
};

/// LDADD, LDCLR, LDEOR, LDSET, LDSMAX, LDSMIN, LDUMAX, LDUMIN, SWP (all sizes and orders).
fn lse_rmw(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let size = 1u8 << bits(insn, 31, 30);
    let (rs, rn, rt) = (bits(insn, 20, 16), bits(insn, 9, 5), bits(insn, 4, 0));
    let (o3, opc) = (bit(insn, 15), bits(insn, 14, 12));
    let addr = st.x[rn as usize];
    aligned(addr, size as u64)?;
    let old = mem.read(addr, size)?;
    let s = reg(st, rs) & mask(size);
    let sext = |v: u64| -> i64 { ((v << (64 - 8 * size as u32)) as i64) >> (64 - 8 * size as u32) };
    let new = if o3 {
        s
    } else {
        match opc {
            0b000 => old.wrapping_add(s),
            0b001 => old & !s,
            0b010 => old ^ s,
            0b011 => old | s,
            0b100 => {
                if sext(old) >= sext(s) {
                    old
                } else {
                    s
                }
            }
            0b101 => {
                if sext(old) <= sext(s) {
                    old
                } else {
                    s
                }
            }
            0b110 => old.max(s),
            _ => old.min(s),
        }
    };
    mem.write(addr, size, new & mask(size))?;
    set_reg(st, rt, old);
    Ok(())
}

/// The helpers of this module (for the registry of [`super::helpers`]).
pub(super) static HELPERS: &[&Helper] = &[&CLREX, &EXCLUSIVE, &CAS, &CASP, &LSE_RMW];
