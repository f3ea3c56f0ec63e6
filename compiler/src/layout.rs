//! The guest memory layout and Cranelift setup shared by the runtime (which builds the
//! address space and runs JIT code) and the AOT compiler (whose images bake these values in:
//! an image translated for one layout must never run in another, so images record them).

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};

use crate::lower::LowerConfig;

/// Size of the guest address space: 64 GiB, enough for any static program.
pub const GUEST_SPACE: u64 = 1 << 36;
/// Guest page size.
pub const PAGE: u64 = 4096;
/// Load address chosen for position-independent (static-pie) executables.
pub const PIE_BASE: u64 = 0x5_5555_0000;
/// Top of the initial stack.
pub const STACK_TOP: u64 = 0xf_ff00_0000;

/// Page permission bits (guest view).
pub mod perm {
    /// Readable.
    pub const R: u8 = 1;
    /// Writable.
    pub const W: u8 = 2;
    /// Executable.
    pub const X: u8 = 4;
    /// Holds code that has been translated (writes must invalidate it).
    pub const CODE: u8 = 8;
    /// Mapped at all (a PROT_NONE mapping is mapped but inaccessible).
    pub const MAPPED: u8 = 16;
    /// Derived: this page and the next are readable (inline loads need no crossing check).
    pub const SPAN_R: u8 = 32;
    /// Derived: this page and the next are writable and neither holds translated code.
    pub const SPAN_W: u8 = 64;
    /// A page of a file mapping wholly beyond the end of its file: every access raises
    /// SIGBUS. Such a page never has R, W or X (so every check refuses it) and is
    /// inaccessible on the host; translated code never tests this bit.
    pub const UNBACKED: u8 = 128;
}

/// The lowering configuration matching this layout.
pub fn lower_config() -> LowerConfig {
    LowerConfig {
        guest_space: GUEST_SPACE,
        perm_read: perm::R,
        perm_write: perm::W,
        perm_code: perm::CODE,
        span_read: perm::SPAN_R,
        span_write: perm::SPAN_W,
    }
}

/// Cranelift for this host: `optimize` selects `opt_level=speed` (else `none`). Frame
/// pointers are kept because Cranelift's x64 tail calls (region chaining) need them.
pub fn host_isa(optimize: bool) -> Result<OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| e.to_string());
    set(
        &mut flags,
        "opt_level",
        if optimize { "speed" } else { "none" },
    )?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verify)?;
    set(&mut flags, "unwind_info", "false")?;
    set(&mut flags, "preserve_frame_pointers", "true")?;
    // r15 holds the JIT context everywhere (lower::Lower::ctx).
    set(&mut flags, "enable_pinned_reg", "true")?;
    cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())
}
