//! Placeholder module, filled in by its owner.

use yaxpeax_arm::armv8::a64::Opcode;

use super::Handler;

/// Handlers of this class, or `None` when the opcode is not one of them.
pub fn handler_for(_op: &Opcode) -> Option<Handler> {
    None
}
