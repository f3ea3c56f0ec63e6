//! Work in progress.

use super::{Ctx, TResult, Undefined};

/// Translates one instruction of this class.
pub fn translate(_c: &mut Ctx) -> TResult {
    Err(Undefined)
}
