//! Placeholder module, filled in by its owner.

use yaxpeax_arm::armv8::a64::Opcode;

use super::Handler;

/// Handlers of this class, or `None` when the opcode is not one of them.
pub fn handler_for(_op: &Opcode) -> Option<Handler> {
    None
}
pub const FPCR_MASK: u64 = 0x07ff_9f00;
/// Writable FPSR bits (cumulative exception flags and QC).
pub const FPSR_MASK: u64 = 0x0800_009f;
