//! Random differential test of single A64 integer instructions: random valid encodings of
//! every implemented integer class, random register values (biased to edge values) and
//! random NZCV, run by the reference interpreter and by qemu-aarch64, compared field by field
//! (x0..x30, SP, NZCV, branch path, signal, scratch buffer). See `common/mod.rs` for the qemu
//! program.
//!
//! `VMC_RANDOM_CASES=N` sets the number of cases (default 10000), `VMC_RANDOM_SEED=S` the seed
//! (default: from the clock; always printed). Skips (and passes) without qemu-aarch64 or
//! aarch64-linux-gnu-gcc.

mod common;

use common::{
    differing_fields, missing_tools, report, run_interp, run_qemu, Case, Rng, BUF_ADDR, BUF_SIZE,
};
use vmc_compiler::a64::{disasm, translate_block_limit};
use vmc_compiler::ir::{Op, TrapKind};

/// Centre of the scratch buffer: base registers point near here.
const MID: u64 = BUF_ADDR + BUF_SIZE as u64 / 2;

/// Known bugs: (mask, value, description). A mismatch whose first word matches is printed as
/// an expected failure instead of failing the test. Keep this empty unless a fix is pending.
/// Known, printed-but-tolerated divergences: (mask, value, why). Empty: every difference fails.
const KNOWN_BUGS: &[(u32, u32, &str)] = &[];

fn reg(r: &mut Rng) -> u32 {
    r.below(32) as u32
}

/// A case with random register values and NZCV; SP random (16-aligned) and no buffer.
fn plain(r: &mut Rng, class: &'static str, words: Vec<u32>) -> Case {
    let mut x = [0u64; 32];
    for v in x.iter_mut() {
        *v = r.value();
    }
    x[31] = r.next() & !15;
    Case {
        class,
        words,
        x,
        nzcv: (r.below(16)) << 28,
        buf: None,
    }
}

/// A case with a random scratch buffer; `bases` are (register, address) pairs (31 = SP).
fn with_mem(r: &mut Rng, class: &'static str, words: Vec<u32>, bases: &[(u32, u64)]) -> Case {
    let mut c = plain(r, class, words);
    c.x[31] = MID;
    let mut buf = vec![0u8; BUF_SIZE];
    for chunk in buf.chunks_mut(8) {
        let v = r.value();
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
    c.buf = Some(buf);
    for &(reg, addr) in bases {
        c.x[reg as usize] = addr;
    }
    c
}

/// A base address near the middle of the buffer, aligned to `align`.
fn base_addr(r: &mut Rng, align: u64) -> u64 {
    let delta = r.below(129) as i64 - 64;
    (MID as i64 + delta) as u64 & !(align - 1)
}

// ---------------------------------------------------------------------------------------
// Data processing - immediate.

fn bitmask_valid(n: u32, imms: u32, sf: bool) -> bool {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return false;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (!sf && len > 5) {
        return false;
    }
    let levels = (1u32 << len) - 1;
    imms & levels != levels
}

fn gen_dp_imm(r: &mut Rng) -> Option<Case> {
    let sf = r.below(2) as u32;
    let (rn, rd) = (reg(r), reg(r));
    let w = match r.below(7) {
        // ADR, ADRP.
        0 => {
            (r.below(2) as u32) << 31
                | (r.below(4) as u32) << 29
                | 0b10000 << 24
                | (r.u32() & 0x7ffff) << 5
                | rd
        }
        // ADD/ADDS/SUB/SUBS (immediate).
        1 => {
            sf << 31
                | (r.below(4) as u32) << 29
                | 0b100010 << 23
                | (r.below(2) as u32) << 22
                | (r.u32() & 0xfff) << 10
                | rn << 5
                | rd
        }
        // Logical (immediate) with a valid bitmask.
        2 => {
            let n = if sf == 1 { r.below(2) as u32 } else { 0 };
            let (immr, imms) = (r.below(64) as u32, r.below(64) as u32);
            let immr = if sf == 0 { immr & 31 } else { immr };
            if !bitmask_valid(n, imms, sf == 1) {
                return None;
            }
            sf << 31
                | (r.below(4) as u32) << 29
                | 0b100100 << 23
                | n << 22
                | immr << 16
                | imms << 10
                | rn << 5
                | rd
        }
        // MOVN, MOVZ, MOVK.
        3 => {
            let opc = r.pick(&[0u32, 2, 3]);
            let hw = if sf == 1 { r.below(4) } else { r.below(2) } as u32;
            sf << 31 | opc << 29 | 0b100101 << 23 | hw << 21 | (r.u32() & 0xffff) << 5 | rd
        }
        // SBFM, BFM, UBFM.
        4 | 5 => {
            let opc = r.below(3) as u32;
            let lim = if sf == 1 { 64 } else { 32 };
            sf << 31
                | opc << 29
                | 0b100110 << 23
                | sf << 22
                | (r.below(lim) as u32) << 16
                | (r.below(lim) as u32) << 10
                | rn << 5
                | rd
        }
        // EXTR.
        _ => {
            let lim = if sf == 1 { 64 } else { 32 };
            sf << 31
                | 0b100111 << 23
                | sf << 22
                | reg(r) << 16
                | (r.below(lim) as u32) << 10
                | rn << 5
                | rd
        }
    };
    Some(plain(r, "dp_imm", vec![w]))
}

// ---------------------------------------------------------------------------------------
// Data processing - register.

fn gen_dp_reg(r: &mut Rng) -> Option<Case> {
    let sf = r.below(2) as u32;
    let (rm, rn, rd) = (reg(r), reg(r), reg(r));
    let imm6 = if sf == 1 { r.below(64) } else { r.below(32) } as u32;
    let w = match r.below(12) {
        // Logical (shifted register), including ROR.
        0 | 1 => {
            sf << 31
                | (r.below(4) as u32) << 29
                | 0b01010 << 24
                | (r.below(4) as u32) << 22
                | (r.below(2) as u32) << 21
                | rm << 16
                | imm6 << 10
                | rn << 5
                | rd
        }
        // Add/sub (shifted register).
        2 => {
            sf << 31
                | (r.below(4) as u32) << 29
                | 0b01011 << 24
                | (r.below(3) as u32) << 22
                | rm << 16
                | imm6 << 10
                | rn << 5
                | rd
        }
        // Add/sub (extended register).
        3 => {
            sf << 31
                | (r.below(4) as u32) << 29
                | 0b01011001 << 21
                | rm << 16
                | (r.below(8) as u32) << 13
                | (r.below(5) as u32) << 10
                | rn << 5
                | rd
        }
        // ADC, ADCS, SBC, SBCS.
        4 => sf << 31 | (r.below(4) as u32) << 29 | 0b11010000 << 21 | rm << 16 | rn << 5 | rd,
        // CCMN, CCMP (register and immediate).
        5 => {
            sf << 31
                | (r.below(2) as u32) << 30
                | 1 << 29
                | 0b11010010 << 21
                | rm << 16
                | (r.below(16) as u32) << 12
                | (r.below(2) as u32) << 11
                | rn << 5
                | r.below(16) as u32
        }
        // CSEL, CSINC, CSINV, CSNEG.
        6 => {
            sf << 31
                | (r.below(2) as u32) << 30
                | 0b11010100 << 21
                | rm << 16
                | (r.below(16) as u32) << 12
                | (r.below(2) as u32) << 10
                | rn << 5
                | rd
        }
        // RBIT, REV16, REV32/REV, REV (64), CLZ, CLS.
        7 => {
            let opcode = if sf == 1 {
                r.below(6)
            } else {
                r.pick(&[0, 1, 2, 4, 5])
            } as u32;
            sf << 31 | 1 << 30 | 0b11010110 << 21 | opcode << 10 | rn << 5 | rd
        }
        // UDIV, SDIV, LSLV, LSRV, ASRV, RORV.
        8 => {
            sf << 31
                | 0b11010110 << 21
                | rm << 16
                | r.pick(&[2u32, 3, 8, 9, 10, 11]) << 10
                | rn << 5
                | rd
        }
        // CRC32{B,H,W,X}, CRC32C{B,H,W,X}.
        9 => {
            let sz = if sf == 1 { 3 } else { r.below(3) as u32 };
            sf << 31
                | 0b11010110 << 21
                | rm << 16
                | (0b010 << 3 | (r.below(2) as u32) << 2 | sz) << 10
                | rn << 5
                | rd
        }
        // MADD, MSUB (both widths); SMADDL/SMSUBL/UMADDL/UMSUBL, SMULH/UMULH (64-bit).
        _ => {
            let (sf, op31, o0, ra) = match r.below(4) {
                0 => (sf, 0, r.below(2) as u32, reg(r)),
                1 => (1, r.pick(&[1u32, 5]), r.below(2) as u32, reg(r)),
                2 => (1, r.pick(&[2u32, 6]), 0, 31),
                _ => (1, 0, r.below(2) as u32, reg(r)),
            };
            sf << 31 | 0b11011 << 24 | op31 << 21 | rm << 16 | o0 << 15 | ra << 10 | rn << 5 | rd
        }
    };
    Some(plain(r, "dp_reg", vec![w]))
}

// ---------------------------------------------------------------------------------------
// Conditional branches (target = +16, fall-through = +4).

fn gen_branch(r: &mut Rng) -> Option<Case> {
    let rt = reg(r);
    let w = match r.below(3) {
        0 => 0b0101010 << 25 | 4 << 5 | r.below(16) as u32,
        1 => (r.below(2) as u32) << 31 | 0b011010 << 25 | (r.below(2) as u32) << 24 | 4 << 5 | rt,
        _ => {
            let b = r.below(64) as u32;
            (b >> 5) << 31
                | 0b011011 << 25
                | (r.below(2) as u32) << 24
                | (b & 31) << 19
                | 4 << 5
                | rt
        }
    };
    let mut c = plain(r, "branch", vec![w]);
    if rt != 31 {
        c.x[rt as usize] = match r.below(4) {
            0 => 0,
            1 => r.next() << 32,
            2 => 1 << r.below(64),
            _ => c.x[rt as usize],
        };
    }
    Some(c)
}

// ---------------------------------------------------------------------------------------
// Loads and stores of general registers.

/// (size, opc) of a valid single-register general load/store; `prefetch_ok` allows PRFM.
fn single_sz_opc(r: &mut Rng, prefetch_ok: bool) -> (u32, u32) {
    loop {
        let (size, opc) = (r.below(4) as u32, r.below(4) as u32);
        match (opc, size) {
            (0 | 1, _) => return (size, opc),
            (2, 3) if prefetch_ok => return (size, opc),
            (2, 0..=2) => return (size, opc),
            (3, 0 | 1) => return (size, opc),
            _ => {}
        }
    }
}

fn gen_ldst(r: &mut Rng) -> Option<Case> {
    let (rn, rt) = (reg(r), reg(r));
    let base = base_addr(r, 1);
    match r.below(10) {
        // Unscaled (LDUR/STUR/PRFUM), post-index, unprivileged, pre-index.
        0..=3 => {
            let idx = r.below(4) as u32;
            let (size, opc) = single_sz_opc(r, idx == 0);
            let writeback = idx & 1 == 1;
            if writeback && rt == rn && rn != 31 {
                return None;
            }
            let imm9 = r.below(512) as u32;
            let w = size << 30 | 0b111 << 27 | opc << 22 | imm9 << 12 | idx << 10 | rn << 5 | rt;
            Some(with_mem(
                r,
                "ldst",
                vec![w],
                &[(rn, base & if rn == 31 { !15 } else { !0 })],
            ))
        }
        // Unsigned scaled 12-bit offset.
        4 | 5 => {
            let (size, opc) = single_sz_opc(r, true);
            let imm12 = r.below(900 >> size) as u32;
            let w = size << 30 | 0b111 << 27 | 1 << 24 | opc << 22 | imm12 << 10 | rn << 5 | rt;
            Some(with_mem(
                r,
                "ldst",
                vec![w],
                &[(rn, base & if rn == 31 { !15 } else { !0 })],
            ))
        }
        // Register offset: UXTW, LSL (UXTX), SXTW, SXTX, optionally scaled.
        6 => {
            let (size, opc) = single_sz_opc(r, true);
            let rm = reg(r);
            if rm == rn && rn != 31 {
                return None;
            }
            let option = r.pick(&[2u32, 3, 6, 7]);
            let s = r.below(2) as u32;
            let shift = if s == 1 { size } else { 0 };
            let off = r.below(1024 >> shift) as i64 - (512 >> shift) as i64;
            let (off, option) = if option == 2 && off < 0 {
                (-off, option)
            } else {
                (off, option)
            };
            let hi = r.next() & 0xffff_ffff_0000_0000;
            let mval = match option {
                2 | 6 => hi | off as u32 as u64,
                _ => off as u64,
            };
            let w = size << 30
                | 0b111 << 27
                | opc << 22
                | 1 << 21
                | rm << 16
                | option << 13
                | s << 12
                | 0b10 << 10
                | rn << 5
                | rt;
            let mut c = with_mem(
                r,
                "ldst",
                vec![w],
                &[(rn, base & if rn == 31 { !15 } else { !0 })],
            );
            if rm != 31 {
                c.x[rm as usize] = mval;
            }
            Some(c)
        }
        // Pairs: STP/LDP (W, X), LDPSW, STNP/LDNP; offset, pre- and post-index.
        7 | 8 => {
            let load = r.below(2) as u32;
            let opc = if load == 1 {
                r.pick(&[0u32, 1, 2])
            } else {
                r.pick(&[0u32, 2])
            };
            let idx = if opc == 1 {
                r.pick(&[1u32, 2, 3])
            } else {
                r.below(4) as u32
            };
            let rt2 = reg(r);
            let writeback = idx & 1 == 1;
            if load == 1 && rt == rt2 {
                return None;
            }
            if writeback && rn != 31 && (rt == rn || rt2 == rn) {
                return None;
            }
            let imm7 = r.below(128) as u32;
            let w = opc << 30
                | 0b101 << 27
                | idx << 23
                | load << 22
                | imm7 << 15
                | rt2 << 10
                | rn << 5
                | rt;
            Some(with_mem(
                r,
                "ldst",
                vec![w],
                &[(rn, base & if rn == 31 { !15 } else { !0 })],
            ))
        }
        // LDAR/STLR/LDLAR/STLLR, LDAPR, LDAPUR/STLUR (aligned addresses).
        _ => {
            let size = r.below(4) as u32;
            let abase = base_addr(r, 16);
            let w = match r.below(3) {
                0 => {
                    size << 30
                        | 0b001000 << 24
                        | 1 << 23
                        | (r.below(2) as u32) << 22
                        | 31 << 16
                        | (r.below(2) as u32) << 15
                        | 31 << 10
                        | rn << 5
                        | rt
                }
                1 => {
                    size << 30
                        | 0b111000 << 24
                        | 0b101 << 21
                        | 31 << 16
                        | 0b110000 << 10
                        | rn << 5
                        | rt
                }
                _ => {
                    let opc = match size {
                        3 => r.below(2) as u32,
                        2 => r.below(3) as u32,
                        _ => r.below(4) as u32,
                    };
                    let imm9 = ((r.below(32) as i32 - 16) << size) as u32 & 0x1ff;
                    size << 30 | 0b011001 << 24 | opc << 22 | imm9 << 12 | rn << 5 | rt
                }
            };
            Some(with_mem(r, "ldst", vec![w], &[(rn, abase)]))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Exclusives and LSE atomics (aligned addresses).

fn gen_atomic(r: &mut Rng) -> Option<Case> {
    let (rs, rn, rt) = (reg(r), reg(r), reg(r));
    let size = r.below(4) as u32;
    let addr = base_addr(r, 16);
    if rn != 31 && (rs == rn || rt == rn) {
        return None;
    }
    let o0 = r.below(2) as u32;
    match r.below(8) {
        // LDXR/LDAXR alone, or followed by STXR/STLXR on the same address.
        0 | 1 => {
            let ld = size << 30
                | 0b001000 << 24
                | 1 << 22
                | 31 << 16
                | o0 << 15
                | 31 << 10
                | rn << 5
                | rt;
            let mut words = vec![ld];
            if r.below(4) != 0 {
                let rt_st = reg(r);
                if rs == rt_st || rs == rt || (rn != 31 && rt_st == rn) {
                    return None;
                }
                words.push(
                    size << 30
                        | 0b001000 << 24
                        | rs << 16
                        | (r.below(2) as u32) << 15
                        | 31 << 10
                        | rn << 5
                        | rt_st,
                );
            }
            Some(with_mem(r, "excl", words, &[(rn, addr)]))
        }
        // STXR without a reservation (fails).
        2 => {
            if rs == rt {
                return None;
            }
            let w = size << 30 | 0b001000 << 24 | rs << 16 | o0 << 15 | 31 << 10 | rn << 5 | rt;
            Some(with_mem(r, "excl", vec![w], &[(rn, addr)]))
        }
        // LDXP/LDAXP, optionally followed by STXP/STLXP.
        3 => {
            let sz = r.below(2) as u32;
            let rt2 = reg(r);
            if rt == rt2 || (rn != 31 && rt2 == rn) {
                return None;
            }
            let ld = 1 << 31
                | sz << 30
                | 0b001000 << 24
                | 1 << 22
                | 1 << 21
                | 31 << 16
                | o0 << 15
                | rt2 << 10
                | rn << 5
                | rt;
            let mut words = vec![ld];
            if r.coin() {
                let (a, b) = (reg(r), reg(r));
                if rs == a || rs == b || rs == rt || rs == rt2 || (rn != 31 && (a == rn || b == rn))
                {
                    return None;
                }
                words.push(
                    1 << 31
                        | sz << 30
                        | 0b001000 << 24
                        | 1 << 21
                        | rs << 16
                        | (r.below(2) as u32) << 15
                        | b << 10
                        | rn << 5
                        | a,
                );
            }
            Some(with_mem(r, "excl", words, &[(rn, addr)]))
        }
        // CAS, CASA, CASL, CASAL (all sizes).
        4 => {
            let w = size << 30
                | 0b001000 << 24
                | 1 << 23
                | (r.below(2) as u32) << 22
                | 1 << 21
                | rs << 16
                | o0 << 15
                | 31 << 10
                | rn << 5
                | rt;
            let mut c = with_mem(r, "cas", vec![w], &[(rn, addr)]);
            if rs != 31 && r.coin() {
                let off = (addr - BUF_ADDR) as usize;
                let b = c.buf.as_ref().unwrap();
                let mut v = [0u8; 8];
                v[..1 << size].copy_from_slice(&b[off..off + (1 << size)]);
                let hi = if r.coin() { 0 } else { r.next() };
                let m = if size == 3 {
                    0
                } else {
                    u64::MAX << (8 << size)
                };
                c.x[rs as usize] = u64::from_le_bytes(v) | (hi & m);
            }
            Some(c)
        }
        // CASP, CASPA, CASPL, CASPAL.
        5 => {
            let (rs, rt) = (rs & !1, rt & !1);
            if rn != 31 && (rs == rn || rs + 1 == rn || rt == rn || rt + 1 == rn) {
                return None;
            }
            let sz = r.below(2) as u32;
            let w = sz << 30
                | 0b001000 << 24
                | (r.below(2) as u32) << 22
                | 1 << 21
                | rs << 16
                | o0 << 15
                | 31 << 10
                | rn << 5
                | rt;
            let mut c = with_mem(r, "cas", vec![w], &[(rn, addr)]);
            if rs < 30 && r.coin() {
                let off = (addr - BUF_ADDR) as usize;
                let b = c.buf.as_ref().unwrap();
                let n = 4 << sz;
                let mut v = [0u8; 8];
                v[..n].copy_from_slice(&b[off..off + n]);
                c.x[rs as usize] = u64::from_le_bytes(v);
                let mut v = [0u8; 8];
                v[..n].copy_from_slice(&b[off + n..off + 2 * n]);
                c.x[rs as usize + 1] = u64::from_le_bytes(v);
            }
            Some(c)
        }
        // LDADD, LDCLR, LDEOR, LDSET, LDSMAX, LDSMIN, LDUMAX, LDUMIN, SWP.
        _ => {
            let (o3, opc) = if r.below(9) == 0 {
                (1, 0)
            } else {
                (0, r.below(8) as u32)
            };
            let w = size << 30
                | 0b111000 << 24
                | (r.below(4) as u32) << 22
                | 1 << 21
                | rs << 16
                | o3 << 15
                | opc << 12
                | rn << 5
                | rt;
            Some(with_mem(r, "lse", vec![w], &[(rn, addr)]))
        }
    }
}

// ---------------------------------------------------------------------------------------
// System: MSR/MRS NZCV, MRS FPCR/FPSR, hints, barriers, CLREX, DC ZVA.

fn gen_system(r: &mut Rng) -> Option<Case> {
    let rt = reg(r);
    let w = match r.below(6) {
        0 => 0xd51b_4200 | rt,                            // msr nzcv, xt
        1 => 0xd53b_4200 | rt,                            // mrs xt, nzcv
        2 => r.pick(&[0xd53b_4400u32, 0xd53b_4420]) | rt, // mrs xt, fpcr / fpsr
        3 => 0xd503_201f | (r.below(8) as u32) << 5,      // nop, yield, wfe, sev, ...
        4 => 0xd503_309f | (r.below(16) as u32) << 8 | r.pick(&[0u32, 1, 2]) << 5, // dsb, dmb, isb
        _ => {
            if rt == 31 {
                return None;
            }
            let w = 0xd50b_7420 | rt; // dc zva, xt
            let addr = base_addr(r, 1);
            return Some(with_mem(r, "system", vec![w], &[(rt, addr)]));
        }
    };
    Some(plain(r, "system", vec![w]))
}

// ---------------------------------------------------------------------------------------
// Undefined probes: random words of the integer encoding spaces the interpreter rejects.
// They run under `-cpu cortex-a76` (ARMv8.2 + LSE + RCpc), close to what the translator
// advertises, so later extensions qemu's `max` CPU implements do not count.

fn interp_rejects(w: u32) -> bool {
    let block = translate_block_limit(&mut |pc| (pc == 0x1000).then_some(w), 0x1000, 1);
    matches!(
        block.ops.last(),
        Some(Op::Trap {
            kind: TrapKind::Undefined,
            ..
        })
    )
}

fn gen_probe(r: &mut Rng) -> Option<Case> {
    let raw = r.u32();
    let w = match r.below(3) {
        0 => raw & !(7 << 26) | 0b100 << 26,
        1 => raw & !(7 << 25) | 0b101 << 25,
        // Loads and stores with V = 0.
        _ => raw & !(0b1011 << 24) | 0b1000 << 24,
    };
    if !interp_rejects(w) {
        return None;
    }
    // Every register points into the buffer, so a word qemu does execute stays harmless.
    let mut c = with_mem(r, "undef", vec![w], &[]);
    for v in c.x.iter_mut() {
        *v = MID;
    }
    Some(c)
}

// ---------------------------------------------------------------------------------------

type Gen = fn(&mut Rng) -> Option<Case>;

/// (name, generator, share of the cases in percent, qemu CPU).
const GROUPS: &[(&str, Gen, u64, &str)] = &[
    ("dp_imm", gen_dp_imm, 18, "max"),
    ("dp_reg", gen_dp_reg, 28, "max"),
    ("branch", gen_branch, 8, "max"),
    ("ldst", gen_ldst, 24, "max"),
    ("atomic", gen_atomic, 12, "max"),
    // cortex-a76: 64-byte DC ZVA blocks (the DCZID_EL0 we report) and no pointer
    // authentication (XPACLRI is a NOP here, as we do not advertise PAC).
    ("system", gen_system, 2, "cortex-a76"),
    ("undef", gen_probe, 8, "cortex-a76"),
];

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

#[test]
fn random_differential_against_qemu() {
    if let Some(why) = missing_tools() {
        eprintln!("skipping random_diff: {why}");
        return;
    }
    let started = std::time::Instant::now();
    let total = env_u64("VMC_RANDOM_CASES").unwrap_or(10000);
    let seed = env_u64("VMC_RANDOM_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("random_diff: {total} cases, seed {seed:#x} (rerun with VMC_RANDOM_SEED={seed:#x})");

    // Generate every group's cases, then run the groups' qemu programs in parallel.
    let mut batches = Vec::new();
    for (gi, &(name, gen, share, cpu)) in GROUPS.iter().enumerate() {
        let mut r = Rng::new(seed ^ (gi as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        let want = (total * share).div_ceil(100) as usize;
        let mut cases = Vec::with_capacity(want);
        let mut tries = 0;
        while cases.len() < want && tries < want * 1000 {
            tries += 1;
            if let Some(c) = gen(&mut r) {
                cases.push(c);
            }
        }
        // Split big groups so the qemu runs overlap.
        for (k, chunk) in cases.chunks(1500).enumerate() {
            batches.push((format!("{name}{k}"), cpu, chunk.to_vec()));
        }
    }
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = batches
            .iter()
            .map(|(tag, cpu, cases)| s.spawn(move || run_qemu(tag, cpu, cases)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut failures = Vec::new();
    let mut summary = Vec::new();
    let mut known = Vec::new();
    let mut count = 0usize;
    let mut per_class = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for ((tag, cpu, cases), run) in batches.iter().zip(&runs) {
        if let Some(err) = &run.error {
            let next = cases.get(run.results.len());
            let culprit = next
                .map(|c| {
                    c.words
                        .iter()
                        .map(|w| format!("{w:08x} {}", disasm(*w, 0)))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            failures.push(format!(
                "[{tag}] qemu ({cpu}) stopped after {} of {} cases; next case: {culprit}\n{err}",
                run.results.len(),
                cases.len()
            ));
        }
        for (case, (q, code)) in cases.iter().zip(&run.results) {
            count += 1;
            let insn_pc = code + 4;
            let e = per_class.entry(case.class).or_default();
            e.0 += 1;
            let ours = match run_interp(case, insn_pc) {
                Ok(o) => o,
                Err(msg) => {
                    e.1 += 1;
                    failures.push(format!("[{tag}] {:08x}: {msg}", case.words[0]));
                    continue;
                }
            };
            if ours != *q {
                e.1 += 1;
                let text = report(case, insn_pc, q, &ours);
                let words: Vec<String> = case
                    .words
                    .iter()
                    .map(|w| format!("{w:08x} {}", disasm(*w, insn_pc)))
                    .collect();
                let line = format!(
                    "{}: {}",
                    words.join("; "),
                    differing_fields(q, &ours).join(", ")
                );
                match KNOWN_BUGS.iter().find(|(m, v, _)| case.words[0] & m == *v) {
                    Some((_, _, why)) => known.push(format!("{line}  [known: {why}]")),
                    None => {
                        summary.push(line);
                        failures.push(format!("[{tag}] mismatch:\n{text}"));
                    }
                }
            }
        }
    }
    eprintln!(
        "random_diff: {count} cases in {:.1}s; per class (cases, mismatches): {per_class:?}",
        started.elapsed().as_secs_f64()
    );
    if !known.is_empty() {
        eprintln!(
            "{} expected failures (known bugs, not counted):",
            known.len()
        );
        for k in known.iter().take(10) {
            eprintln!("  EXPECTED FAILURE {k}");
        }
    }
    let show = env_u64("VMC_RANDOM_SHOW").unwrap_or(25) as usize;
    for f in failures.iter().take(show) {
        eprintln!("MISMATCH {f}");
    }
    if failures.len() > show {
        eprintln!(
            "... {} more mismatches not shown (VMC_RANDOM_SHOW=N)",
            failures.len() - show
        );
    }
    if !summary.is_empty() {
        eprintln!("summary of mismatches (word, disassembly: differing fields):");
        for l in summary
            .iter()
            .take(env_u64("VMC_RANDOM_SUMMARY").unwrap_or(200) as usize)
        {
            eprintln!("  {l}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} random cases differ from qemu (seed {seed:#x})",
        failures.len()
    );
}
