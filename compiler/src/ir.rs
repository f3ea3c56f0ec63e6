//! The guest IR: one table ([`define_ops!`]) lists every operation with its operands, its
//! kind (what it touches) and a doc line. The printer, the verifier and the interpreter are
//! driven by it; the Cranelift lowering will be too.
//!
//! A [`Block`] is straight-line SSA over 64-bit temporaries: each temporary is defined once
//! (the `dst` field) before any use, and the block ends with exactly one terminator.
//! Floating-point, SIMD, atomic and system instructions run as [`Helper`] calls on the whole
//! CPU state, like QEMU's helpers, so every tier shares one bit-exact implementation.

use std::fmt::{self, Display, Formatter};

use crate::mem::{Fault, Memory};
use crate::state::CpuState;

/// A use of a temporary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Temp(pub u16);

/// The definition of a temporary (the result of an op).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dst(pub u16);

impl Dst {
    /// The temporary this defines, for use by later ops.
    pub fn t(self) -> Temp {
        Temp(self.0)
    }
}

/// Operation width of integer ALU ops; 32-bit results are zero-extended to 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit (W registers).
    W32,
    /// 64-bit (X registers).
    W64,
}

impl Width {
    /// Number of bits.
    pub fn bits(self) -> u32 {
        match self {
            Width::W32 => 32,
            Width::W64 => 64,
        }
    }
    /// All-ones mask of the width.
    pub fn mask(self) -> u64 {
        match self {
            Width::W32 => 0xffff_ffff,
            Width::W64 => u64::MAX,
        }
    }
    /// `W64` when `sf` is set.
    pub fn from_sf(sf: bool) -> Width {
        if sf {
            Width::W64
        } else {
            Width::W32
        }
    }
}

/// Architectural registers an IR op may read or write directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// General register X0..X30, or SP as number 31.
    X(u8),
    /// The NZCV flags (bits 31..28).
    Nzcv,
    /// TPIDR_EL0.
    Tpidr,
    /// FPCR.
    Fpcr,
    /// FPSR.
    Fpsr,
}

/// Two-operand integer operations (the `Bin` op).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// Wrapping addition.
    Add,
    /// Wrapping subtraction.
    Sub,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise exclusive or.
    Xor,
    /// Shift left; the amount is taken modulo the width (LSLV semantics).
    Shl,
    /// Logical shift right, amount modulo the width.
    Lshr,
    /// Arithmetic shift right, amount modulo the width.
    Ashr,
    /// Rotate right, amount modulo the width.
    Ror,
    /// Wrapping multiplication.
    Mul,
    /// High 64 bits of the unsigned 128-bit product (64-bit only).
    UMulH,
    /// High 64 bits of the signed 128-bit product (64-bit only).
    SMulH,
    /// Unsigned division; division by zero gives 0 (A64 semantics).
    UDiv,
    /// Signed division; by zero gives 0, MIN / -1 gives MIN.
    SDiv,
}

/// One-operand integer operations (the `Un` op).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Bitwise not.
    Not,
    /// Two's complement negation.
    Neg,
    /// Count leading zeros.
    Clz,
    /// Count leading sign bits (excluding the sign bit itself).
    Cls,
    /// Reverse bit order.
    Rbit,
    /// Reverse byte order of the whole width.
    Rev,
    /// Reverse bytes in each 16-bit halfword.
    Rev16,
    /// Reverse bytes in each 32-bit word (64-bit only).
    Rev32,
    /// Sign-extend from 8 bits.
    Sext8,
    /// Sign-extend from 16 bits.
    Sext16,
    /// Sign-extend from 32 bits.
    Sext32,
}

/// Why a block stops the guest instead of continuing at a program counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrapKind {
    /// Unallocated or unimplemented encoding: SIGILL.
    Undefined,
    /// `BRK #imm`: SIGTRAP.
    Breakpoint,
    /// `UDF #imm` (permanently undefined): SIGILL.
    PermanentlyUndefined,
    /// Instruction fetch from an unmapped or non-executable address: SIGSEGV.
    FetchFault,
}

/// Kinds of branch, recorded for later return-address prediction and profiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BranchKind {
    /// Plain jump (B, BR).
    Jump = 0,
    /// Call (BL, BLR).
    Call = 1,
    /// Return (RET).
    Return = 2,
}

/// Signature of an instruction helper: executes one guest instruction on the whole state.
pub type HelperFn = fn(&mut CpuState, &mut dyn Memory, u32) -> Result<(), Fault>;

/// An instruction helper: a named Rust implementation of one instruction class.
pub struct Helper {
    /// Name shown by the printer and in statistics.
    pub name: &'static str,
    /// The implementation.
    pub func: HelperFn,
    /// Whether it may read or write X registers, SP or NZCV. The JIT keeps those in host
    /// registers and must write them back before, and reload them after, such a call; helpers
    /// that only touch V registers, FPCR and FPSR need neither.
    pub gpr: bool,
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Helper {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// What an op touches; drives the verifier, dead-code rules and (later) the lowering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Computes its result from its operands only.
    Pure,
    /// Reads architectural state.
    ReadState,
    /// Writes architectural state.
    WriteState,
    /// Loads from guest memory (may fault).
    Load,
    /// Stores to guest memory (may fault).
    Store,
    /// Calls a helper that may read and write any state and memory (may fault).
    Call,
    /// Marks the start of a guest instruction.
    Marker,
    /// Ends the block.
    Terminator,
}

/// How an operand field takes part in printing and def/use analysis.
pub trait Field {
    /// Writes the field in IR text form.
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result;
    /// The temporary this field uses, if any.
    fn used(&self) -> Option<Temp> {
        None
    }
    /// The temporary this field defines, if any.
    fn defined(&self) -> Option<Dst> {
        None
    }
}

impl Field for Temp {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
    fn used(&self) -> Option<Temp> {
        Some(*self)
    }
}
impl Field for Dst {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
    fn defined(&self) -> Option<Dst> {
        Some(*self)
    }
}
impl Field for u64 {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{self:#x}")
    }
}
impl Field for u32 {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{self:#010x}")
    }
}
impl Field for u8 {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
impl Field for Width {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bits())
    }
}
impl Field for Reg {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Reg::X(31) => f.write_str("sp"),
            Reg::X(n) => write!(f, "x{n}"),
            Reg::Nzcv => f.write_str("nzcv"),
            Reg::Tpidr => f.write_str("tpidr_el0"),
            Reg::Fpcr => f.write_str("fpcr"),
            Reg::Fpsr => f.write_str("fpsr"),
        }
    }
}
impl Field for &'static Helper {
    fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
macro_rules! debug_lower_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn fmt_ir(&self, f: &mut Formatter<'_>) -> fmt::Result {
                write!(f, "{}", format!("{self:?}").to_lowercase())
            }
        }
    )*};
}
debug_lower_field!(BinOp, UnOp, TrapKind, BranchKind);

/// Static description of one op, from the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    /// Op name as printed.
    pub name: &'static str,
    /// What it touches.
    pub kind: OpKind,
    /// One-line documentation.
    pub doc: &'static str,
}

macro_rules! define_ops {
    ($( #[doc = $doc:literal] $name:ident { $($field:ident : $ty:ty),* $(,)? } : $kind:ident ;)+) => {
        /// One IR operation. See [`Op::TABLE`] for the list with docs.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $( #[doc = $doc] $name { $( #[allow(missing_docs)] $field: $ty ),* }, )+
        }

        impl Op {
            /// Every op: name, kind and doc line.
            pub const TABLE: &'static [OpInfo] = &[
                $( OpInfo { name: stringify!($name), kind: OpKind::$kind, doc: $doc.trim_ascii() }, )+
            ];

            /// The op's name.
            pub fn name(&self) -> &'static str {
                match self { $( Op::$name { .. } => stringify!($name), )+ }
            }

            /// What the op touches.
            pub fn kind(&self) -> OpKind {
                match self { $( Op::$name { .. } => OpKind::$kind, )+ }
            }

            /// Calls `f` on every operand field, in declaration order.
            pub fn for_each_field(&self, f: &mut dyn FnMut(&'static str, &dyn Field)) {
                match self {
                    $( #[allow(unused_variables)] Op::$name { $($field),* } => { $( f(stringify!($field), $field); )* } )+
                }
            }
        }
    };
}

define_ops! {
    /// Start of the guest instruction at `pc` (its word is `insn`); faults report this pc.
    Insn { pc: u64, insn: u32 } : Marker;
    /// dst = value.
    Const { dst: Dst, value: u64 } : Pure;
    /// dst = an architectural register.
    Get { dst: Dst, reg: Reg } : ReadState;
    /// An architectural register = src.
    Set { reg: Reg, src: Temp } : WriteState;
    /// dst = a op b at width w (32-bit results zero-extended).
    Bin { dst: Dst, op: BinOp, w: Width, a: Temp, b: Temp } : Pure;
    /// dst = op a at width w.
    Un { dst: Dst, op: UnOp, w: Width, a: Temp } : Pure;
    /// dst = a + b + carry (AddWithCarry) at width w, and NZCV = its flags.
    AddFlags { dst: Dst, w: Width, a: Temp, b: Temp, carry: Temp } : WriteState;
    /// NZCV = N and Z of a at width w, C = V = 0 (logical ops with S).
    LogicFlags { w: Width, a: Temp } : WriteState;
    /// dst = 1 if condition code `cond` holds for NZCV, else 0.
    Cond { dst: Dst, cond: u8 } : ReadState;
    /// dst = c != 0 ? a : b.
    Select { dst: Dst, c: Temp, a: Temp, b: Temp } : Pure;
    /// dst = the `size`-byte value at guest address addr, zero-extended.
    Load { dst: Dst, addr: Temp, size: u8 } : Load;
    /// The low `size` bytes of src are stored at guest address addr.
    Store { addr: Temp, src: Temp, size: u8 } : Store;
    /// V[reg] = the `size`-byte (1..16) value at guest address addr, upper bytes zeroed.
    LoadVec { reg: u8, addr: Temp, size: u8 } : Load;
    /// The low `size` bytes (1..16) of V[reg] are stored at guest address addr.
    StoreVec { reg: u8, addr: Temp, size: u8 } : Store;
    /// Runs a helper on the whole state for instruction word `insn`.
    Call { helper: &'static Helper, insn: u32 } : Call;
    /// Continue at the constant address `target`.
    Jump { target: u64, kind: BranchKind } : Terminator;
    /// Continue at the address in `target`.
    JumpReg { target: Temp, kind: BranchKind } : Terminator;
    /// Continue at `taken` if c != 0, else at `fallthrough`.
    Branch { c: Temp, taken: u64, fallthrough: u64 } : Terminator;
    /// Supervisor call: the runtime performs the system call, then continues at `next`.
    Syscall { next: u64 } : Terminator;
    /// Stop the guest with a signal for the instruction at `pc` (its word `insn`).
    Trap { kind: TrapKind, pc: u64, insn: u32 } : Terminator;
}

/// A translated guest basic block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Guest address of the first instruction.
    pub pc: u64,
    /// Number of guest instructions.
    pub guest_insns: u32,
    /// Number of temporaries defined.
    pub temps: u16,
    /// The ops, ending with one terminator.
    pub ops: Vec<Op>,
}

impl Block {
    /// Direct successors: the target of a plain jump, or both sides of a conditional branch
    /// (not calls, whose callee starts elsewhere, nor computed targets).
    pub fn direct_successors(&self) -> Vec<u64> {
        match self.ops.last() {
            Some(Op::Jump {
                target,
                kind: BranchKind::Jump,
            }) => vec![*target],
            Some(Op::Branch {
                taken, fallthrough, ..
            }) => vec![*taken, *fallthrough],
            _ => vec![],
        }
    }

    /// Where the call ending the block (BL, BLR) returns to; `None` for other blocks.
    pub fn return_site(&self) -> Option<u64> {
        match self.ops.last() {
            Some(Op::Jump {
                kind: BranchKind::Call,
                ..
            })
            | Some(Op::JumpReg {
                kind: BranchKind::Call,
                ..
            }) => Some(self.guest_range().end),
            _ => None,
        }
    }

    /// The index of the op marking the block's instruction at `pc`, when that is one of its
    /// instructions after the first: where [`Self::end_before`] can end it.
    fn inner_insn(&self, pc: u64) -> Option<usize> {
        (pc > self.pc && self.guest_range().contains(&pc))
            .then(|| {
                self.ops
                    .iter()
                    .position(|op| matches!(op, Op::Insn { pc: p, .. } if *p == pc))
            })
            .flatten()
    }

    /// Whether `pc` starts one of the block's instructions after its first.
    pub fn has_inner_insn(&self, pc: u64) -> bool {
        self.inner_insn(pc).is_some()
    }

    /// Ends the block before its instruction at `pc` (which must start an instruction of the
    /// block after its first: [`Self::has_inner_insn`]) with a jump there: the block then
    /// stops where another begins.
    pub fn end_before(&mut self, pc: u64) {
        let at = self
            .inner_insn(pc)
            .expect("the split point is an instruction of the block after its first");
        self.ops.truncate(at);
        self.ops.push(Op::Jump {
            target: pc,
            kind: BranchKind::Jump,
        });
        self.guest_insns = ((pc - self.pc) / 4) as u32;
    }

    /// The guest address of the block's last instruction.
    pub fn last_insn_pc(&self) -> Option<u64> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::Insn { pc, .. } => Some(*pc),
            _ => None,
        })
    }
}

impl Block {
    /// Guest byte range covered by the block.
    pub fn guest_range(&self) -> std::ops::Range<u64> {
        self.pc..self.pc + 4 * self.guest_insns as u64
    }
}

/// Writes one op in IR text form: `t3 = Bin op=add w=64 a=t1 b=t2`.
pub struct DisplayOp<'a>(pub &'a Op);

impl Display for DisplayOp<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut res = Ok(());
        self.0.for_each_field(&mut |_, field| {
            if let Some(d) = field.defined() {
                res = res.and_then(|_| write!(f, "t{} = ", d.0));
            }
        });
        res?;
        f.write_str(self.0.name())?;
        let mut res = Ok(());
        self.0.for_each_field(&mut |name, field| {
            if field.defined().is_none() {
                res = res
                    .and_then(|_| write!(f, " {name}="))
                    .and_then(|_| field.fmt_ir(f));
            }
        });
        res
    }
}

impl Display for Block {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "block {:#x} ({} insns, {} temps):",
            self.pc, self.guest_insns, self.temps
        )?;
        for op in &self.ops {
            if let Op::Insn { pc, insn } = op {
                writeln!(
                    f,
                    "  ; {pc:#x}: {insn:08x}  {}",
                    crate::a64::disasm(*insn, *pc)
                )?;
            } else {
                writeln!(f, "    {}", DisplayOp(op))?;
            }
        }
        Ok(())
    }
}

/// A broken IR invariant found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A temporary is used before (or without) its definition.
    #[error("op {index} ({name}) uses t{temp} before it is defined")]
    UseBeforeDef {
        /// Index of the op.
        index: usize,
        /// Op name.
        name: &'static str,
        /// The temporary.
        temp: u16,
    },
    /// A temporary is defined twice.
    #[error("op {index} ({name}) redefines t{temp}")]
    Redefined {
        /// Index of the op.
        index: usize,
        /// Op name.
        name: &'static str,
        /// The temporary.
        temp: u16,
    },
    /// A temporary number is not below the block's temp count.
    #[error("op {index} uses t{temp} but the block declares {count} temps")]
    TempOutOfRange {
        /// Index of the op.
        index: usize,
        /// The temporary.
        temp: u16,
        /// Declared count.
        count: u16,
    },
    /// A terminator before the end, or no terminator at the end.
    #[error("block must end with exactly one terminator (problem at op {index})")]
    Terminator {
        /// Index of the offending op.
        index: usize,
    },
    /// A memory access size other than 1, 2, 4 or 8.
    #[error("op {index} has invalid access size {size}")]
    BadSize {
        /// Index of the op.
        index: usize,
        /// The size.
        size: u8,
    },
}

impl VerifyError {
    /// Index of the op the error is about.
    pub fn index(&self) -> usize {
        match *self {
            VerifyError::UseBeforeDef { index, .. }
            | VerifyError::Redefined { index, .. }
            | VerifyError::TempOutOfRange { index, .. }
            | VerifyError::Terminator { index }
            | VerifyError::BadSize { index, .. } => index,
        }
    }
}

/// Checks the SSA and terminator invariants of a block.
pub fn verify(block: &Block) -> Result<(), VerifyError> {
    let mut defined = vec![false; block.temps as usize];
    let last = block
        .ops
        .len()
        .checked_sub(1)
        .ok_or(VerifyError::Terminator { index: 0 })?;
    for (index, op) in block.ops.iter().enumerate() {
        let is_term = op.kind() == OpKind::Terminator;
        if is_term != (index == last) {
            return Err(VerifyError::Terminator { index });
        }
        match op {
            Op::Load { size, .. } | Op::Store { size, .. } if !matches!(size, 1 | 2 | 4 | 8) => {
                return Err(VerifyError::BadSize { index, size: *size });
            }
            Op::LoadVec { size, .. } | Op::StoreVec { size, .. }
                if !matches!(size, 1 | 2 | 4 | 8 | 16) =>
            {
                return Err(VerifyError::BadSize { index, size: *size });
            }
            _ => {}
        }
        let mut err = None;
        let name = op.name();
        op.for_each_field(&mut |_, field| {
            if err.is_some() {
                return;
            }
            if let Some(Temp(t)) = field.used() {
                if t >= block.temps {
                    err = Some(VerifyError::TempOutOfRange {
                        index,
                        temp: t,
                        count: block.temps,
                    });
                } else if !defined[t as usize] {
                    err = Some(VerifyError::UseBeforeDef {
                        index,
                        name,
                        temp: t,
                    });
                }
            }
        });
        op.for_each_field(&mut |_, field| {
            if err.is_some() {
                return;
            }
            if let Some(Dst(t)) = field.defined() {
                if t >= block.temps {
                    err = Some(VerifyError::TempOutOfRange {
                        index,
                        temp: t,
                        count: block.temps,
                    });
                } else if std::mem::replace(&mut defined[t as usize], true) {
                    err = Some(VerifyError::Redefined {
                        index,
                        name,
                        temp: t,
                    });
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(())
}

/// Exit targets (constant guest addresses outside the region) of a region's blocks.
pub fn exit_targets(blocks: &[&Block]) -> Vec<u64> {
    let inside: std::collections::HashSet<u64> = blocks.iter().map(|b| b.pc).collect();
    let mut out = Vec::new();
    for b in blocks {
        match b.ops.last() {
            Some(Op::Jump { target, .. }) => out.push(*target),
            Some(Op::Branch {
                taken, fallthrough, ..
            }) => out.extend([*taken, *fallthrough]),
            _ => {}
        }
    }
    out.retain(|t| !inside.contains(t));
    out.sort_unstable();
    out.dedup();
    out
}
