//! The guest CPU state shared by every tier (interpreter, JIT, AOT).
//!
//! Its layout is an ABI: translated code addresses fields by offset and AOT images record
//! [`CPU_STATE_ABI_VERSION`]. Change a field and the version must change with it.

/// Version of the contract between translated code and the runtime: the [`CpuState`]
/// layout, the page-table bits of `layout::perm`, how loads fault, how code finds the state
/// (the pinned register holds a `lower::Frame`) and the regions' signature (the host return
/// address parameter); recorded in AOT images.
pub const CPU_STATE_ABI_VERSION: u32 = 5;

/// Index of SP in [`CpuState::x`] (register number 31 in "SP" contexts).
pub const SP: usize = 31;

/// AArch64 user-mode register state.
#[repr(C, align(16))]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CpuState {
    /// X0..X30, and SP at index 31.
    pub x: [u64; 32],
    /// Program counter of the next instruction to execute.
    pub pc: u64,
    /// Condition flags in the architectural position: N=bit 31, Z=30, C=29, V=28.
    pub nzcv: u64,
    /// Floating-point control register (rounding mode, FZ, DN, AHP).
    pub fpcr: u64,
    /// Floating-point status register (cumulative exception flags, QC).
    pub fpsr: u64,
    /// User read/write thread pointer (TPIDR_EL0).
    pub tpidr_el0: u64,
    /// Address of the exclusive-monitor reservation.
    pub excl_addr: u64,
    /// Size in bytes of the reservation; 0 when the monitor is open.
    pub excl_size: u64,
    /// Values loaded by the last load-exclusive (second word for pairs).
    pub excl_val: [u64; 2],
    /// Keeps `v` 16-byte aligned at a fixed offset.
    pub _pad: u64,
    /// SIMD&FP registers V0..V31; lane 0 is in the low bits.
    pub v: [u128; 32],
}

impl CpuState {
    /// The N, Z, C, V flags as a 4-bit value (N in bit 3).
    pub fn flags(&self) -> u8 {
        ((self.nzcv >> 28) & 0xf) as u8
    }
}

impl std::fmt::Debug for CpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pc  {:016x}  nzcv {:04b}", self.pc, self.flags())?;
        for (i, chunk) in self.x.chunks(4).enumerate() {
            for (j, v) in chunk.iter().enumerate() {
                let r = i * 4 + j;
                let name = if r == SP {
                    "sp ".to_string()
                } else {
                    format!("x{r:<2}")
                };
                write!(f, "{name} {v:016x}  ")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
