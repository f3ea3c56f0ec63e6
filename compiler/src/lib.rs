//! vmc-compiler: the guest IR, the A64 frontend, and the reference interpreter.
//!
//! Pipeline: guest bytes → [`a64::translate_block`] → [`ir::Block`] → [`interp::run_block`].
//! The Cranelift lowering (JIT and AOT tiers) will consume the same IR.

pub mod a64;
pub mod aot;
pub mod interp;
pub mod ir;
pub mod layout;
pub mod lower;
pub mod mem;
pub mod state;

pub use interp::{run_block, Exit};
pub use ir::Block;
pub use mem::{Fault, Memory};
pub use state::CpuState;
