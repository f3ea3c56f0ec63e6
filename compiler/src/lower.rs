//! Lowering of guest IR to Cranelift IR, shared by the JIT tiers (and later AOT).
//!
//! A [`Region`] (one IR block for the baseline tier; a guest function or hot loop of many
//! blocks for the optimizing tier) becomes one Cranelift function `fn() -> i64` with the
//! `tail` calling convention (entered at its first block, or, for an AOT region with
//! secondary entries, at the block of `cpu.pc`). It finds everything through Cranelift's
//! pinned register (r15), which holds the address of the run's [`Frame`]: the guest
//! [`CpuState`] at offset 0 and the [`JitContext`] at [`CTX_OFFSET`], so neither pointer takes
//! an allocatable register.
//!
//! - Guest X registers, SP and NZCV live in Cranelift variables (SSA) inside the region: loaded
//!   once at entry; each IR block stores the registers it set before its terminator (and on
//!   its exit and fault paths), so no register stays live just to be written back. Helper
//!   calls that declare `gpr` spill before and reload after; the others (vector FP/SIMD) leave
//!   them in host registers. Scalar V registers written in a block stay in host registers
//!   until the block ends or something reads the CPU state (`Lower::vdirty`).
//! - Direct branches to blocks of the region are Cranelift jumps; exits to other known guest
//!   addresses tail-call the target translation through a chain slot when the runtime has one
//!   (patchable chaining without returning to the dispatcher), else return [`exit::CONTINUE`].
//! - Return-address prediction ([`Env::host_calls`]): a guest call that leaves the region is
//!   a host call of the callee's translation, passing the return address as the region's
//!   parameter; the callee's `RET` to that address is a host return (predicted by the host's
//!   return stack), and the caller goes on at its return site. Any other return takes the
//!   indirect path.
//! - NZCV is computed lazily where it can be: a condition read right after the compare or
//!   flag-setting op that produced it becomes one host compare of the original operands.
//! - An indirect jump through a jump table whose contents are fixed ([`Env::jump_table`]) is
//!   folded into a host jump table on the entry's index ([`switch`]).
//! - Guest memory accesses are inline: range check, page-permission check, host access at
//!   `mem_base + addr`; anything unusual (fault, page crossing, code page written) goes to a
//!   runtime slow path that implements the interpreter's exact semantics.

use std::collections::{HashMap, HashSet};
use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    self, types, AbiParam, Function, InstBuilder, MemFlagsData, Signature, Type, UserFuncName,
    Value,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use crate::ir::{BinOp, Block, BranchKind, Helper, Op, OpKind, Reg, Temp, TrapKind, UnOp, Width};
use crate::state::CpuState;

mod fp;
mod switch;

pub use switch::{table_base, TableData, MAX_ENTRIES as MAX_TABLE_ENTRIES};

/// Values returned by translated code.
pub mod exit {
    /// Continue at `cpu.pc` (set by the code).
    pub const CONTINUE: i64 = 0;
    /// Perform the system call in x8; `cpu.pc` is the next instruction.
    pub const SYSCALL: i64 = 1;
    /// The instruction at `cpu.pc` faulted; details in the context.
    pub const FAULT: i64 = 2;
    /// The instruction at `cpu.pc` trapped; kind and word in the context.
    pub const TRAP: i64 = 3;
    /// A load with host-fault semantics ([`super::Env::host_fault_loads`]) refused: the guest
    /// address is in [`super::Escape::fault_addr`], the CPU state is not precise (as after a
    /// load the host MMU refused).
    pub const HOST_FAULT: i64 = -1;
}

/// Kinds of lazily recorded flags (how NZCV would be computed from two operands).
mod lazy {
    /// NZCV is the packed word itself.
    pub const PACKED: i64 = 0;
    /// Flags of a - b, 64-bit.
    pub const SUB64: i64 = 1;
    /// Flags of a - b, 32-bit.
    pub const SUB32: i64 = 2;
    /// Flags of a + b, 64-bit.
    pub const ADD64: i64 = 3;
    /// Flags of a + b, 32-bit.
    pub const ADD32: i64 = 4;
    /// N and Z of a, C = V = 0, 64-bit.
    pub const LOGIC64: i64 = 5;
    /// N and Z of a, C = V = 0, 32-bit.
    pub const LOGIC32: i64 = 6;
}

/// Entries of the indirect-branch table (a power of two).
pub const INDIRECT_ENTRIES: u64 = 1 << 16;

/// Slow-path result meaning "the store hit a page holding translated code".
pub const STORE_HIT_CODE: i64 = 2;

/// Run-time context shared between translated code and the runtime (`#[repr(C)]`: the
/// lowering addresses its fields by offset).
#[repr(C)]
#[derive(Debug, Default)]
pub struct JitContext {
    /// Host address of guest address 0.
    pub mem_base: u64,
    /// Host address of the per-page permission table.
    pub perms: u64,
    /// Host address of the chain-slot table (one code pointer or 0 per slot).
    pub chain: u64,
    /// Opaque pointer for the runtime's slow paths.
    pub runtime: u64,
    /// Set to 1 by the `load` slow path when the access faulted.
    pub status: u64,
    /// Host address of the indirect-branch table: [`INDIRECT_ENTRIES`] pairs
    /// (guest pc, host code) indexed by `(pc >> 2) % INDIRECT_ENTRIES`.
    pub indirect: u64,
    /// Trap kind code (see [`trap_code`]) when code returns [`exit::TRAP`].
    pub trap_kind: u64,
    /// Trapping instruction word.
    pub trap_insn: u64,
    /// Result of the last call to an entry point that preserves all registers
    /// ([`Callee::preserves_all`]).
    pub ret: u64,
    /// Lowest host stack pointer at which translated code still makes a guest call a host
    /// call (see the module doc); set by the runtime's entry, below it calls are tail calls.
    pub stack_limit: u64,
    /// Host address of the running AOT image's import table (0 without one): the addresses
    /// of the runtime entry points and helpers its code calls, in the order of the image's
    /// import list. Image code loads them from here, so it needs no relocation.
    pub imports: u64,
}

/// What translated code runs against: the guest state and the run-time context, side by side
/// at a fixed distance (the pinned register holds the frame's address).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Frame {
    /// The guest registers.
    pub cpu: CpuState,
    /// The runtime's tables and result slots.
    pub ctx: JitContext,
    /// The runtime's escape hatch for host faults of translated code (never read by it).
    pub escape: Escape,
}

/// Per guest thread, what the runtime's host-fault handler needs to stop translated code
/// that this frame runs (it finds the frame in the pinned register of the faulting code).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Escape {
    /// Host stack pointer to unwind to (set by the runtime's entry, 0 outside translated code).
    pub sp: u64,
    /// The guest reservation, `[start, end)` host addresses: faults elsewhere are not the guest's.
    pub sandbox: [u64; 2],
    /// Guest address of the last host fault.
    pub fault_addr: u64,
}

/// Offset of [`Frame::ctx`] from the frame (and so from the CPU state).
pub const CTX_OFFSET: i32 = offset_of!(Frame, ctx) as i32;

/// Offset of [`JitContext::imports`] from the frame (where image code finds its import table).
pub const IMPORTS_OFFSET: i32 = CTX_OFFSET + offset_of!(JitContext, imports) as i32;

/// Numeric code of a trap kind in [`JitContext::trap_kind`].
pub fn trap_code(kind: TrapKind) -> u64 {
    match kind {
        TrapKind::Undefined => 0,
        TrapKind::Breakpoint => 1,
        TrapKind::PermanentlyUndefined => 2,
        TrapKind::FetchFault => 3,
    }
}

/// Inverse of [`trap_code`].
pub fn trap_from_code(code: u64) -> TrapKind {
    match code {
        1 => TrapKind::Breakpoint,
        2 => TrapKind::PermanentlyUndefined,
        3 => TrapKind::FetchFault,
        _ => TrapKind::Undefined,
    }
}

/// Runtime entry points the generated code calls (all `extern "C"`, returning i64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    /// `load(ctx, addr, size) -> value`; on a fault it records it and sets
    /// [`JitContext::status`] to 1.
    Load,
    /// `store(ctx, addr, size, value) -> 0 | FAULT(1) | STORE_HIT_CODE`.
    Store,
    /// `load_vec(ctx, cpu, addr, size, reg) -> 0 | 1`.
    LoadVec,
    /// `store_vec(ctx, cpu, addr, size, reg) -> 0 | 1 | STORE_HIT_CODE`.
    StoreVec,
    /// `helper(ctx, cpu, helper, insn) -> 0 | 1 (fault)`.
    Helper,
    /// The same helper called from the cold path of an inline fast path (an FP operation
    /// whose result needs the exact FPSR flags): with `preserve_all`, so the values that
    /// the hot path keeps across it stay in host registers.
    HelperCold,
    /// `profile_indirect(ctx, site, target, kind) -> 0`: records that the indirect branch at
    /// guest address `site` went to `target` (kind: 0 jump, 1 call, 2 return). Emitted only
    /// when [`Env::profiling`] says so.
    ProfileIndirect,
}

impl Callee {
    /// Whether the entry point preserves every host register and returns its result in
    /// [`JitContext::ret`] (Cranelift's `preserve_all` convention). The memory slow paths do:
    /// they sit on cold paths that rejoin hot loops, and a call clobbering the caller-saved
    /// registers would force every value live across the loop into callee-saved registers
    /// or stack slots. Helpers the hot path calls keep the C convention; the cold fallbacks
    /// of inline FP paths ([`Callee::HelperCold`]) preserve all.
    pub fn preserves_all(self) -> bool {
        !matches!(self, Callee::Helper)
    }

    fn params(self) -> usize {
        match self {
            Callee::Load => 3,
            Callee::Store | Callee::Helper | Callee::HelperCold | Callee::ProfileIndirect => 4,
            Callee::LoadVec | Callee::StoreVec => 5,
        }
    }
}

/// What the lowering needs from its user (the JIT or the AOT compiler).
pub trait Env {
    /// The address of a runtime entry point, as a value in the function being built.
    fn callee(&mut self, b: &mut FunctionBuilder, c: Callee) -> Value;
    /// The address of a helper, as a value in the function being built.
    fn helper(&mut self, b: &mut FunctionBuilder, h: &'static Helper) -> Value;
    /// A chain slot for an exit to `target`, or `None` to always return to the dispatcher.
    fn chain_slot(&mut self, target: u64) -> Option<u32>;
    /// Guest addresses the indirect branch at `branch_pc` is known to reach (recovered jump
    /// tables, profiled targets). Those inside the region become direct host branches (a
    /// switch on the target address); any other target still leaves through the
    /// indirect-branch table.
    fn indirect_targets(&mut self, _branch_pc: u64, _kind: BranchKind) -> Vec<u64> {
        Vec::new()
    }
    /// The fixed contents of the jump table the indirect jump at `branch_pc` reads, when the
    /// code may rely on them: the table is in read-only memory and among the region's guest
    /// ranges, so that changing it invalidates the code. Its switch is then folded (see
    /// [`switch`]).
    fn jump_table(&mut self, _branch_pc: u64) -> Option<TableData> {
        None
    }
    /// Host address of the execution counters of the block at `pc` (two `u64`: times entered,
    /// times its conditional branch was taken), when recording a profile.
    fn block_counter(&mut self, _pc: u64) -> Option<u64> {
        None
    }
    /// Whether indirect branches report their targets ([`Callee::ProfileIndirect`]).
    fn profiling(&self) -> bool {
        false
    }
    /// Return-address prediction: whether a guest call that leaves the region is a host call
    /// of the callee's translation whose matching `RET` is a host return (see the module
    /// doc). Off, calls are tail calls like jumps, returns look their target up, and the
    /// code costs nothing for it (it passes 0 as the region parameter and never compares
    /// it): code made one way must not call code made the other way.
    fn host_calls(&self) -> bool {
        false
    }
    /// Whether the block at `pc` is cold (never ran in the profile): its code is laid out
    /// after the hot code of the region.
    fn is_cold(&self, _pc: u64) -> bool {
        false
    }
    /// Whether guest loads check only the address-space bound and let the host MMU refuse
    /// unreadable pages (the runtime mirrors guest read permission in host protections and
    /// turns such a host fault into the guest's death by SIGSEGV). Faster, but the fault is
    /// not precise (guest registers are not recoverable), so the runtime uses it only while
    /// the guest has no SIGSEGV handler; otherwise loads check the page table.
    fn host_fault_loads(&self) -> bool {
        false
    }
}

/// Lowering parameters.
#[derive(Clone, Copy, Debug)]
pub struct LowerConfig {
    /// Size of the guest address space (accesses at or above it fault).
    pub guest_space: u64,
    /// Page-table bits (must match the runtime's): readable.
    pub perm_read: u8,
    /// Writable.
    pub perm_write: u8,
    /// Holds translated code (stores must report it).
    pub perm_code: u8,
    /// Derived bit: this page and the next are readable.
    pub span_read: u8,
    /// Derived bit: this page and the next are writable and hold no translated code.
    pub span_write: u8,
}

/// A translation unit: IR blocks, the first being the entry.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    /// The blocks; `blocks[0]` is entered first.
    pub blocks: &'a [&'a Block],
    /// Whether branches between the region's blocks stay inside the translation. The
    /// baseline tier says no, so every iteration of a loop passes the dispatcher, which
    /// counts it and can promote the loop to the optimizing tier.
    pub loops: bool,
    /// Further guest addresses of blocks of the region (not `blocks[0]`) where it may be
    /// entered from outside, e.g. the return sites of its calls (needs `loops`). Every entry
    /// finds its address in `cpu.pc` (the runtime and chained exits set it before entering),
    /// so the function dispatches on it: one translation of a whole function instead of one
    /// per piece between calls.
    pub entries: &'a [u64],
}

/// The signature of every translated region: `fn(expect) -> exit code`, where `expect` is
/// the guest return address whose `RET` returns to the host caller (translated guest calls
/// are host calls, see the module doc; the runtime's entry passes 0, which no call site has).
pub fn region_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

fn callee_signature(c: Callee) -> Signature {
    let mut sig = Signature::new(if c.preserves_all() {
        CallConv::PreserveAll
    } else {
        CallConv::SystemV
    });
    for _ in 0..c.params() {
        sig.params.push(AbiParam::new(types::I64));
    }
    if !c.preserves_all() {
        sig.returns.push(AbiParam::new(types::I64));
    }
    sig
}

/// Number of cached registers: X0..X30, SP (31), NZCV (32).
const NREGS: usize = 33;
const NZCV: usize = 32;

fn reg_offset(r: usize) -> i32 {
    if r == NZCV {
        offset_of!(CpuState, nzcv) as i32
    } else {
        (offset_of!(CpuState, x) + 8 * r) as i32
    }
}

fn vreg_offset(r: u8) -> i32 {
    (offset_of!(CpuState, v) + 16 * r as usize) as i32
}

/// Most instructions an indirect branch's in-region targets may span for a jump table (else
/// a compare tree): 4 KiB of guest code, a 16 KiB host table at most.
const MAX_DENSE_SWITCH: u64 = 4096;

/// How the current NZCV value was produced, for lazy condition evaluation.
#[derive(Clone, Copy, Debug)]
enum Flags {
    /// SUBS/CMP of a and b at a width (values already reduced to the width).
    Sub { a: Value, b: Value, r: Value },
    /// ADDS/CMN with no carry in: result r.
    Add { r: Value },
    /// ANDS/TST: result r; C = V = 0.
    Logic { r: Value },
}

/// A cold exit block whose body is emitted after the current block is terminated (the
/// frontend cannot leave a block half-filled).
#[derive(Clone, Copy, Debug)]
enum Deferred {
    /// Jump to the region's shared fault exit with pc = this.
    Fault(u64),
    /// Leave the region for this guest address.
    Exit(u64),
    /// Return this code with the state already in memory.
    Return(i64),
    /// An edge into a loop ([`loops`]): store the stale registers, go to this block.
    Edge(u64),
}

/// A deferred block and the lowering state where it branches off.
struct Pending {
    blk: ir::Block,
    what: Deferred,
    fk_static: Option<i64>,
    dirty: [bool; NREGS],
    vcache: [Option<fp::VCached>; 32],
    vdirty: u32,
}

/// What a temporary was defined as, for pattern matching (SUBS = AddFlags(a, Not(b), 1)).
#[derive(Clone, Copy, Debug)]
enum TempDef {
    Const(u64),
    Not(Width, Temp),
    Other,
}

struct Lower<'a, 'f, E: Env> {
    b: FunctionBuilder<'f>,
    env: &'a mut E,
    cfg: LowerConfig,
    vars: [Variable; NREGS],
    tracked: [bool; NREGS],
    written: [bool; NREGS],
    /// Registers written straight to the CPU state where set (no loop of the region sets
    /// them) and loaded from it where read, like registers the region only reads.
    through: [bool; NREGS],
    /// Registers whose CPU-state copy may be older than their variable here: set in this IR
    /// block, or on some path to it from an entry of the region or of its loop (`stale`).
    /// Every path that leaves the region or lets the runtime read the state stores them, and
    /// so does an edge into a loop; the other edges store nothing.
    dirty: [bool; NREGS],
    /// Per IR block, on its main path (which dominates the rest of the block): the memory
    /// base and the permission table (constant for a run) and the registers the region only
    /// reads, once loaded; cleared by helper calls that may write registers.
    ctx_cache: [Option<Value>; 2],
    ro_cache: [Option<Value>; 32],
    /// Per block of a region with loops: the registers some path from an entry may have set
    /// before it ([`forward`]), dirty when the block starts.
    stale: HashMap<u64, u64>,
    /// The edges (from block, to block) that enter a loop: they store the stale registers.
    loop_entries: HashSet<(u64, u64)>,
    /// The guest pc of the block being lowered.
    block_pc: u64,
    blocks: HashMap<u64, ir::Block>,
    /// Blocks that branches may target without leaving (empty without loops).
    internal: HashMap<u64, ir::Block>,
    /// Per dispatch entry and call or return target: the block that loads the registers it
    /// needs from the CPU state, then jumps to it.
    landing: HashMap<u64, ir::Block>,
    region_sig: ir::SigRef,
    /// With [`Env::host_calls`], the region's parameter: the return address of the host call
    /// this translation runs in (every tail call passes it on), kept in a stack slot so it
    /// holds no register. Without, the code ignores it and passes 0 (code made either way
    /// must not be mixed: the runtime's JIT follows an image's choice).
    expect: Option<ir::StackSlot>,
    /// The i64 and i8 zeros the entry block defines the flag and SMC variables with.
    entry_zeros: (Value, Value),
    callee_sigs: HashMap<Callee, ir::SigRef>,
    // Per IR block:
    temps: Vec<Option<Value>>,
    defs: Vec<TempDef>,
    flags: Option<Flags>,
    cur_pc: u64,
    fault_exit: Option<(u64, ir::Block)>,
    store_pending: bool,
    /// The store being lowered is the last effect of its instruction (only pure ops follow).
    final_store: bool,
    smc: Variable,
    deferred: Vec<Pending>,
    /// Lazy flags: operands and kind of the last flag producer (see [`lazy`]).
    fa: Variable,
    fb: Variable,
    fk: Variable,
    /// The kind, when known at this point of the lowering.
    fk_static: Option<i64>,
    /// Blocks that some branch inside the region targets (their entry state is a merge).
    internal_targets: HashSet<u64>,
    region_entry: u64,
    /// The region's shared fault exit (parameter: the faulting guest pc), once needed.
    fault_common: Option<ir::Block>,
    /// The host has a native fused multiply-add (FMADD & co. may be inline).
    has_fma: bool,
    /// The FP mode the inline FP guards test ([`fp::fpmode_value`]), when the region has
    /// guarded FP fast paths: set at entry, recomputed after helper calls and MSR FPCR/FPSR.
    fpmode: Option<Variable>,
    /// Per IR block: the last value the inline FP paths or a scalar vector load wrote to (or
    /// read from) each V register's low half; cleared by helper calls, which may write any.
    vcache: [Option<fp::VCached>; 32],
    /// V registers (bit r) whose value in [`Self::vcache`] the CPU state does not hold yet:
    /// written back on every path that leaves the block or lets the runtime read the state
    /// (terminators, exits, fault paths, helper calls), so a loop of scalar FP keeps its
    /// values in host registers instead of storing and reloading them per instruction.
    vdirty: u32,
    /// V registers a region with loops keeps in variables across its blocks (only used as
    /// scalars: [`fp::promoted_vregs`]), and those it writes; their variables (the low 64
    /// bits as f64). A block starts with them in the V cache, dirty where written; its
    /// terminator passes them on instead of storing them.
    vpromoted: u32,
    vwritten: u32,
    vvars: [Variable; 32],
    /// Promoted V registers whose upper half is already zero in the state at this point of
    /// the block (on every path: `vzeroed_in` per block, then its writes).
    vzeroed: u32,
    vzeroed_in: HashMap<u64, u64>,
}

fn mem_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn state_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

fn width_ty(w: Width) -> Type {
    match w {
        Width::W32 => types::I32,
        Width::W64 => types::I64,
    }
}

/// Lowers `region` into a new Cranelift function named `name`.
pub fn lower_region<E: Env>(
    region: Region,
    env: &mut E,
    cfg: LowerConfig,
    isa: &dyn TargetIsa,
    fctx: &mut FunctionBuilderContext,
    name: UserFuncName,
) -> Function {
    let mut func = Function::with_name_signature(name, region_signature());
    let mut b = FunctionBuilder::new(&mut func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let expect = env.host_calls().then(|| {
        let slot = b.create_sized_stack_slot(ir::StackSlotData::new(
            ir::StackSlotKind::ExplicitSlot,
            8,
            3,
        ));
        let param = b.block_params(entry)[0];
        b.ins().stack_store(types::I64, param, slot, 0);
        slot
    });
    let vars: [Variable; NREGS] = std::array::from_fn(|_| b.declare_var(types::I64));
    let smc = b.declare_var(types::I8);
    let zero8 = b.ins().iconst(types::I8, 0);
    b.def_var(smc, zero8);
    let (fa, fb, fk) = (
        b.declare_var(types::I64),
        b.declare_var(types::I64),
        b.declare_var(types::I64),
    );
    let zero = b.ins().iconst(types::I64, lazy::PACKED);
    b.def_var(fa, zero);
    b.def_var(fb, zero);
    b.def_var(fk, zero);
    let mut internal_targets = HashSet::new();
    let inside: HashSet<u64> = if region.loops {
        region.blocks.iter().map(|b| b.pc).collect()
    } else {
        Default::default()
    };
    // Secondary entries are merge points (entered from the dispatch and from inside).
    let entries: Vec<u64> = region
        .entries
        .iter()
        .copied()
        .filter(|pc| inside.contains(pc) && *pc != region.blocks[0].pc)
        .collect();
    internal_targets.extend(entries.iter().copied());
    for blk in region.blocks {
        match blk.ops.last() {
            Some(Op::Jump { target, .. }) if inside.contains(target) => {
                internal_targets.insert(*target);
            }
            Some(Op::Branch {
                taken, fallthrough, ..
            }) => {
                internal_targets.extend(
                    [*taken, *fallthrough]
                        .into_iter()
                        .filter(|t| inside.contains(t)),
                );
            }
            Some(&Op::JumpReg { kind, .. }) if region.loops => {
                if let Some(pc) = blk.last_insn_pc() {
                    internal_targets.extend(
                        env.indirect_targets(pc, kind)
                            .into_iter()
                            .filter(|t| inside.contains(t)),
                    );
                }
            }
            _ => {}
        }
    }

    let has_fma = isa.has_native_fma();
    let (vpromoted, vwritten) = if region.loops {
        fp::promoted_vregs(region.blocks)
    } else {
        (0, 0)
    };
    let vvars: [Variable; 32] = std::array::from_fn(|_| b.declare_var(types::F64));
    // Which registers the region reads or writes.
    let mut tracked = [false; NREGS];
    let mut written = [false; NREGS];
    let mut uses_fpmode = false;
    for blk in region.blocks {
        for op in &blk.ops {
            match op {
                Op::Get { reg: Reg::X(n), .. } => tracked[*n as usize] = true,
                Op::Set { reg: Reg::X(n), .. } => written[*n as usize] = true,
                Op::Get { reg: Reg::Nzcv, .. } | Op::Cond { .. } => tracked[NZCV] = true,
                Op::Set { reg: Reg::Nzcv, .. } | Op::AddFlags { .. } | Op::LogicFlags { .. } => {
                    written[NZCV] = true
                }
                // Inline FP fast paths write their X register or NZCV through the variables.
                Op::Call { helper, insn } => {
                    let (x, nzcv) = fp::writes(helper, *insn, has_fma);
                    if let Some(x) = x {
                        written[x as usize] = true;
                    }
                    written[NZCV] |= nzcv;
                    uses_fpmode |= fp::uses_fpmode(helper, *insn, has_fma);
                }
                _ => {}
            }
        }
    }
    // Registers the region writes live in variables, stored to the CPU state only on the
    // paths that leave the region or let the runtime read it (exits, faults, helper calls)
    // and on the edges that enter a loop ([`loops`]), so a loop keeps its registers in
    // host registers. A block starts with the registers some path from an entry or a loop
    // entry may have set (`stale`) still to be stored; a variable is defined from an entry
    // load where some path reads it, or may store it, before setting it. Registers the
    // region only reads, and in a region with loops those no loop sets (`through`: written
    // to the state where set), are loaded from the CPU state at each use: no host register
    // holds them across a loop (a load from the state is as cheap as a reload from a spill,
    // and a whole-function region would otherwise spill its loop counters instead).
    let flow = flows(region.blocks, &inside, env, has_fma);
    // Where the region is entered with every register in the CPU state: its first block,
    // the dispatch entries and the targets of calls and returns ([`Flow::stored`]). Each
    // entry loads only the registers it needs (`need`), so values do not stay live across
    // calls and returns (a whole-function region would otherwise carry every register
    // through its recursive calls and return sites).
    let first_pc = region.blocks[0].pc;
    let mut landings: Vec<u64> = entries
        .iter()
        .copied()
        .chain(
            flow.values()
                .filter(|f| f.stored)
                .flat_map(|f| f.succ.iter().copied()),
        )
        .collect();
    landings.sort_unstable();
    landings.dedup();
    let starts: Vec<u64> = std::iter::once(first_pc)
        .chain(landings.iter().copied().filter(|&pc| pc != first_pc))
        .collect();
    let live = read_before_set(&flow);
    let (loop_entries, in_loop) = loops(&flow, &starts);
    let set_in_loops = in_loop.iter().fold(0, |m, pc| m | flow[pc].set);
    let through_mask = (0..32)
        .filter(|&r| region.loops && written[r] && set_in_loops & (1 << r) == 0)
        .fold(0u64, |m, r| m | 1 << r);
    let through: [bool; NREGS] = std::array::from_fn(|r| through_mask & (1 << r) != 0);
    for r in 0..32 {
        written[r] &= !through[r];
    }
    let clean: HashMap<u64, u64> = starts.iter().map(|&pc| (pc, 0)).collect();
    let stale: HashMap<u64, u64> = forward(&flow, &clean, true, &loop_entries)
        .into_iter()
        .map(|(pc, s)| (pc, s & !through_mask))
        .collect();
    let mut need: HashMap<u64, u64> = starts.iter().map(|&pc| (pc, live[&pc])).collect();
    let defined = forward(&flow, &need, false, &HashSet::new());
    // Promoted V registers whose upper half is zero in the state on every path to a block
    // (written since the last start: calls may leave anything there).
    let vzeroed_in = forward_by(&flow, &clean, false, &HashSet::new(), |f| f.vset);
    // A register stale where some path has not set it is stored from its variable: every
    // entry loads it.
    let missing = stale.iter().fold(0, |m, (pc, s)| m | (s & !defined[pc]));
    for n in need.values_mut() {
        *n |= missing;
    }
    for r in 0..NREGS {
        // NZCV always goes through its variable (lazy flags).
        tracked[r] = written[r] || (r == NZCV && tracked[r]);
    }
    let load_needed = |b: &mut FunctionBuilder, need: u64| {
        for r in (0..NREGS).filter(|&r| tracked[r] && need & (1 << r) != 0) {
            let cpu = b.ins().get_pinned_reg(types::I64);
            let v = b.ins().load(types::I64, state_flags(), cpu, reg_offset(r));
            b.def_var(vars[r], v);
        }
        // Every entry loads the promoted V registers (calls may change any).
        for r in (0..32u8).filter(|r| vpromoted & (1 << r) != 0) {
            let cpu = b.ins().get_pinned_reg(types::I64);
            let v = b.ins().load(types::F64, state_flags(), cpu, vreg_offset(r));
            b.def_var(vvars[r as usize], v);
        }
    };
    // The flags start from the state at the first block and flow from there (landing
    // blocks keep them: calls and returns do not store them).
    load_needed(&mut b, need[&first_pc] | 1 << NZCV);
    let fpmode = uses_fpmode.then(|| {
        let var = b.declare_var(types::I64);
        let cpu = b.ins().get_pinned_reg(types::I64);
        let v = fp::fpmode_value(&mut b, cpu);
        b.def_var(var, v);
        var
    });
    let region_sig = b.import_signature(region_signature());
    let mut blocks = HashMap::new();
    for blk in region.blocks {
        blocks.entry(blk.pc).or_insert_with(|| b.create_block());
    }
    let first = blocks[&first_pc];
    // Without loops only the entry is reachable by a jump from inside (from the function
    // entry); branches to any region address leave the translation.
    let internal_blocks = if region.loops {
        blocks.clone()
    } else {
        HashMap::new()
    };
    let landing: HashMap<u64, ir::Block> =
        landings.iter().map(|&pc| (pc, b.create_block())).collect();
    if entries.is_empty() {
        b.ins().jump(first, &[]);
    } else {
        let cpu = b.ins().get_pinned_reg(types::I64);
        let pc = b.ins().load(
            types::I64,
            state_flags(),
            cpu,
            offset_of!(CpuState, pc) as i32,
        );
        let mut sw = cranelift_frontend::Switch::new();
        for e in &entries {
            sw.set_entry(*e as u128, landing[e]);
        }
        sw.emit(&mut b, pc, first);
    }
    for pc in &landings {
        b.switch_to_block(landing[pc]);
        load_needed(&mut b, need[pc]);
        b.ins().jump(blocks[pc], &[]);
    }

    let mut l = Lower {
        b,
        env,
        cfg,
        vars,
        tracked,
        written,
        through,
        dirty: [false; NREGS],
        ctx_cache: [None; 2],
        ro_cache: [None; 32],
        stale,
        loop_entries,
        block_pc: 0,
        blocks,
        internal: internal_blocks,
        landing,
        region_sig,
        expect,
        entry_zeros: (zero, zero8),
        callee_sigs: HashMap::new(),
        temps: Vec::new(),
        defs: Vec::new(),
        flags: None,
        cur_pc: 0,
        fault_exit: None,
        store_pending: false,
        final_store: false,
        smc,
        deferred: Vec::new(),
        fa,
        fb,
        fk,
        fk_static: None,
        internal_targets,
        region_entry: region.blocks[0].pc,
        fault_common: None,
        has_fma,
        fpmode,
        vcache: [None; 32],
        vdirty: 0,
        vpromoted,
        vwritten,
        vvars,
        vzeroed: 0,
        vzeroed_in,
    };
    let mut done = HashSet::new();
    for blk in region.blocks {
        if done.insert(blk.pc) {
            l.lower_block(blk);
        }
    }
    if let Some(common) = l.fault_common {
        // One fault exit for the whole region (each site stored its own dirty registers):
        // write back the flags, pc = the parameter, FAULT.
        l.b.switch_to_block(common);
        l.fk_static = None;
        l.dirty = [false; NREGS];
        l.vdirty = 0;
        let pc = l.b.block_params(common)[0];
        l.spill();
        l.set_pc(pc);
        l.ret(exit::FAULT);
    }
    l.b.seal_all_blocks();
    l.b.finalize(isa.frontend_config());
    func
}

/// What a block of a region does with the X registers: the ones it reads before setting
/// them (a helper call reads them all), the ones it sets (inline FP paths included), and its
/// successors inside the region.
struct Flow {
    used: u64,
    set: u64,
    /// The V registers it surely writes as scalars (their upper halves are zero after it).
    vset: u64,
    succ: Vec<u64>,
    /// The block ends in a call or return: its successors (the callee, return sites,
    /// profiled targets) are entered with every register stored, load again what they
    /// need, and do not make loops.
    stored: bool,
}

impl Flow {
    /// The successors its registers flow to (none after a call or return).
    fn carried(&self) -> &[u64] {
        if self.stored {
            &[]
        } else {
            &self.succ
        }
    }
}

/// The [`Flow`] of every block of a region (`inside`: the pcs a branch may reach without
/// leaving).
fn flows<E: Env>(
    blocks: &[&Block],
    inside: &HashSet<u64>,
    env: &mut E,
    has_fma: bool,
) -> HashMap<u64, Flow> {
    const ALL: u64 = (1 << 32) - 1;
    let mut info = HashMap::new();
    for blk in blocks {
        if info.contains_key(&blk.pc) {
            continue;
        }
        let (mut used, mut set, mut succ, mut stored) = (0u64, 0u64, Vec::new(), false);
        let mut vset = 0u64;
        for op in &blk.ops {
            match *op {
                Op::LoadVec { reg, size, .. } if size <= 8 => vset |= 1 << reg,
                Op::Get { reg: Reg::X(n), .. } => used |= (1 << n) & !set,
                Op::Set { reg: Reg::X(n), .. } => set |= 1 << n,
                Op::Call { helper, insn } => {
                    if fp::scalar_fields(insn).is_some() && fp::writes_vd(insn) {
                        vset |= 1 << (insn & 31);
                    }
                    used |= ALL & !set;
                    if let (Some(x), _) = fp::writes(helper, insn, has_fma) {
                        if x < 31 {
                            set |= 1 << x;
                        }
                    }
                }
                Op::Jump { target, kind } => {
                    stored = kind != BranchKind::Jump;
                    succ.push(target);
                }
                Op::Branch {
                    taken, fallthrough, ..
                } => succ.extend([taken, fallthrough]),
                Op::JumpReg { kind, .. } => {
                    stored = kind != BranchKind::Jump;
                    if let Some(pc) = blk.last_insn_pc() {
                        succ.extend(env.indirect_targets(pc, kind));
                    }
                }
                _ => {}
            }
        }
        // A call returns to its return site, with the state stored: through the host call's
        // continuation when the callee is outside ([`Lower::host_call`]).
        if env.host_calls() {
            succ.extend(blk.return_site());
        }
        succ.retain(|t| inside.contains(t));
        info.insert(
            blk.pc,
            Flow {
                used,
                set,
                vset,
                succ,
                stored,
            },
        );
    }
    info
}

/// Per block, the X registers (bit r) some path from it reads before setting them, up to
/// the [`Flow::stored`] edges (their targets load what they need again).
fn read_before_set(flow: &HashMap<u64, Flow>) -> HashMap<u64, u64> {
    let mut live: HashMap<u64, u64> = flow.keys().map(|&pc| (pc, 0)).collect();
    loop {
        let mut changed = false;
        for (pc, f) in flow {
            let out = f.carried().iter().fold(0, |m, s| m | live[s]);
            let new = f.used | (out & !f.set);
            let cur = live.get_mut(pc).expect("every block has an entry");
            if new != *cur {
                *cur = new;
                changed = true;
            }
        }
        if !changed {
            return live;
        }
    }
}

/// Forward dataflow over the region's internal edges: per block, the join (`union` or
/// intersection) over its predecessors of `in | set`, where the starts (the keys of
/// `seeds`, entered with the state stored) also receive their seed, and the `cut` edges
/// and those of [`Flow::stored`] blocks contribute nothing. Blocks nothing reaches keep the
/// intersection's top (all).
fn forward(
    flow: &HashMap<u64, Flow>,
    seeds: &HashMap<u64, u64>,
    union: bool,
    cut: &HashSet<(u64, u64)>,
) -> HashMap<u64, u64> {
    forward_by(flow, seeds, union, cut, |f| f.set)
}

/// [`forward`] of another per-block mask (`set(flow)` in place of [`Flow::set`]).
fn forward_by(
    flow: &HashMap<u64, Flow>,
    seeds: &HashMap<u64, u64>,
    union: bool,
    cut: &HashSet<(u64, u64)>,
    set: fn(&Flow) -> u64,
) -> HashMap<u64, u64> {
    const ALL: u64 = (1 << 32) - 1;
    let top = if union { 0 } else { ALL };
    let mut at: HashMap<u64, u64> = flow.keys().map(|&pc| (pc, top)).collect();
    at.extend(seeds.iter().map(|(&pc, &s)| (pc, s)));
    loop {
        let mut changed = false;
        for (pc, f) in flow {
            let out = at[pc] | set(f);
            for s in f.carried() {
                if cut.contains(&(*pc, *s)) {
                    continue;
                }
                let cur = at.get_mut(s).expect("successors are region blocks");
                let new = if union { *cur | out } else { *cur & out };
                if new != *cur {
                    *cur = new;
                    changed = true;
                }
            }
        }
        if !changed {
            return at;
        }
    }
}

/// The edges that enter a loop from outside it (from a block that is not in its innermost
/// body: entries and the back edges of outer loops that share its header), and the blocks
/// of all loops. Loop entries store the stale registers, so inside the loop only what the loop itself sets is stale, and
/// registers set before it do not stay live through it just to be stored at some exit.
/// Loops are found by a depth-first search from the `starts` (a back edge goes to a block on
/// the stack; its body is what reaches the back edge's source without passing through the
/// header).
fn loops(flow: &HashMap<u64, Flow>, starts: &[u64]) -> (HashSet<(u64, u64)>, HashSet<u64>) {
    let mut preds: HashMap<u64, Vec<u64>> = HashMap::new();
    for (&pc, f) in flow {
        for s in f.carried() {
            preds.entry(*s).or_default().push(pc);
        }
    }
    // Iterative DFS: (block, next successor index); `on` marks the stack.
    let (mut seen, mut on) = (HashSet::new(), HashSet::new());
    let mut back: Vec<(u64, u64)> = Vec::new();
    for &s in starts {
        if !flow.contains_key(&s) || !seen.insert(s) {
            continue;
        }
        on.insert(s);
        let mut stack = vec![(s, 0usize)];
        while let Some(&mut (b, ref mut i)) = stack.last_mut() {
            match flow[&b].carried().get(*i) {
                Some(&n) => {
                    *i += 1;
                    if on.contains(&n) {
                        back.push((b, n));
                    } else if seen.insert(n) {
                        on.insert(n);
                        stack.push((n, 0));
                    }
                }
                None => {
                    on.remove(&b);
                    stack.pop();
                }
            }
        }
    }
    let (mut entries, mut in_loop) = (HashSet::new(), HashSet::new());
    let mut headers: Vec<u64> = back.iter().map(|e| e.1).collect();
    headers.sort_unstable();
    headers.dedup();
    for h in headers {
        let bodies: Vec<HashSet<u64>> = back
            .iter()
            .filter(|e| e.1 == h)
            .map(|&(latch, _)| {
                let mut body: HashSet<u64> = HashSet::from([h]);
                let mut work = vec![latch];
                while let Some(b) = work.pop() {
                    if body.insert(b) {
                        work.extend(preds.get(&b).into_iter().flatten().copied());
                    }
                }
                body
            })
            .collect();
        in_loop.extend(bodies.iter().flatten().copied());
        // The innermost loop of `h`: the back edges' bodies that hold no other (an outer
        // loop sharing the header holds the inner one), together: the paths of a loop with
        // several back edges (`continue`, the cases of an interpreter's switch) are one loop.
        let minimal =
            |b: &HashSet<u64>| !bodies.iter().any(|o| o.len() < b.len() && o.is_subset(b));
        let body: HashSet<u64> = bodies
            .iter()
            .filter(|b| minimal(b))
            .flatten()
            .copied()
            .collect();
        for p in preds.get(&h).into_iter().flatten() {
            if !body.contains(p) {
                entries.insert((*p, h));
            }
        }
    }
    (entries, in_loop)
}

impl<E: Env> Lower<'_, '_, E> {
    fn t(&self, t: Temp) -> Value {
        self.temps[t.0 as usize].expect("verified IR defines temps before use")
    }

    fn def(&mut self, d: crate::ir::Dst, v: Value, how: TempDef) {
        self.temps[d.0 as usize] = Some(v);
        self.defs[d.0 as usize] = how;
    }

    fn iconst(&mut self, ty: Type, v: u64) -> Value {
        let v = if ty == types::I32 {
            v as u32 as i64
        } else {
            v as i64
        };
        self.b.ins().iconst(ty, v)
    }

    /// Reduces an i64 temp to the width's type.
    fn narrow(&mut self, w: Width, v: Value) -> Value {
        match w {
            Width::W64 => v,
            Width::W32 => self.b.ins().ireduce(types::I32, v),
        }
    }

    /// Zero-extends a width-typed value back to i64.
    fn widen(&mut self, w: Width, v: Value) -> Value {
        match w {
            Width::W64 => v,
            Width::W32 => self.b.ins().uextend(types::I64, v),
        }
    }

    /// The CPU state (the [`Frame`]): Cranelift's pinned register (r15 on x86-64), which the
    /// runtime's entry sets and every region and callee keeps, so it takes no allocatable
    /// register and is never spilled. Read at each use (a short live range).
    fn cpu(&mut self) -> Value {
        self.b.ins().get_pinned_reg(types::I64)
    }

    /// The JIT context, for passing to runtime entry points.
    fn ctx(&mut self) -> Value {
        let f = self.cpu();
        self.b.ins().iadd_imm_s(f, CTX_OFFSET as i64)
    }

    /// A field of the context, loaded where it is used (a short live range).
    fn ctx_field(&mut self, off: usize) -> Value {
        let f = self.cpu();
        self.b
            .ins()
            .load(types::I64, state_flags(), f, CTX_OFFSET + off as i32)
    }

    fn callee_sig(&mut self, c: Callee) -> ir::SigRef {
        if let Some(s) = self.callee_sigs.get(&c) {
            return *s;
        }
        let s = self.b.import_signature(callee_signature(c));
        self.callee_sigs.insert(c, s);
        s
    }

    fn call(&mut self, c: Callee, args: &[Value]) -> Value {
        let sig = self.callee_sig(c);
        let f = self.env.callee(&mut self.b, c);
        let inst = self.b.ins().call_indirect(sig, f, args);
        if c.preserves_all() {
            // The result comes back through the context.
            self.ctx_field(offset_of!(JitContext, ret))
        } else {
            self.b.inst_results(inst)[0]
        }
    }

    /// Brings the CPU state up to date on a path that leaves the region (or calls out):
    /// the registers this block set and the flags.
    fn spill(&mut self) {
        self.store_dirty();
        if self.written[NZCV] {
            let v = self.materialize();
            let cpu = self.cpu();
            self.b.ins().store(state_flags(), v, cpu, reg_offset(NZCV));
        }
    }

    /// Stores the registers set in this block so far, X and V (they stay dirty: the caller
    /// may be on a side path).
    fn store_dirty(&mut self) {
        self.store_regs(self.dirty_mask());
        self.store_vdirty();
    }

    /// Stores the dirty registers and forgets them: what follows is entered with the state
    /// stored (a call or return, [`Flow::stored`]).
    fn flush(&mut self) {
        self.store_dirty();
        self.dirty = [false; NREGS];
    }

    fn dirty_mask(&self) -> u64 {
        (0..NREGS)
            .filter(|&r| self.dirty[r])
            .fold(0, |m, r| m | 1 << r)
    }

    /// Stores the registers of `mask` (bit r = register r) from their variables.
    fn store_regs(&mut self, mask: u64) {
        for r in 0..NREGS {
            if mask & (1 << r) != 0 {
                let v = self.b.use_var(self.vars[r]);
                let cpu = self.cpu();
                self.b.ins().store(state_flags(), v, cpu, reg_offset(r));
            }
        }
    }

    /// X[n] = v (n < 31): the variable now, the CPU state on the paths that leave (or right
    /// away for a [`Self::through`] register).
    fn set_reg(&mut self, n: usize, v: Value) {
        if self.through[n] {
            // Later reads load it again (a store-to-load forward): a value cached here would
            // not dominate them when this is an inline fast path.
            self.store_state(v, reg_offset(n) as usize);
            self.ro_cache[n] = None;
            return;
        }
        self.b.def_var(self.vars[n], v);
        self.dirty[n] = true;
    }

    /// Reloads every cached register from the CPU state (after a helper changed it).
    fn reload(&mut self) {
        for r in 0..NREGS {
            if self.tracked[r] {
                let cpu = self.cpu();
                let v = self
                    .b
                    .ins()
                    .load(types::I64, state_flags(), cpu, reg_offset(r));
                if r == NZCV {
                    self.def_packed(v);
                } else {
                    self.b.def_var(self.vars[r], v);
                }
            }
        }
        self.flags = None;
    }

    fn set_pc(&mut self, pc: Value) {
        let cpu = self.cpu();
        self.b
            .ins()
            .store(state_flags(), pc, cpu, offset_of!(CpuState, pc) as i32);
    }

    fn ret(&mut self, code: i64) {
        let v = self.b.ins().iconst(types::I64, code);
        self.b.ins().return_(&[v]);
    }

    /// Leaves the region for a known guest address: chained tail call when possible; a call
    /// (`ret_site`: its return address) through a chain slot is a host call
    /// ([`Self::host_call`]).
    fn exit_to(&mut self, target: u64, ret_site: Option<u64>) {
        self.spill();
        let pc = self.iconst(types::I64, target);
        self.set_pc(pc);
        self.chain_to(target, ret_site);
    }

    /// Enters the translation of `target` (`cpu.pc` already set) through its chain slot, or
    /// returns to the dispatcher.
    fn chain_to(&mut self, target: u64, ret_site: Option<u64>) {
        let Some(slot) = self.env.chain_slot(target) else {
            return self.ret(exit::CONTINUE);
        };
        let table = self.ctx_field(offset_of!(JitContext, chain));
        let code = self.b.ins().load(
            types::I64,
            MemFlagsData::new().with_notrap(),
            table,
            8 * slot as i32,
        );
        let chained = self.b.create_block();
        let back = self.b.create_block();
        self.b.ins().brif(code, chained, &[], back, &[]);
        self.b.switch_to_block(chained);
        match ret_site {
            Some(r) => self.host_call(code, r),
            None => self.tail_call(code),
        }
        self.b.switch_to_block(back);
        self.ret(exit::CONTINUE);
    }

    /// The return address of the call (of `kind`) being lowered, when it is made a host call
    /// ([`Env::host_calls`]).
    fn host_call_return(&self, kind: BranchKind) -> Option<u64> {
        (kind == BranchKind::Call && self.env.host_calls()).then(|| self.cur_pc + 4)
    }

    /// Tail-calls a translation (passing on the region's host return address).
    fn tail_call(&mut self, code: Value) {
        let sig = self.region_sig;
        let expect = match self.expect {
            Some(slot) => self.b.ins().stack_load(types::I64, types::I64, slot, 0),
            None => self.b.ins().iconst(types::I64, 0),
        };
        self.b.ins().return_call_indirect(sig, code, &[expect]);
    }

    /// Return-address prediction: calls the translation of a guest call's target (the state
    /// stored, `cpu.pc` set) as a host call expecting `ret_site`. The callee's `RET` to
    /// `ret_site` is a host return (predicted by the host's return stack, where a table
    /// lookup and an indirect jump would be predicted by target history), then this region
    /// goes on at the return site with the registers from the state. Whatever else comes
    /// back (an exit to the dispatcher, a system call, a fault) is returned to this
    /// region's own caller. Correct for any guest: the continuation checks the pc, so a
    /// guest that returns elsewhere (longjmp, a changed X30) only loses the prediction.
    /// When the host stack budget ([`JitContext::stack_limit`]) is spent (deep recursion),
    /// a tail call as for a jump.
    fn host_call(&mut self, code: Value, ret_site: u64) {
        let sp = self.b.ins().get_stack_pointer(types::I64);
        let limit = self.ctx_field(offset_of!(JitContext, stack_limit));
        let deep = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, limit);
        let (tail, call) = (self.b.create_block(), self.b.create_block());
        self.b.set_cold_block(tail);
        self.b.ins().brif(deep, tail, &[], call, &[]);
        self.b.switch_to_block(tail);
        self.tail_call(code);
        self.b.switch_to_block(call);
        let sig = self.region_sig;
        let expect = self.iconst(types::I64, ret_site);
        let inst = self.b.ins().call_indirect(sig, code, &[expect]);
        let r = self.b.inst_results(inst)[0];
        let cpu = self.cpu();
        let pc = self.b.ins().load(
            types::I64,
            state_flags(),
            cpu,
            offset_of!(CpuState, pc) as i32,
        );
        let at = self.b.ins().icmp_imm_u(IntCC::Equal, pc, ret_site as i64);
        let cont = self.b.ins().icmp_imm_u(IntCC::Equal, r, exit::CONTINUE);
        let back = self.b.ins().band(at, cont);
        let (returned, out) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(back, returned, &[], out, &[]);
        self.b.switch_to_block(out);
        self.b.ins().return_(&[r]);
        self.b.switch_to_block(returned);
        // Everything is in the state now: nothing is dirty, and the flags and the FP mode
        // are the callee's. As at the function's entry, every variable the code after this
        // may read is defined afresh (the landing loads the registers), so no value stays
        // live across the call; with the entry's own constants, so that where every path
        // brings the same value the flags' kind stays a constant and its uses fold.
        self.dirty = [false; NREGS];
        self.vdirty = 0;
        let (zero, zero8) = self.entry_zeros;
        self.b.def_var(self.fa, zero);
        self.b.def_var(self.fb, zero);
        self.b.def_var(self.fk, zero);
        self.b.def_var(self.smc, zero8);
        let cpu = self.cpu();
        let v = self
            .b
            .ins()
            .load(types::I64, state_flags(), cpu, reg_offset(NZCV));
        self.b.def_var(self.vars[NZCV], v);
        self.fk_static = Some(lazy::PACKED);
        self.reload_fpmode();
        if let Some(&l) = self.landing.get(&ret_site) {
            self.b.ins().jump(l, &[]);
        } else if self.env.chain_slot(ret_site).is_some() {
            self.chain_to(ret_site, None);
        } else {
            // As a return through the indirect path would.
            let t = self.iconst(types::I64, ret_site);
            self.indirect_exit(t, None);
        }
    }

    /// Dispatches an indirect branch to the known targets inside the region (a switch on
    /// `(t - base) rotr 2`: a misaligned address becomes a huge key and misses); the code
    /// after it handles every other address. After a call or return (`stored`) the targets
    /// are entered through their landing blocks.
    fn known_targets(&mut self, t: Value, kind: BranchKind) {
        let stored = kind != BranchKind::Jump;
        let mut targets: Vec<u64> = self
            .env
            .indirect_targets(self.cur_pc, kind)
            .into_iter()
            .filter(|p| self.internal.contains_key(p))
            .collect();
        targets.sort_unstable();
        targets.dedup();
        // The registers still dirty flow to the targets (or are stored on a loop entry).
        let known: Vec<(u64, ir::Block)> = targets
            .into_iter()
            .filter_map(|p| match stored {
                true => self.landing.get(&p).map(|&l| (p, l)),
                false => Some((p, self.target_block(p))),
            })
            .collect();
        let Some(&(base, _)) = known.first() else {
            return;
        };
        let off = self.b.ins().iadd_imm_s(t, (base as i64).wrapping_neg());
        let key = self.b.ins().rotr_imm_u(off, 2);
        let miss = self.b.create_block();
        let span = (known[known.len() - 1].0 - base) / 4 + 1;
        if span <= MAX_DENSE_SWITCH {
            // One host indirect jump, as native code does (a compare tree over the targets
            // would be a chain of data-dependent branches).
            let mut table = vec![miss; span as usize];
            for &(p, blk) in &known {
                table[((p - base) / 4) as usize] = blk;
            }
            let calls: Vec<_> = table
                .iter()
                .map(|&blk| self.b.func.dfg.block_call(blk, &[]))
                .collect();
            let miss_call = self.b.func.dfg.block_call(miss, &[]);
            let jt = self
                .b
                .create_jump_table(ir::JumpTableData::new(miss_call, &calls));
            let inside = self.b.create_block();
            let out = self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThan, key, span as i64 - 1);
            self.b.ins().brif(out, miss, &[], inside, &[]);
            self.b.switch_to_block(inside);
            let idx = self.b.ins().ireduce(types::I32, key);
            self.b.ins().br_table(idx, jt);
        } else {
            let mut sw = cranelift_frontend::Switch::new();
            for &(p, blk) in &known {
                sw.set_entry(((p - base) / 4) as u128, blk);
            }
            sw.emit(&mut self.b, key, miss);
        }
        self.b.switch_to_block(miss);
    }

    /// Leaves for a computed guest address (state already written back): a hit in the
    /// indirect-branch table tail-calls the target's translation (host-calls it for a call
    /// with return address `ret_site`), a miss returns to the dispatcher.
    fn indirect_exit(&mut self, target: Value, ret_site: Option<u64>) {
        let table = self.ctx_field(offset_of!(JitContext, indirect));
        let idx = self.b.ins().ushr_imm_u(target, 2);
        let idx = self.b.ins().band_imm_u(idx, (INDIRECT_ENTRIES - 1) as i64);
        let off = self.b.ins().ishl_imm_u(idx, 4);
        let entry = self.b.ins().iadd(table, off);
        let key = self
            .b
            .ins()
            .load(types::I64, MemFlagsData::new().with_notrap(), entry, 0);
        let hit = self.b.ins().icmp(IntCC::Equal, key, target);
        let chained = self.b.create_block();
        let back = self.b.create_block();
        self.b.ins().brif(hit, chained, &[], back, &[]);
        self.b.switch_to_block(chained);
        let code = self
            .b
            .ins()
            .load(types::I64, MemFlagsData::new().with_notrap(), entry, 8);
        match ret_site {
            Some(r) => self.host_call(code, r),
            None => self.tail_call(code),
        }
        self.b.switch_to_block(back);
        self.ret(exit::CONTINUE);
    }

    /// A block (shared per guest instruction) that leaves with FAULT at the current pc.
    fn fault_block(&mut self) -> ir::Block {
        if let Some((pc, blk)) = self.fault_exit {
            if pc == self.cur_pc {
                return blk;
            }
        }
        let blk = self.defer(Deferred::Fault(self.cur_pc));
        self.fault_exit = Some((self.cur_pc, blk));
        blk
    }

    fn defer(&mut self, d: Deferred) -> ir::Block {
        let blk = self.b.create_block();
        if !matches!(d, Deferred::Exit(_) | Deferred::Edge(_)) {
            self.b.set_cold_block(blk);
        }
        self.deferred.push(Pending {
            blk,
            what: d,
            fk_static: self.fk_static,
            dirty: self.dirty,
            vcache: self.vcache,
            vdirty: self.vdirty,
        });
        blk
    }

    /// Emits the deferred exit blocks (the current block must be terminated).
    fn flush_deferred(&mut self) {
        while let Some(p) = self.deferred.pop() {
            self.b.switch_to_block(p.blk);
            self.fk_static = p.fk_static;
            self.dirty = p.dirty;
            (self.vcache, self.vdirty) = (p.vcache, p.vdirty);
            match p.what {
                Deferred::Fault(pc) => {
                    self.store_dirty();
                    let common = *self.fault_common.get_or_insert_with(|| {
                        let blk = self.b.create_block();
                        self.b.set_cold_block(blk);
                        self.b.append_block_param(blk, types::I64);
                        blk
                    });
                    let pcv = self.iconst(types::I64, pc);
                    self.b.ins().jump(common, &[pcv.into()]);
                }
                Deferred::Exit(target) => self.exit_to(target, None),
                Deferred::Return(code) => self.ret(code),
                Deferred::Edge(target) => {
                    self.store_dirty();
                    let t = self.internal[&target];
                    self.b.ins().jump(t, &[]);
                }
            }
        }
    }

    /// Emits the inline page-table check of a read or write of `[addr, addr+size)`; switches
    /// to the fast block and returns the slow block. The caller fills both.
    fn check_access(&mut self, addr: Value, size: u8, write: bool) -> ir::Block {
        // page < pages  (one compare with a 32-bit immediate; also bounds the table index)
        // perms[page] & span != 0  (the bit covers this page and the next, so an access of
        //   up to 16 bytes starting in the page needs no page-crossing check)
        // else, on the last page of a mapping: perms[page] & mask == need and
        //   (addr & 0xfff) <= 4096 - size
        let (span, mask, need) = if write {
            let c = &self.cfg;
            (c.span_write, c.perm_write | c.perm_code, c.perm_write)
        } else {
            (self.cfg.span_read, self.cfg.perm_read, self.cfg.perm_read)
        };
        let inrange = self.b.create_block();
        let edge = self.b.create_block();
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let page = self.b.ins().ushr_imm_u(addr, 12);
        let pages = (self.cfg.guest_space >> 12) as i64;
        let ok = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedLessThan, page, pages);
        let perms = self.ctx_const(1);
        self.ctx_const(0);
        self.b.ins().brif(ok, inrange, &[], slow, &[]);
        self.b.switch_to_block(inrange);
        let entry = self.b.ins().iadd(perms, page);
        let p = self
            .b
            .ins()
            .uload8(types::I32, MemFlagsData::new().with_notrap(), entry, 0);
        let m = self.b.ins().band_imm_u(p, span as i64);
        self.b.ins().brif(m, fast, &[], edge, &[]);
        self.b.switch_to_block(edge);
        let m = self.b.ins().band_imm_u(p, mask as i64);
        let ok = self.b.ins().icmp_imm_u(IntCC::Equal, m, need as i64);
        let off = self.b.ins().band_imm_u(addr, 0xfff);
        let inside =
            self.b
                .ins()
                .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, off, 4096 - size as i64);
        let ok = self.b.ins().band(ok, inside);
        self.b.ins().brif(ok, fast, &[], slow, &[]);
        self.b.switch_to_block(fast);
        slow
    }

    /// The check before a guest load. With host-fault loads only the address-space bound
    /// (the host MMU refuses unreadable pages; see [`Env::host_fault_loads`]): an address
    /// beyond it is never mapped, so its cold path leaves as the host MMU would have made it
    /// ([`exit::HOST_FAULT`], nothing written back: no register or flag must be live for
    /// it), and the load needs no join (`None`). Else the page table: the slow block for
    /// the caller to fill.
    fn check_load(&mut self, addr: Value, size: u8) -> Option<ir::Block> {
        if !self.env.host_fault_loads() {
            return Some(self.check_access(addr, size, false));
        }
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        self.ctx_const(0);
        let limit = self.b.ins().iconst(types::I64, self.cfg.guest_space as i64);
        let ok = self.b.ins().icmp(IntCC::UnsignedLessThan, addr, limit);
        self.b.ins().brif(ok, fast, &[], slow, &[]);
        self.b.switch_to_block(slow);
        let frame = self.cpu();
        let at = offset_of!(Frame, escape) + offset_of!(Escape, fault_addr);
        self.b.ins().store(state_flags(), addr, frame, at as i32);
        self.ret(exit::HOST_FAULT);
        self.b.switch_to_block(fast);
        None
    }

    /// Flags of a guest load's fast path: it may trap when loads rely on the host MMU.
    fn load_flags(&self) -> MemFlagsData {
        if self.env.host_fault_loads() {
            MemFlagsData::new()
        } else {
            mem_flags()
        }
    }

    /// A context field that is constant for the run (0: memory base, 1: permission table),
    /// loaded once per IR block. Call on the block's main path only.
    fn ctx_const(&mut self, which: usize) -> Value {
        if let Some(v) = self.ctx_cache[which] {
            return v;
        }
        let off = [
            offset_of!(JitContext, mem_base),
            offset_of!(JitContext, perms),
        ][which];
        let v = self.ctx_field(off);
        self.ctx_cache[which] = Some(v);
        v
    }

    /// The host address of guest `addr` (from the main path: see [`Self::ctx_const`]). A
    /// guest `x + (i << s)` (s = 1..=3, a scaled index) becomes `(base + x) + (i << s)`: the
    /// host access then takes the scaled index in its address mode, and the sum the bound
    /// check needs is off the access's critical path (a table lookup chained on the last one,
    /// as in a CRC, is one add shorter).
    fn host_addr(&mut self, addr: Value, split_index: bool) -> Value {
        let base = self.ctx_const(0);
        if !split_index {
            return self.b.ins().iadd(base, addr);
        }
        let dfg = &self.b.func.dfg;
        let def = |v: Value| match dfg.value_def(v) {
            ir::ValueDef::Result(inst, 0) => Some(&dfg.insts[inst]),
            _ => None,
        };
        let scaled = |v: Value| match def(v) {
            Some(ir::InstructionData::Binary {
                opcode: ir::Opcode::Ishl,
                args: [_, amt],
            }) => matches!(
                def(*amt),
                Some(ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm })
                    if (1..=3).contains(&imm.bits())
            ),
            _ => false,
        };
        let split = match def(addr) {
            Some(&ir::InstructionData::Binary {
                opcode: ir::Opcode::Iadd,
                args: [x, y],
            }) => [(x, y), (y, x)].into_iter().find(|&(_, i)| scaled(i)),
            _ => None,
        };
        match split {
            Some((x, index)) => {
                let t = self.b.ins().iadd(base, x);
                self.b.ins().iadd(t, index)
            }
            None => self.b.ins().iadd(base, addr),
        }
    }

    fn load(&mut self, addr: Value, size: u8) -> Value {
        let slow = self.check_load(addr, size);
        let host = self.host_addr(addr, true);
        let f = self.load_flags();
        let v = match size {
            1 => self.b.ins().uload8(types::I64, f, host, 0),
            2 => self.b.ins().uload16(types::I64, f, host, 0),
            4 => self.b.ins().uload32(f, host, 0),
            _ => self.b.ins().load(types::I64, f, host, 0),
        };
        let Some(slow) = slow else {
            return v;
        };
        let join = self.b.create_block();
        let result = self.b.append_block_param(join, types::I64);
        self.b.ins().jump(join, &[v.into()]);
        self.b.switch_to_block(slow);
        let sz = self.iconst(types::I64, size as u64);
        let ctx = self.ctx();
        let v = self.call(Callee::Load, &[ctx, addr, sz]);
        let status = self.ctx_field(offset_of!(JitContext, status));
        let fault = self.fault_block();
        self.b.ins().brif(status, fault, &[], join, &[v.into()]);
        self.b.switch_to_block(join);
        result
    }

    /// After a slow-path store: fault, or remember that code may have changed.
    fn store_status(&mut self, status: Value, join: ir::Block) {
        let fault = self.fault_block();
        let not_fault = self.b.create_block();
        // Reached only from the slow path: keep it out of the hot code's layout.
        self.b.set_cold_block(not_fault);
        let is_fault = self.b.ins().icmp_imm_u(IntCC::Equal, status, 1);
        self.b.ins().brif(is_fault, fault, &[], not_fault, &[]);
        self.b.switch_to_block(not_fault);
        let hit = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, status, STORE_HIT_CODE);
        if self.final_store {
            // Nothing of the instruction remains: leave right here for the next one, and
            // the main path has nothing to test.
            let out = self.b.create_block();
            self.b.set_cold_block(out);
            self.b.ins().brif(hit, out, &[], join, &[]);
            self.b.switch_to_block(out);
            self.spill();
            let next = self.iconst(types::I64, self.cur_pc + 4);
            self.set_pc(next);
            self.ret(exit::CONTINUE);
            return;
        }
        let old = self.b.use_var(self.smc);
        let smc = self.b.ins().bor(old, hit);
        self.b.def_var(self.smc, smc);
        self.b.ins().jump(join, &[]);
        self.store_pending = true;
    }

    fn store(&mut self, addr: Value, val: Value, size: u8) {
        let slow = self.check_access(addr, size, true);
        let join = self.b.create_block();
        let host = self.host_addr(addr, false);
        match size {
            1 => self.b.ins().istore8(mem_flags(), val, host, 0),
            2 => self.b.ins().istore16(mem_flags(), val, host, 0),
            4 => self.b.ins().istore32(mem_flags(), val, host, 0),
            _ => self.b.ins().store(mem_flags(), val, host, 0),
        };
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(slow);
        let sz = self.iconst(types::I64, size as u64);
        let ctx = self.ctx();
        let status = self.call(Callee::Store, &[ctx, addr, sz, val]);
        self.store_status(status, join);
        self.b.switch_to_block(join);
    }

    /// A load into V[reg]. A scalar (up to 8 bytes) stays in the block's V cache, dirty; a
    /// full 128-bit register goes to the CPU state.
    fn load_vec(&mut self, reg: u8, addr: Value, size: u8) {
        let slow = self.check_load(addr, size);
        let host = self.host_addr(addr, true);
        let off = vreg_offset(reg);
        let f = self.load_flags();
        let bit = 1u32 << reg;
        // A 4- or 8-byte load goes straight to a float register: FP code is what reads it.
        let prec = match size {
            4 => Some(fp::Prec::S),
            8 => Some(fp::Prec::D),
            _ => None,
        };
        let lo = match (size, prec) {
            (_, Some(p)) => self.b.ins().load(p.float(), f, host, 0),
            (1, _) => self.b.ins().uload8(types::I64, f, host, 0),
            (2, _) => self.b.ins().uload16(types::I64, f, host, 0),
            _ => self.b.ins().load(types::I64, f, host, 0),
        };
        let scalar = size < 16;
        if !scalar {
            let hi = self.b.ins().load(types::I64, f, host, 8);
            let cpu = self.cpu();
            self.b.ins().store(state_flags(), lo, cpu, off);
            self.b.ins().store(state_flags(), hi, cpu, off + 8);
        }
        let value = match slow {
            None => lo,
            Some(slow) => {
                let join = self.b.create_block();
                let args: Vec<ir::BlockArg> = if scalar { vec![lo.into()] } else { vec![] };
                self.b.ins().jump(join, &args);
                self.b.switch_to_block(slow);
                let sz = self.iconst(types::I64, size as u64);
                let rg = self.iconst(types::I64, reg as u64);
                let (ctx, cpu) = (self.ctx(), self.cpu());
                let status = self.call(Callee::LoadVec, &[ctx, cpu, addr, sz, rg]);
                let fault = self.fault_block();
                let cont = self.b.create_block();
                self.b.set_cold_block(cont);
                self.b.ins().brif(status, fault, &[], cont, &[]);
                self.b.switch_to_block(cont);
                // The runtime wrote the whole register to the state.
                let args: Vec<ir::BlockArg> = match (scalar, prec) {
                    (false, _) => vec![],
                    (true, Some(p)) => vec![self.load_vf_mem(p, reg).into()],
                    (true, None) => vec![self.load_state(off as usize).into()],
                };
                self.b.ins().jump(join, &args);
                self.b.switch_to_block(join);
                if scalar {
                    let ty = prec.map_or(types::I64, |p| p.float());
                    self.b.append_block_param(join, ty)
                } else {
                    lo
                }
            }
        };
        if scalar {
            match prec {
                Some(p) => self.store_vf(p, reg, value),
                None => self.store_vint(reg, value),
            }
        } else {
            self.vcache[reg as usize] = None;
            self.vdirty &= !bit;
        }
        // A later fault of this instruction (the second register of a pair) must store it.
        self.fault_exit = None;
    }

    /// A store of V[reg]'s low `size` bytes, from the V cache when it holds the register.
    fn store_vec(&mut self, reg: u8, addr: Value, size: u8) {
        let slow = self.check_access(addr, size, true);
        let join = self.b.create_block();
        let host = self.host_addr(addr, false);
        let off = vreg_offset(reg);
        // A float of the store's size is stored as it is (no move to a general register).
        let float = match self.vcache[reg as usize] {
            Some(fp::VCached::Float(p, v)) if p.bytes() == size => Some(v),
            _ => None,
        };
        // Whether the register is in the V cache (a scalar: its upper half is zero).
        let cached = match float {
            Some(v) => {
                self.b.ins().store(mem_flags(), v, host, 0);
                true
            }
            None => {
                let cached = self.vcached_bits(reg);
                let lo = match cached {
                    Some(v) => v,
                    None => self.load_state(off as usize),
                };
                match size {
                    1 => self.b.ins().istore8(mem_flags(), lo, host, 0),
                    2 => self.b.ins().istore16(mem_flags(), lo, host, 0),
                    4 => self.b.ins().istore32(mem_flags(), lo, host, 0),
                    _ => self.b.ins().store(mem_flags(), lo, host, 0),
                };
                cached.is_some()
            }
        };
        if size == 16 {
            let hi = if cached {
                self.b.ins().iconst(types::I64, 0)
            } else {
                self.load_state(off as usize + 8)
            };
            self.b.ins().store(mem_flags(), hi, host, 8);
        }
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(slow);
        // The runtime reads the register from the state.
        if self.vdirty & (1 << reg) != 0 {
            self.store_vreg(reg);
        }
        let sz = self.iconst(types::I64, size as u64);
        let rg = self.iconst(types::I64, reg as u64);
        let (ctx, cpu) = (self.ctx(), self.cpu());
        let status = self.call(Callee::StoreVec, &[ctx, cpu, addr, sz, rg]);
        self.store_status(status, join);
        self.b.switch_to_block(join);
    }

    /// At an instruction boundary after a store that reported written code: leave the
    /// region so the dispatcher drops stale translations before running more code.
    fn smc_check(&mut self, next_pc: u64) {
        if !std::mem::take(&mut self.store_pending) {
            return;
        }
        let smc = self.b.use_var(self.smc);
        let out = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(out);
        self.b.ins().brif(smc, out, &[], cont, &[]);
        self.b.switch_to_block(out);
        self.spill();
        let pc = self.iconst(types::I64, next_pc);
        self.set_pc(pc);
        self.ret(exit::CONTINUE);
        self.b.switch_to_block(cont);
        self.smc_reset();
    }

    /// Clears the written-code flag after a check (and at block starts), so it never lives
    /// across instructions: a loop would otherwise carry it (in a stack slot) and test it at
    /// every store.
    fn smc_reset(&mut self) {
        let zero = self.b.ins().iconst(types::I8, 0);
        self.b.def_var(self.smc, zero);
    }

    fn bin(&mut self, op: BinOp, w: Width, a: Value, b: Value) -> Value {
        let ty = width_ty(w);
        let (a, b) = (self.narrow(w, a), self.narrow(w, b));
        let ins = self.b.ins();
        let r = match op {
            BinOp::Add => ins.iadd(a, b),
            BinOp::Sub => ins.isub(a, b),
            BinOp::And => ins.band(a, b),
            BinOp::Or => ins.bor(a, b),
            BinOp::Xor => ins.bxor(a, b),
            // Cranelift takes shift and rotate amounts modulo the type width, as A64 does.
            BinOp::Shl => ins.ishl(a, b),
            BinOp::Lshr => ins.ushr(a, b),
            BinOp::Ashr => ins.sshr(a, b),
            BinOp::Ror => ins.rotr(a, b),
            BinOp::Mul => ins.imul(a, b),
            BinOp::UMulH => ins.umulhi(a, b),
            BinOp::SMulH => ins.smulhi(a, b),
            BinOp::UDiv => {
                // A64: x / 0 = 0. Divide by 1 instead of trapping, then select 0.
                let zero = self.b.ins().icmp_imm_u(IntCC::Equal, b, 0);
                let one = self.b.ins().iconst(ty, 1);
                let safe = self.b.ins().select(zero, one, b);
                let q = self.b.ins().udiv(a, safe);
                let z = self.b.ins().iconst(ty, 0);
                self.b.ins().select(zero, z, q)
            }
            BinOp::SDiv => {
                // x / 0 = 0 and MIN / -1 = MIN (no trap): divide by 1 in both cases.
                let zero = self.b.ins().icmp_imm_u(IntCC::Equal, b, 0);
                let min = if w == Width::W64 {
                    i64::MIN as u64
                } else {
                    i32::MIN as u32 as u64
                };
                let minv = self.iconst(ty, min);
                let is_min = self.b.ins().icmp(IntCC::Equal, a, minv);
                let neg1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let ovf = self.b.ins().band(is_min, neg1);
                let bad = self.b.ins().bor(zero, ovf);
                let one = self.b.ins().iconst(ty, 1);
                let safe = self.b.ins().select(bad, one, b);
                let q = self.b.ins().sdiv(a, safe);
                let z = self.b.ins().iconst(ty, 0);
                self.b.ins().select(zero, z, q)
            }
        };
        self.widen(w, r)
    }

    fn un(&mut self, op: UnOp, w: Width, a: Value) -> Value {
        let ty = width_ty(w);
        let a = self.narrow(w, a);
        let r = match op {
            UnOp::Not => self.b.ins().bnot(a),
            UnOp::Neg => self.b.ins().ineg(a),
            UnOp::Clz => self.b.ins().clz(a),
            UnOp::Cls => self.b.ins().cls(a),
            UnOp::Rbit => self.b.ins().bitrev(a),
            UnOp::Rev => self.b.ins().bswap(a),
            UnOp::Rev16 => {
                let m = self.iconst(ty, 0x00ff_00ff_00ff_00ff);
                let hi = self.b.ins().ushr_imm_u(a, 8);
                let hi = self.b.ins().band(hi, m);
                let lo = self.b.ins().band(a, m);
                let lo = self.b.ins().ishl_imm_u(lo, 8);
                self.b.ins().bor(hi, lo)
            }
            UnOp::Rev32 => {
                let s = self.b.ins().bswap(a);
                if w == Width::W64 {
                    self.b.ins().rotl_imm_u(s, 32)
                } else {
                    s
                }
            }
            UnOp::Sext8 | UnOp::Sext16 | UnOp::Sext32 => {
                let small = match op {
                    UnOp::Sext8 => types::I8,
                    UnOp::Sext16 => types::I16,
                    _ => types::I32,
                };
                let n = if ty == small {
                    a
                } else {
                    self.b.ins().ireduce(small, a)
                };
                if ty == small {
                    n
                } else {
                    self.b.ins().sextend(ty, n)
                }
            }
        };
        self.widen(w, r)
    }

    /// Packs N, Z, C, V (i8 booleans) into the architectural NZCV word.
    fn pack(&mut self, n: Value, z: Value, c: Value, v: Value) -> Value {
        let mut acc = None;
        for (bit, shift) in [(n, 31), (z, 30), (c, 29), (v, 28)] {
            let x = self.b.ins().uextend(types::I64, bit);
            let x = self.b.ins().ishl_imm_u(x, shift);
            acc = Some(match acc {
                None => x,
                Some(a) => self.b.ins().bor(a, x),
            });
        }
        acc.expect("four flags")
    }

    /// AddWithCarry(x, y, c) at x's type: (result, packed NZCV).
    fn awc(&mut self, x: Value, y: Value, c: Value) -> (Value, Value) {
        let s = self.b.ins().iadd(x, y);
        let r = self.b.ins().iadd(s, c);
        let n = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        let z = self.b.ins().icmp_imm_u(IntCC::Equal, r, 0);
        let c1 = self.b.ins().icmp(IntCC::UnsignedLessThan, s, x);
        let c2 = self.b.ins().icmp(IntCC::UnsignedLessThan, r, s);
        let cf = self.b.ins().bor(c1, c2);
        // Signed overflow: operands of equal sign, result of the other sign.
        let xr = self.b.ins().bxor(x, r);
        let yr = self.b.ins().bxor(y, r);
        let both = self.b.ins().band(xr, yr);
        let vf = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, both, 0);
        (r, self.pack(n, z, cf, vf))
    }

    /// Packed NZCV of a lazily recorded flag producer (`kind` and operands `fa`, `fb`).
    fn pack_kind(&mut self, kind: i64, fa: Value, fb: Value) -> Value {
        let w = if kind % 2 == 1 {
            Width::W64
        } else {
            Width::W32
        };
        let ty = width_ty(w);
        let (x, y) = (self.narrow(w, fa), self.narrow(w, fb));
        match kind {
            lazy::SUB64 | lazy::SUB32 => {
                let ny = self.b.ins().bnot(y);
                let one = self.b.ins().iconst(ty, 1);
                self.awc(x, ny, one).1
            }
            lazy::ADD64 | lazy::ADD32 => {
                let zero = self.b.ins().iconst(ty, 0);
                self.awc(x, y, zero).1
            }
            _ => {
                let n = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
                let z = self.b.ins().icmp_imm_u(IntCC::Equal, x, 0);
                let f = self.b.ins().iconst(types::I8, 0);
                self.pack(n, z, f, f)
            }
        }
    }

    /// Records flags lazily: kind and operands, not the packed word.
    fn def_lazy(&mut self, kind: i64, fa: Value, fb: Value) {
        self.b.def_var(self.fa, fa);
        self.b.def_var(self.fb, fb);
        let k = self.b.ins().iconst(types::I64, kind);
        self.b.def_var(self.fk, k);
        self.fk_static = Some(kind);
    }

    /// Records a packed NZCV word as the current flags.
    fn def_packed(&mut self, v: Value) {
        self.b.def_var(self.vars[NZCV], v);
        let k = self.b.ins().iconst(types::I64, lazy::PACKED);
        self.b.def_var(self.fk, k);
        self.fk_static = Some(lazy::PACKED);
    }

    /// The architectural NZCV word of the current flags.
    fn materialize(&mut self) -> Value {
        let (fa, fb) = (self.b.use_var(self.fa), self.b.use_var(self.fb));
        match self.fk_static {
            Some(lazy::PACKED) => return self.b.use_var(self.vars[NZCV]),
            Some(kind) => return self.pack_kind(kind, fa, fb),
            None => {}
        }
        // The producer depends on the path taken: dispatch on the recorded kind.
        let k = self.b.use_var(self.fk);
        let packed = self.b.use_var(self.vars[NZCV]);
        let join = self.b.create_block();
        let out = self.b.append_block_param(join, types::I64);
        for kind in [
            lazy::SUB64,
            lazy::SUB32,
            lazy::ADD64,
            lazy::ADD32,
            lazy::LOGIC64,
            lazy::LOGIC32,
        ] {
            let this = self.b.create_block();
            let rest = self.b.create_block();
            let is = self.b.ins().icmp_imm_u(IntCC::Equal, k, kind);
            self.b.ins().brif(is, this, &[], rest, &[]);
            self.b.switch_to_block(this);
            let v = self.pack_kind(kind, fa, fb);
            self.b.ins().jump(join, &[v.into()]);
            self.b.switch_to_block(rest);
        }
        self.b.ins().jump(join, &[packed.into()]);
        self.b.switch_to_block(join);
        // No def_packed here: exit paths materialize too, and what they define must not
        // leak into the static state of the code that continues after them.
        out
    }

    /// AddWithCarry at width w: defines NZCV and returns the i64 result.
    fn add_flags(&mut self, w: Width, a: Temp, b: Temp, carry: Temp) -> Value {
        let ty = width_ty(w);
        let (av, bv, cv) = (self.t(a), self.t(b), self.t(carry));
        let (x, y) = (self.narrow(w, av), self.narrow(w, bv));
        let carry_const = match self.defs[carry.0 as usize] {
            TempDef::Const(k) => Some(k & 1),
            _ => None,
        };
        let is64 = w == Width::W64;
        match (carry_const, self.defs[b.0 as usize]) {
            // SUBS/CMP: AddWithCarry(a, NOT(b), 1). Record a and b; flags when needed.
            (Some(1), TempDef::Not(nw, orig)) if nw == w => {
                let ov = self.t(orig);
                let o = self.narrow(w, ov);
                let r = self.b.ins().isub(x, o);
                self.flags = Some(Flags::Sub { a: x, b: o, r });
                self.def_lazy(if is64 { lazy::SUB64 } else { lazy::SUB32 }, av, ov);
                self.widen(w, r)
            }
            // SUBS/CMP with an immediate: the decoder folds NOT(imm) into the constant.
            (Some(1), TempDef::Const(k)) => {
                let imm = if is64 { !k } else { !k & 0xffff_ffff };
                let o = self.iconst(ty, imm);
                let r = self.b.ins().isub(x, o);
                self.flags = Some(Flags::Sub { a: x, b: o, r });
                let ov = self.b.ins().iconst(types::I64, imm as i64);
                self.def_lazy(if is64 { lazy::SUB64 } else { lazy::SUB32 }, av, ov);
                self.widen(w, r)
            }
            // ADDS/CMN.
            (Some(0), _) => {
                let r = self.b.ins().iadd(x, y);
                self.flags = Some(Flags::Add { r });
                self.def_lazy(if is64 { lazy::ADD64 } else { lazy::ADD32 }, av, bv);
                self.widen(w, r)
            }
            // ADCS/SBCS: eager.
            _ => {
                let c = self.narrow(w, cv);
                let one = self.b.ins().iconst(ty, 1);
                let c = self.b.ins().band(c, one);
                let (r, nzcv) = self.awc(x, y, c);
                self.def_packed(nzcv);
                self.flags = None;
                self.widen(w, r)
            }
        }
    }

    fn logic_flags(&mut self, w: Width, a: Temp) {
        let av = self.t(a);
        let r = self.narrow(w, av);
        self.flags = Some(Flags::Logic { r });
        let kind = if w == Width::W64 {
            lazy::LOGIC64
        } else {
            lazy::LOGIC32
        };
        let zero = self.b.ins().iconst(types::I64, 0);
        self.def_lazy(kind, av, zero);
    }

    /// Condition `cond` as an i8 boolean: from the known flag producer when possible.
    fn cond(&mut self, cond: u8) -> Value {
        if cond >= 14 {
            return self.b.ins().iconst(types::I8, 1);
        }
        let direct = match self.flags {
            Some(Flags::Sub { a, b, r, .. }) => {
                let cc = match cond {
                    0 => Some(IntCC::Equal),
                    1 => Some(IntCC::NotEqual),
                    2 => Some(IntCC::UnsignedGreaterThanOrEqual),
                    3 => Some(IntCC::UnsignedLessThan),
                    8 => Some(IntCC::UnsignedGreaterThan),
                    9 => Some(IntCC::UnsignedLessThanOrEqual),
                    10 => Some(IntCC::SignedGreaterThanOrEqual),
                    11 => Some(IntCC::SignedLessThan),
                    12 => Some(IntCC::SignedGreaterThan),
                    13 => Some(IntCC::SignedLessThanOrEqual),
                    _ => None,
                };
                match (cc, cond) {
                    (Some(cc), _) => Some(self.b.ins().icmp(cc, a, b)),
                    (None, 4) => Some(self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0)),
                    (None, 5) => Some(self.b.ins().icmp_imm_s(
                        IntCC::SignedGreaterThanOrEqual,
                        r,
                        0,
                    )),
                    _ => None,
                }
            }
            Some(Flags::Add { r, .. }) => match cond {
                0 => Some(self.b.ins().icmp_imm_u(IntCC::Equal, r, 0)),
                1 => Some(self.b.ins().icmp_imm_u(IntCC::NotEqual, r, 0)),
                4 => Some(self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0)),
                5 => Some(
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, r, 0),
                ),
                _ => None,
            },
            Some(Flags::Logic { r, .. }) => {
                // C = V = 0: GE is N == 0, GT is !Z && !N, HS/HI never, VS never.
                let cc = match cond {
                    0 => Some((IntCC::Equal, true)),
                    1 => Some((IntCC::NotEqual, true)),
                    4 | 11 => Some((IntCC::SignedLessThan, true)),
                    5 | 10 => Some((IntCC::SignedGreaterThanOrEqual, true)),
                    12 => Some((IntCC::SignedGreaterThan, true)),
                    13 => Some((IntCC::SignedLessThanOrEqual, true)),
                    2 | 6 | 8 => Some((IntCC::Equal, false)),
                    3 | 7 | 9 => Some((IntCC::NotEqual, false)),
                    _ => None,
                };
                match cc {
                    Some((cc, true)) => Some(self.b.ins().icmp_imm_u(cc, r, 0)),
                    Some((IntCC::Equal, false)) => Some(self.b.ins().iconst(types::I8, 0)),
                    Some(_) => Some(self.b.ins().iconst(types::I8, 1)),
                    None => None,
                }
            }
            None => None,
        };
        if let Some(v) = direct {
            return v;
        }
        // Generic: read the packed flags.
        let nzcv = self.materialize();
        let bit = |l: &mut Self, s: i64| {
            let x = l.b.ins().ushr_imm_u(nzcv, s);
            l.b.ins().band_imm_u(x, 1)
        };
        let (n, z, c, v) = (bit(self, 31), bit(self, 30), bit(self, 29), bit(self, 28));
        let base = match cond >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => {
                let nz = self.b.ins().bxor_imm_u(z, 1);
                self.b.ins().band(c, nz)
            }
            5 => {
                let x = self.b.ins().bxor(n, v);
                self.b.ins().bxor_imm_u(x, 1)
            }
            _ => {
                let x = self.b.ins().bxor(n, v);
                let nv = self.b.ins().bxor_imm_u(x, 1);
                let nz = self.b.ins().bxor_imm_u(z, 1);
                self.b.ins().band(nv, nz)
            }
        };
        let base = if cond & 1 == 1 {
            self.b.ins().bxor_imm_u(base, 1)
        } else {
            base
        };
        self.b.ins().icmp_imm_u(IntCC::NotEqual, base, 0)
    }

    /// Where a branch to `pc` goes: the block itself, an edge block that first stores the
    /// stale registers (into a loop), or an exit (which stores them too).
    fn target_block(&mut self, pc: u64) -> ir::Block {
        match self.internal.get(&pc) {
            Some(&b) if !self.enters_loop(pc) => b,
            Some(_) => self.defer(Deferred::Edge(pc)),
            None => self.defer(Deferred::Exit(pc)),
        }
    }

    /// Whether a branch from the current block to `pc` enters a loop with registers stale.
    fn enters_loop(&self, pc: u64) -> bool {
        self.dirty.iter().any(|&d| d) && self.loop_entries.contains(&(self.block_pc, pc))
    }

    fn lower_block(&mut self, blk: &Block) {
        let cl = self.blocks[&blk.pc];
        self.block_pc = blk.pc;
        self.b.switch_to_block(cl);
        if self.env.is_cold(blk.pc) && blk.pc != self.region_entry {
            self.b.set_cold_block(cl);
        }
        let counter = self.env.block_counter(blk.pc);
        if let Some(addr) = counter {
            self.bump_counter(addr, None);
        }
        self.temps = vec![None; blk.temps as usize];
        self.defs = vec![TempDef::Other; blk.temps as usize];
        self.flags = None;
        self.fault_exit = None;
        self.store_pending = false;
        self.smc_reset();
        self.start_block_vregs();
        let stale = self.stale.get(&blk.pc).copied().unwrap_or(0);
        self.dirty = std::array::from_fn(|r| r < 64 && stale & (1 << r) != 0);
        self.ctx_cache = [None; 2];
        self.ro_cache = [None; 32];
        // Only the region's entry, when nothing branches back to it, starts with the flags
        // loaded from the CPU state; elsewhere the kind depends on the path.
        self.fk_static = (blk.pc == self.region_entry && !self.internal_targets.contains(&blk.pc))
            .then_some(lazy::PACKED);
        let switch = self.switch_plan(blk);
        for (i, op) in blk.ops.iter().enumerate() {
            if let (Some(plan), Op::Load { addr, .. }) = (&switch, op) {
                if plan.load == i {
                    let a = self.t(*addr);
                    self.lower_switch(plan, a);
                }
            }
            if op.kind() == OpKind::Store {
                self.final_store = blk.ops[i + 1..]
                    .iter()
                    .take_while(|o| !matches!(o, Op::Insn { .. }))
                    .all(|o| {
                        matches!(o.kind(), OpKind::Pure | OpKind::ReadState)
                            || matches!(o, Op::Jump { .. })
                    });
            }
            if op.kind() == OpKind::Terminator {
                // Every way out of the block (and the next block) reads V from the state,
                // but for the promoted registers.
                self.end_block_vregs();
            }
            match *op {
                Op::Insn { pc, .. } => {
                    self.smc_check(pc);
                    self.cur_pc = pc;
                    // The offset from the region's entry (VMC_JIT_DUMP's host-to-guest map).
                    let at = pc.wrapping_sub(self.region_entry) as u32;
                    self.b.set_srcloc(ir::SourceLoc::new(at));
                }
                Op::Const { dst, value } => {
                    let v = self.iconst(types::I64, value);
                    self.def(dst, v, TempDef::Const(value));
                }
                Op::Get { dst, reg } => {
                    let v = match reg {
                        Reg::X(n) if self.tracked[n as usize] => {
                            self.b.use_var(self.vars[n as usize])
                        }
                        Reg::X(n) => match self.ro_cache[n as usize] {
                            Some(v) => v,
                            None => {
                                let v = self.load_state(reg_offset(n as usize) as usize);
                                self.ro_cache[n as usize] = Some(v);
                                v
                            }
                        },
                        Reg::Nzcv => self.materialize(),
                        Reg::Tpidr => self.load_state(offset_of!(CpuState, tpidr_el0)),
                        Reg::Fpcr => self.load_state(offset_of!(CpuState, fpcr)),
                        Reg::Fpsr => self.load_state(offset_of!(CpuState, fpsr)),
                    };
                    self.def(dst, v, TempDef::Other);
                }
                Op::Set { reg, src } => {
                    let v = self.t(src);
                    match reg {
                        Reg::X(n) => self.set_reg(n as usize, v),
                        Reg::Nzcv => {
                            let m = self.b.ins().band_imm_u(v, 0xf000_0000);
                            self.def_packed(m);
                            self.flags = None;
                        }
                        Reg::Tpidr => self.store_state(v, offset_of!(CpuState, tpidr_el0)),
                        Reg::Fpcr => {
                            let m = self.b.ins().band_imm_u(v, crate::a64::fp::FPCR_MASK as i64);
                            self.store_state(m, offset_of!(CpuState, fpcr));
                            self.reload_fpmode();
                        }
                        Reg::Fpsr => {
                            let m = self.b.ins().band_imm_u(v, crate::a64::fp::FPSR_MASK as i64);
                            self.store_state(m, offset_of!(CpuState, fpsr));
                            self.reload_fpmode();
                        }
                    }
                }
                Op::Bin { dst, op, w, a, b } => {
                    let (a, b) = (self.t(a), self.t(b));
                    let v = self.bin(op, w, a, b);
                    self.def(dst, v, TempDef::Other);
                }
                Op::Un { dst, op, w, a } => {
                    let av = self.t(a);
                    let v = self.un(op, w, av);
                    let how = if op == UnOp::Not {
                        TempDef::Not(w, a)
                    } else {
                        TempDef::Other
                    };
                    self.def(dst, v, how);
                }
                Op::AddFlags {
                    dst,
                    w,
                    a,
                    b,
                    carry,
                } => {
                    let v = self.add_flags(w, a, b, carry);
                    self.def(dst, v, TempDef::Other);
                }
                Op::LogicFlags { w, a } => self.logic_flags(w, a),
                Op::Cond { dst, cond } => {
                    let c = self.cond(cond);
                    let v = self.b.ins().uextend(types::I64, c);
                    self.def(dst, v, TempDef::Other);
                }
                Op::Select { dst, c, a, b } => {
                    let (c, a, b) = (self.t(c), self.t(a), self.t(b));
                    let v = self.b.ins().select(c, a, b);
                    self.def(dst, v, TempDef::Other);
                }
                Op::Load { dst, addr, size } => {
                    let a = self.t(addr);
                    let v = self.load(a, size);
                    self.def(dst, v, TempDef::Other);
                }
                Op::Store { addr, src, size } => {
                    let (a, v) = (self.t(addr), self.t(src));
                    self.store(a, v, size);
                }
                Op::LoadVec { reg, addr, size } => {
                    let a = self.t(addr);
                    self.load_vec(reg, a, size);
                }
                Op::StoreVec { reg, addr, size } => {
                    let a = self.t(addr);
                    self.store_vec(reg, a, size);
                }
                Op::Call { helper, insn } => {
                    if !self.fp_inline(helper, insn) {
                        self.call_helper(helper, insn);
                    }
                }
                Op::Jump { target, kind } => {
                    self.smc_check(target);
                    match self.internal.get(&target) {
                        Some(_) if kind != BranchKind::Jump => {
                            // A call inside the region ([`Flow::stored`]).
                            self.flush();
                            self.b.ins().jump(self.landing[&target], &[]);
                        }
                        Some(&t) => {
                            if self.enters_loop(target) {
                                self.store_dirty();
                            }
                            self.b.ins().jump(t, &[]);
                        }
                        None => {
                            let ret_site = self.host_call_return(kind);
                            self.exit_to(target, ret_site)
                        }
                    }
                }
                Op::JumpReg { target, kind } => {
                    let t = self.t(target);
                    if self.env.profiling() {
                        let ctx = self.ctx();
                        let site = self.iconst(types::I64, self.cur_pc);
                        let k = self.iconst(types::I64, kind as u64);
                        self.call(Callee::ProfileIndirect, &[ctx, site, t, k]);
                    }
                    if kind != BranchKind::Jump {
                        // Calls and returns reach the region again only at return sites
                        // and profiled targets, with the state stored ([`Flow::stored`]).
                        self.flush();
                    }
                    self.smc_check_dynamic(t);
                    self.known_targets(t, kind);
                    self.spill();
                    self.set_pc(t);
                    let ret_site = match kind {
                        BranchKind::Call => self.host_call_return(kind),
                        BranchKind::Return => {
                            if let Some(slot) = self.expect {
                                // The return the host caller expects: a host return.
                                let expect =
                                    self.b.ins().stack_load(types::I64, types::I64, slot, 0);
                                let hit = self.b.ins().icmp(IntCC::Equal, t, expect);
                                let (ret, other) = (self.b.create_block(), self.b.create_block());
                                self.b.ins().brif(hit, ret, &[], other, &[]);
                                self.b.switch_to_block(ret);
                                self.ret(exit::CONTINUE);
                                self.b.switch_to_block(other);
                            }
                            None
                        }
                        BranchKind::Jump => None,
                    };
                    self.indirect_exit(t, ret_site);
                }
                Op::Branch {
                    c,
                    taken,
                    fallthrough,
                } => {
                    let cv = self.t(c);
                    if let Some(addr) = counter {
                        let taken = self.b.ins().icmp_imm_u(IntCC::NotEqual, cv, 0);
                        let taken = self.b.ins().uextend(types::I64, taken);
                        self.bump_counter(addr + 8, Some(taken));
                    }
                    // A store before the branch of the same instruction is impossible; but a
                    // store earlier in the block may have hit code: leave at the next pc.
                    if self.store_pending {
                        self.smc_check_dynamic_branch(cv, taken, fallthrough);
                    }
                    let t = self.target_block(taken);
                    let f = self.target_block(fallthrough);
                    self.b.ins().brif(cv, t, &[], f, &[]);
                }
                Op::Syscall { next } => {
                    self.spill();
                    let pc = self.iconst(types::I64, next);
                    self.set_pc(pc);
                    self.ret(exit::SYSCALL);
                }
                Op::Trap { kind, pc, insn } => {
                    self.spill();
                    let pcv = self.iconst(types::I64, pc);
                    self.set_pc(pcv);
                    let k = self.iconst(types::I64, trap_code(kind));
                    let w = self.iconst(types::I64, insn as u64);
                    let ctx = self.ctx();
                    self.b.ins().store(
                        state_flags(),
                        k,
                        ctx,
                        offset_of!(JitContext, trap_kind) as i32,
                    );
                    self.b.ins().store(
                        state_flags(),
                        w,
                        ctx,
                        offset_of!(JitContext, trap_insn) as i32,
                    );
                    self.ret(exit::TRAP);
                }
            }
        }
        self.flush_deferred();
    }

    /// The folded switch ending `blk`, if its jump table is known and fixed (not when
    /// recording a profile: the indirect jump reports its targets).
    fn switch_plan(&mut self, blk: &Block) -> Option<switch::Plan> {
        if self.env.profiling() {
            return None;
        }
        let Some(Op::JumpReg {
            kind: BranchKind::Jump,
            ..
        }) = blk.ops.last()
        else {
            return None;
        };
        let pc = blk.last_insn_pc()?;
        let table = self.env.jump_table(pc)?;
        let mut plan = switch::plan(blk, &table)?;
        // Only the branch's known targets: a block of the region is entered only along an
        // edge the region's dataflow knows, and bytes beyond a table whose bound the caller
        // does not know (the JIT's) are no cases. Other entries take the block's own way.
        let known: HashSet<u64> = self
            .env
            .indirect_targets(pc, BranchKind::Jump)
            .into_iter()
            .collect();
        for c in &mut plan.cases {
            if c.as_ref().is_some_and(|c| !known.contains(&c.target)) {
                *c = None;
            }
        }
        while plan.cases.last() == Some(&None) {
            plan.cases.pop();
        }
        (!plan.cases.is_empty()).then_some(plan)
    }

    /// Before the table load of a folded switch at guest address `addr`: an entry of the
    /// table goes to its case (the registers the rest of the block would set, then its
    /// target); any other address falls through to the block's own instructions.
    fn lower_switch(&mut self, plan: &switch::Plan, addr: Value) {
        let off = self
            .b
            .ins()
            .iadd_imm_s(addr, plan.table.wrapping_neg() as i64);
        // Misaligned offsets rotate into the high bits: one compare checks both.
        let key = self.b.ins().rotr_imm_u(off, plan.shift as i64);
        let fallback = self.b.create_block();
        let inside = self.b.create_block();
        let n = plan.cases.len() as i64;
        let out = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, key, n);
        self.b.ins().brif(out, fallback, &[], inside, &[]);
        self.b.switch_to_block(inside);
        let mut blocks: HashMap<&switch::Case, ir::Block> = HashMap::new();
        let mut distinct = Vec::new();
        let table: Vec<ir::Block> = plan
            .cases
            .iter()
            .map(|c| match c {
                None => fallback,
                Some(c) => *blocks.entry(c).or_insert_with(|| {
                    let blk = self.b.create_block();
                    distinct.push((c, blk));
                    blk
                }),
            })
            .collect();
        let calls: Vec<_> = table
            .iter()
            .map(|&blk| self.b.func.dfg.block_call(blk, &[]))
            .collect();
        let default = self.b.func.dfg.block_call(fallback, &[]);
        let jt = self
            .b
            .create_jump_table(ir::JumpTableData::new(default, &calls));
        let idx = self.b.ins().ireduce(types::I32, key);
        self.b.ins().br_table(idx, jt);
        // Each case leaves the block as its jump would: the V registers are written back
        // (the fallback path does that at the terminator, with the same state).
        let (vcache, vdirty) = (self.vcache, self.vdirty);
        for (case, blk) in distinct {
            self.b.switch_to_block(blk);
            for &(r, v) in &case.sets {
                let c = self.iconst(types::I64, v);
                self.set_reg(r as usize, c);
            }
            self.end_block_vregs();
            (self.vcache, self.vdirty) = (vcache, vdirty);
            let t = self.target_block(case.target);
            self.b.ins().jump(t, &[]);
        }
        self.b.switch_to_block(fallback);
    }

    /// Adds `by` (default 1) to the profile counter at host address `addr`.
    fn bump_counter(&mut self, addr: u64, by: Option<Value>) {
        let a = self.iconst(types::I64, addr);
        let c = self.b.ins().load(types::I64, state_flags(), a, 0);
        let c = match by {
            Some(v) => self.b.ins().iadd(c, v),
            None => self.b.ins().iadd_imm_s(c, 1),
        };
        self.b.ins().store(state_flags(), c, a, 0);
    }

    fn load_state(&mut self, off: usize) -> Value {
        let cpu = self.cpu();
        self.b
            .ins()
            .load(types::I64, state_flags(), cpu, off as i32)
    }

    fn store_state(&mut self, v: Value, off: usize) {
        let cpu = self.cpu();
        self.b.ins().store(state_flags(), v, cpu, off as i32);
    }

    fn call_helper(&mut self, helper: &'static Helper, insn: u32) {
        self.call_helper_via(Callee::Helper, helper, insn);
    }

    /// Calls `helper` from the cold path of an inline fast path ([`Callee::HelperCold`]).
    fn call_helper_cold(&mut self, helper: &'static Helper, insn: u32) {
        self.call_helper_via(Callee::HelperCold, helper, insn);
    }

    fn call_helper_via(&mut self, callee: Callee, helper: &'static Helper, insn: u32) {
        // Any helper may read (and write) any V register. On the cold path of an inline FP
        // op the caller restores the cache and dirty mask of the hot path at the join.
        self.store_vdirty();
        self.vdirty = 0;
        if helper.gpr {
            self.spill();
            if callee == Callee::Helper {
                // Main path: the state is current from here on (reload() redefines all).
                self.dirty = [false; NREGS];
            }
        }
        let pc = self.iconst(types::I64, self.cur_pc);
        self.set_pc(pc);
        let h = self.env.helper(&mut self.b, helper);
        let w = self.iconst(types::I64, insn as u64);
        let (ctx, cpu) = (self.ctx(), self.cpu());
        let status = self.call(callee, &[ctx, cpu, h, w]);
        self.vcache = [None; 32];
        let fault = if helper.gpr {
            // The helper may have written registers before faulting: state is in memory.
            self.defer(Deferred::Return(exit::FAULT))
        } else {
            self.fault_block()
        };
        let cont = self.b.create_block();
        self.b.ins().brif(status, fault, &[], cont, &[]);
        self.b.switch_to_block(cont);
        if callee == Callee::Helper {
            // (On the cold path of an inline op the caller restores the cache.)
            self.reload_promoted();
        }
        if helper.gpr {
            self.reload();
            self.ro_cache = [None; 32];
        }
        // FP helpers update FPSR (and set IXC, which lets later fast paths through).
        self.reload_fpmode();
    }

    /// Like [`Self::smc_check`] before an indirect branch: leave with pc = the target.
    fn smc_check_dynamic(&mut self, target: Value) {
        if !std::mem::take(&mut self.store_pending) {
            return;
        }
        let smc = self.b.use_var(self.smc);
        let out = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(out);
        self.b.ins().brif(smc, out, &[], cont, &[]);
        self.b.switch_to_block(out);
        self.spill();
        self.set_pc(target);
        self.ret(exit::CONTINUE);
        self.b.switch_to_block(cont);
        self.smc_reset();
    }

    /// Before a conditional branch: when code was written, leave with pc = the chosen target.
    fn smc_check_dynamic_branch(&mut self, c: Value, taken: u64, fallthrough: u64) {
        let t = self.iconst(types::I64, taken);
        let f = self.iconst(types::I64, fallthrough);
        let target = self.b.ins().select(c, t, f);
        self.smc_check_dynamic(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flow graph from (pc, set mask, successors).
    fn graph(blocks: &[(u64, u64, &[u64])]) -> HashMap<u64, Flow> {
        blocks
            .iter()
            .map(|&(pc, set, succ)| {
                let succ = succ.to_vec();
                let flow = Flow {
                    used: 0,
                    set,
                    vset: 0,
                    succ,
                    stored: false,
                };
                (pc, flow)
            })
            .collect()
    }

    #[test]
    fn loop_entries_are_the_edges_from_outside_the_innermost_loop() {
        // 1 -> 2; 2 -> 2 (inner loop) | 3; 3 -> 2 (outer loop, same header) | 4.
        let g = graph(&[
            (1, 0b1, &[2]),
            (2, 0b10, &[2, 3]),
            (3, 0b100, &[2, 4]),
            (4, 0, &[]),
        ]);
        let (cut, in_loop) = loops(&g, &[1]);
        assert_eq!(cut, HashSet::from([(1, 2), (3, 2)]));
        assert_eq!(in_loop, HashSet::from([2, 3]));
        // Inside the inner loop only what it sets is stale; after it, also what 2 set.
        let start = HashMap::from([(1, 0)]);
        let stale = forward(&g, &start, true, &cut);
        assert_eq!((stale[&2], stale[&3], stale[&4]), (0b10, 0b10, 0b110));
        // Without the cuts, everything set on the way flows around the loops.
        let all = forward(&g, &start, true, &HashSet::new());
        assert_eq!(all[&2], 0b111);
    }

    #[test]
    fn a_loop_with_several_back_edges_is_one_loop() {
        // An interpreter: 1 -> 2 (dispatch); 2 -> 3 | 4 | 5 (cases); 3 -> 2; 4 -> 2; 5 -> 6.
        // Only the way in stores; the cases' back edges are the loop's own.
        let g = graph(&[
            (1, 0b1, &[2]),
            (2, 0b10, &[3, 4, 5]),
            (3, 0b100, &[2]),
            (4, 0b1000, &[2]),
            (5, 0, &[6]),
            (6, 0, &[]),
        ]);
        let (cut, in_loop) = loops(&g, &[1]);
        assert_eq!(cut, HashSet::from([(1, 2)]));
        assert_eq!(in_loop, HashSet::from([2, 3, 4]));
        let stale = forward(&g, &HashMap::from([(1, 0)]), true, &cut);
        assert_eq!(stale[&2], 0b1110);
    }

    #[test]
    fn registers_not_set_on_every_path_are_not_defined() {
        // 1 -> 2 | 3; 2 sets x0; 3 -> 4; 2 -> 4: x0 is stale at 4 but not always defined.
        let g = graph(&[(1, 0, &[2, 3]), (2, 0b1, &[4]), (3, 0, &[4]), (4, 0, &[])]);
        let stale = forward(&g, &HashMap::from([(1, 0)]), true, &HashSet::new());
        let defined = forward(&g, &HashMap::from([(1, 0b10)]), false, &HashSet::new());
        assert_eq!(stale[&4], 0b1);
        assert_eq!(defined[&4], 0b10);
        assert_eq!(defined[&2], 0b10);
    }

    #[test]
    fn calls_end_liveness_and_carry_no_stale_registers() {
        // 1 reads x1, sets x0, calls 2 (a region entry, as a recursive call's target is);
        // 2 reads x2 and sets x3, then 3 -> 1 (a loop through the call).
        let mut g = graph(&[(1, 0b1, &[2]), (2, 0b1000, &[3]), (3, 0, &[1])]);
        let f = g.get_mut(&1).expect("block 1");
        (f.used, f.stored) = (0b10, true);
        g.get_mut(&2).expect("block 2").used = 0b100;
        let live = read_before_set(&g);
        // What 2 (and 3 -> 1 after it) reads is its own landing's to load, not 1's.
        assert_eq!((live[&1], live[&2], live[&3]), (0b10, 0b110, 0b10));
        let starts = HashMap::from([(1, 0), (2, 0)]);
        let stale = forward(&g, &starts, true, &HashSet::new());
        assert_eq!((stale[&2], stale[&3], stale[&1]), (0, 0b1000, 0b1000));
        // A loop only through a call is no loop.
        assert!(loops(&g, &[1, 2]).1.is_empty());
    }
}
