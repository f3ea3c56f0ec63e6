//! System instructions (ARM ARM C4.1.66): MRS/MSR of the registers EL0 may use, hints (NOP,
//! YIELD, BTI, and the pointer-authentication hints, which execute as NOP because PAC is not
//! advertised), barriers, and DC ZVA. Cache maintenance by VA is a no-op here.

use super::{Ctx, TResult, Undefined};
use crate::ir::{Helper, Reg};
use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// Bytes zeroed by `DC ZVA`, as advertised in DCZID_EL0 (log2(words) = 4).
pub const DC_ZVA_BYTES: u64 = 64;
/// Frequency of the generic timer reported in CNTFRQ_EL0 (1 GHz: CNTVCT counts nanoseconds).
pub const CNTFRQ: u64 = 1_000_000_000;

/// Where a system register's value comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// An architectural register held in [`CpuState`], readable and writable.
    State(Reg),
    /// A read-only constant.
    Const(u64),
    /// The virtual counter, read from the host's monotonic clock.
    Counter,
}

/// The system registers EL0 may access: (name, op0, op1, CRn, CRm, op2, source).
const SYSREGS: &[(&str, u32, u32, u32, u32, u32, Source)] = &[
    ("NZCV", 3, 3, 4, 2, 0, Source::State(Reg::Nzcv)),
    ("FPCR", 3, 3, 4, 4, 0, Source::State(Reg::Fpcr)),
    ("FPSR", 3, 3, 4, 4, 1, Source::State(Reg::Fpsr)),
    ("TPIDR_EL0", 3, 3, 13, 0, 2, Source::State(Reg::Tpidr)),
    ("TPIDRRO_EL0", 3, 3, 13, 0, 3, Source::Const(0)),
    // 64-byte cache lines (IminLine = DminLine = 4), as on Cortex-A57.
    ("CTR_EL0", 3, 3, 0, 0, 1, Source::Const(0x8444_c004)),
    ("DCZID_EL0", 3, 3, 0, 0, 7, Source::Const(4)),
    // Linux emulates MIDR_EL1 reads for user space; report a Cortex-A57 r1p0.
    ("MIDR_EL1", 3, 0, 0, 0, 0, Source::Const(0x411f_d070)),
    ("MPIDR_EL1", 3, 0, 0, 0, 5, Source::Const(0x8000_0000)),
    ("CNTFRQ_EL0", 3, 3, 14, 0, 0, Source::Const(CNTFRQ)),
    ("CNTVCT_EL0", 3, 3, 14, 0, 2, Source::Counter),
    ("CNTVCTSS_EL0", 3, 3, 14, 0, 6, Source::Counter),
];

/// Translates one system instruction.
pub fn translate(c: &mut Ctx) -> TResult {
    // Hint space (NOP, YIELD, WFE, WFI, SEV, BTI, PAC hints ...): no effect here.
    if c.insn & 0xffff_f01f == 0xd503_201f {
        return Ok(());
    }
    // Barriers (CLREX is an exclusive-monitor op: see atomic.rs), DSB/DMB/ISB/SB/SSBB.
    if c.insn & 0xffff_f01f == 0xd503_301f && c.f(7, 5) != 0b010 {
        return Ok(());
    }
    if c.f(31, 22) != 0b1101010100 {
        return Err(Undefined);
    }
    let (load, op0) = (c.bit(21), c.f(20, 19));
    let (op1, crn, crm, op2, rt) = (c.f(18, 16), c.f(15, 12), c.f(11, 8), c.f(7, 5), c.f(4, 0));
    match op0 {
        0b01 if !load => sys(c, op1, crn, crm, op2),
        0b10 | 0b11 => {
            let (_, _, _, _, _, _, source) = *SYSREGS
                .iter()
                .find(|r| (r.1, r.2, r.3, r.4, r.5) == (op0, op1, crn, crm, op2))
                .ok_or(Undefined)?;
            match (source, load) {
                (Source::State(reg), true) => {
                    let v = c.b.get(reg);
                    c.set_x(rt, v);
                }
                (Source::State(reg), false) => {
                    let v = c.x(rt);
                    c.b.set(reg, v);
                }
                (Source::Const(k), true) => {
                    let v = c.b.konst(k);
                    c.set_x(rt, v);
                }
                (Source::Counter, true) => c.call(&READ_COUNTER),
                (_, false) => return Err(Undefined),
            }
            Ok(())
        }
        _ => Err(Undefined),
    }
}

/// SYS: DC ZVA zeroes a block; cache maintenance by VA (DC CVAU/CVAC/CIVAC/CVAP, IC IVAU)
/// needs no work for a sequentially consistent, coherent guest memory.
fn sys(c: &mut Ctx, op1: u32, crn: u32, crm: u32, op2: u32) -> TResult {
    match (op1, crn, crm, op2) {
        (3, 7, 4, 1) => {
            c.call(&DC_ZVA);
            Ok(())
        }
        (3, 7, 5, 1)
        | (3, 7, 11, 1)
        | (3, 7, 10, 1)
        | (3, 7, 14, 1)
        | (3, 7, 12, 1)
        | (3, 7, 13, 1) => Ok(()),
        _ => Err(Undefined),
    }
}

static DC_ZVA: Helper = Helper {
    name: "dc_zva",
    func: dc_zva,
    gpr: true,
};

fn dc_zva(st: &mut CpuState, mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let rt = insn & 31;
    let addr = if rt == 31 { 0 } else { st.x[rt as usize] } & !(DC_ZVA_BYTES - 1);
    mem.write_bytes(addr, &[0u8; DC_ZVA_BYTES as usize])
}

static READ_COUNTER: Helper = Helper {
    name: "read_cntvct",
    func: read_counter,
    gpr: true,
};

fn read_counter(st: &mut CpuState, _mem: &mut dyn Memory, insn: u32) -> Result<(), Fault> {
    let rt = insn & 31;
    if rt != 31 {
        st.x[rt as usize] = monotonic_ns();
    }
    Ok(())
}

/// Host monotonic time in nanoseconds.
fn monotonic_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    // Offset so the guest never sees a counter near zero.
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1_000_000_000
}

/// The helpers of this module (for the registry of [`super::helpers`]).
pub(super) static HELPERS: &[&Helper] = &[&DC_ZVA, &READ_COUNTER];
