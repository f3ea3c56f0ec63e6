//! The dispatcher: finds or translates the block at the guest PC, runs it on the reference
//! interpreter (tier 0), and turns block exits into system calls, signals or exit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmc_compiler::a64;
use vmc_compiler::interp::{run_block, Exit};
use vmc_compiler::ir::{Block, TrapKind};
use vmc_compiler::mem::Fault;

use crate::process::Process;
use crate::syscalls::{self, SysResult};

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// It called exit/exit_group with this status.
    Exited(i32),
    /// It was killed by this signal; `reason` says why (for the one-line message).
    Signaled {
        /// Signal number (Linux numbering, same on AArch64 and x86-64).
        signal: i32,
        /// What happened, e.g. "segmentation fault at pc 0x400123 accessing 0x0".
        reason: String,
    },
}

impl Termination {
    /// The exit status a shell would report: the status, or 128 + signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Termination::Exited(c) => *c,
            Termination::Signaled { signal, .. } => 128 + signal,
        }
    }
}

/// Options of the execution loop.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Print every executed instruction to stderr.
    pub trace: bool,
}

/// A fast hasher for guest addresses (multiplicative; keys are 4-byte aligned PCs).
#[derive(Default, Clone, Copy)]
pub struct PcHasher(u64);

impl std::hash::Hasher for PcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 2).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Entries of the direct-mapped lookup cache in front of the block map.
const JUMP_CACHE: usize = 4096;

/// Translated blocks by guest PC, with a direct-mapped jump cache in front (as QEMU's
/// `tb_jmp_cache`): most lookups are one index and one compare.
pub struct CodeCache {
    blocks: HashMap<u64, Arc<Block>, std::hash::BuildHasherDefault<PcHasher>>,
    jump: Vec<Option<Arc<Block>>>,
}

impl Default for CodeCache {
    fn default() -> Self {
        CodeCache { blocks: HashMap::default(), jump: vec![None; JUMP_CACHE] }
    }
}

impl CodeCache {
    fn slot(pc: u64) -> usize {
        (pc >> 2) as usize % JUMP_CACHE
    }

    /// The block at `pc`, translating it with `translate` on a miss.
    pub fn get_or_insert_with(&mut self, pc: u64, translate: impl FnOnce() -> Block) -> &Block {
        let slot = Self::slot(pc);
        let hit = matches!(&self.jump[slot], Some(b) if b.pc == pc);
        if !hit {
            let b = self.blocks.entry(pc).or_insert_with(|| Arc::new(translate())).clone();
            self.jump[slot] = Some(b);
        }
        self.jump[slot].as_deref().expect("slot filled above")
    }

    /// Drops every block overlapping `[start, end)`; returns how many.
    pub fn invalidate(&mut self, start: u64, end: u64) -> usize {
        self.jump.iter_mut().for_each(|j| *j = None);
        let before = self.blocks.len();
        self.blocks.retain(|_, b| {
            let r = b.guest_range();
            r.end <= start || r.start >= end
        });
        before - self.blocks.len()
    }

    /// Number of cached blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// Wall time split of a run.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Total time in the run loop.
    pub total: Duration,
    /// Time translating guest code to IR.
    pub translate: Duration,
    /// Time in system calls.
    pub syscalls: Duration,
}

/// Linux signal numbers used here.
pub mod sig {
    /// Illegal instruction.
    pub const SIGILL: i32 = 4;
    /// Breakpoint/trace trap.
    pub const SIGTRAP: i32 = 5;
    /// Bus error (misaligned atomic).
    pub const SIGBUS: i32 = 7;
    /// Invalid memory reference.
    pub const SIGSEGV: i32 = 11;
}

impl Process {
    /// Discards translations of a guest range whose code changed or went away.
    pub fn invalidate(&mut self, addr: u64, len: u64) {
        self.pending_invalidations.push((addr, addr.saturating_add(len)));
    }

    /// Runs the guest until it exits or is killed.
    pub fn run(&mut self, opts: &ExecOptions, timing: &mut Timing) -> Termination {
        let start = Instant::now();
        let mut cache = CodeCache::default();
        let mut temps = Vec::new();
        let limit = if opts.trace { 1 } else { a64::MAX_BLOCK_INSNS };
        let result = loop {
            for (s, e) in std::mem::take(&mut self.pending_invalidations) {
                self.drop_translations(&mut cache, s, e);
            }
            if let Some((s, e)) = self.mem.code_written.take() {
                self.drop_translations(&mut cache, s, e);
            }
            let pc = self.cpu.pc;
            let (mem, counters) = (&mut self.mem, &mut self.counters);
            let block = cache.get_or_insert_with(pc, || {
                let t0 = Instant::now();
                let b = a64::translate_block_limit(&mut |a| mem.fetch(a), pc, limit);
                mem.mark_code(b.pc, 4 * b.guest_insns as u64);
                counters.blocks_translated += 1;
                counters.insns_translated += b.guest_insns as u64;
                timing.translate += t0.elapsed();
                b
            });
            if opts.trace {
                self.trace(block);
            }
            self.counters.blocks_executed += 1;
            self.counters.insns_executed += block.guest_insns as u64;
            match run_block(block, &mut self.cpu, &mut self.mem, &mut temps) {
                Exit::Continue(_) => {}
                Exit::Syscall => {
                    let t0 = Instant::now();
                    let r = syscalls::dispatch(self);
                    timing.syscalls += t0.elapsed();
                    match r {
                        SysResult::Ret(v) => self.cpu.x[0] = v as u64,
                        SysResult::Exit(code) => break Termination::Exited(code),
                        SysResult::Kill(signal) => {
                            break Termination::Signaled { signal, reason: format!("killed by signal {signal}") }
                        }
                    }
                }
                Exit::Fault { pc, fault } => break fault_termination(pc, fault),
                Exit::Trap { kind, pc, insn } => break trap_termination(kind, pc, insn),
            }
        };
        timing.total += start.elapsed();
        result
    }

    fn drop_translations(&mut self, cache: &mut CodeCache, start: u64, end: u64) {
        // Blocks never cross a page, so page granularity is exact for the CODE marks.
        let (start, end) = (crate::memory::page_down(start), crate::memory::page_up(end));
        let n = cache.invalidate(start, end);
        if n > 0 {
            self.counters.invalidations += n as u64;
            self.mem.clear_code(start, end - start);
        }
    }

    fn trace(&self, block: &Block) {
        for op in &block.ops {
            if let vmc_compiler::ir::Op::Insn { pc, insn } = op {
                eprintln!("[trace] {pc:#012x}: {insn:08x}  {}", a64::disasm(*insn, *pc));
            }
        }
    }
}

/// The signal and message for a faulting instruction.
pub fn fault_termination(pc: u64, fault: Fault) -> Termination {
    match fault {
        Fault::Segv { addr, write } => Termination::Signaled {
            signal: sig::SIGSEGV,
            reason: format!(
                "segmentation fault: {} of address {addr:#x} at pc {pc:#x}",
                if write { "write" } else { "read" }
            ),
        },
        Fault::Bus { addr } => Termination::Signaled {
            signal: sig::SIGBUS,
            reason: format!("bus error: misaligned atomic access to {addr:#x} at pc {pc:#x}"),
        },
        Fault::Undefined { insn } => trap_termination(TrapKind::Undefined, pc, insn),
    }
}

/// The signal and message for a trapping instruction.
pub fn trap_termination(kind: TrapKind, pc: u64, insn: u32) -> Termination {
    match kind {
        TrapKind::Undefined => Termination::Signaled {
            signal: sig::SIGILL,
            reason: format!("illegal instruction {insn:08x} at pc {pc:#x}: {}", a64::undefined_reason(insn)),
        },
        TrapKind::PermanentlyUndefined => Termination::Signaled {
            signal: sig::SIGILL,
            reason: format!("illegal instruction {insn:08x} (udf) at pc {pc:#x}"),
        },
        TrapKind::Breakpoint => Termination::Signaled {
            signal: sig::SIGTRAP,
            reason: format!("breakpoint (brk) at pc {pc:#x}"),
        },
        TrapKind::FetchFault => Termination::Signaled {
            signal: sig::SIGSEGV,
            reason: format!("segmentation fault: instruction fetch from unmapped or non-executable address {pc:#x}"),
        },
    }
}
