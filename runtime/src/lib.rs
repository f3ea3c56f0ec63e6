//! vmc-runtime: runs AArch64 Linux programs in user mode.
//!
//! [`loader`] maps a static ELF into a [`memory::GuestMemory`] sandbox and builds the initial
//! stack; [`exec`] runs it block by block; [`syscalls`] emulates the Linux system calls.

pub mod aot;
pub mod exec;
pub mod jit;
pub mod loader;
pub mod memory;
pub mod process;
pub mod profile;
pub mod syscalls;
pub mod tiers;

pub use exec::{ExecOptions, Termination, Timing};
pub use process::{Process, ProcessConfig};
