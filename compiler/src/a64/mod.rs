//! The A64 frontend: decodes guest instructions with yaxpeax-arm and translates them to IR.
//!
//! yaxpeax-arm classifies each word into an [`Opcode`]; the table in [`handler_for`] maps
//! opcodes to the handler of their instruction class (one module per class, as in the ARM
//! ARM). Handlers read their fields from the raw word so they follow the ARM pseudocode
//! (`sf`, `imm12`, `Rn`, `Rd`). An encoding that is unallocated or not implemented becomes a
//! [`TrapKind::Undefined`] terminator: the guest gets SIGILL when (and only when) it runs it.

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Instruction, Opcode};

use crate::ir::{BinOp, Block, BranchKind, Dst, Helper, Op, Reg, Temp, TrapKind, UnOp, Width};

pub mod atomic;
pub mod branch;
pub mod coverage;
pub mod dp_imm;
pub mod dp_reg;
pub mod fp;
pub mod ldst;
pub mod simd;
pub mod system;

/// Maximum guest instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 128;

/// The instruction class a handler belongs to (one module each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Data processing, immediate (add/sub, logical, move wide, bitfield, extract, PC-relative).
    DpImm,
    /// Data processing, register (shifted/extended add/sub, logical, conditional, 1/2/3-source).
    DpReg,
    /// Branches, exception generation.
    Branch,
    /// Loads and stores of general registers (all addressing modes), exclusives, acquire/release.
    LoadStore,
    /// LSE atomics and exclusives.
    Atomic,
    /// System instructions: MRS/MSR, barriers, hints, DC ZVA.
    System,
    /// Scalar floating point.
    Fp,
    /// Advanced SIMD and SIMD/FP loads and stores.
    Simd,
}

/// A handler could not translate its instruction: the encoding is unallocated or unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undefined;

/// Result of a handler.
pub type TResult = Result<(), Undefined>;

/// Translates one instruction into the builder.
pub type Handler = fn(&mut Ctx) -> TResult;

/// Builds the ops of one block.
#[derive(Debug, Default)]
pub struct Builder {
    ops: Vec<Op>,
    temps: u16,
}

impl Builder {
    fn dst(&mut self) -> Dst {
        let d = Dst(self.temps);
        self.temps += 1;
        d
    }
    /// Appends an op.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }
    /// A constant.
    pub fn konst(&mut self, value: u64) -> Temp {
        let dst = self.dst();
        self.push(Op::Const { dst, value });
        dst.t()
    }
    /// Reads an architectural register.
    pub fn get(&mut self, reg: Reg) -> Temp {
        let dst = self.dst();
        self.push(Op::Get { dst, reg });
        dst.t()
    }
    /// Writes an architectural register.
    pub fn set(&mut self, reg: Reg, src: Temp) {
        self.push(Op::Set { reg, src });
    }
    /// A binary ALU op.
    pub fn bin(&mut self, op: BinOp, w: Width, a: Temp, b: Temp) -> Temp {
        let dst = self.dst();
        self.push(Op::Bin { dst, op, w, a, b });
        dst.t()
    }
    /// A binary ALU op with a constant right operand.
    pub fn bini(&mut self, op: BinOp, w: Width, a: Temp, imm: u64) -> Temp {
        let b = self.konst(imm);
        self.bin(op, w, a, b)
    }
    /// A unary ALU op.
    pub fn un(&mut self, op: UnOp, w: Width, a: Temp) -> Temp {
        let dst = self.dst();
        self.push(Op::Un { dst, op, w, a });
        dst.t()
    }
    /// AddWithCarry, setting NZCV.
    pub fn add_flags(&mut self, w: Width, a: Temp, b: Temp, carry: Temp) -> Temp {
        let dst = self.dst();
        self.push(Op::AddFlags {
            dst,
            w,
            a,
            b,
            carry,
        });
        dst.t()
    }
    /// 1 if the condition holds.
    pub fn cond(&mut self, cond: u8) -> Temp {
        let dst = self.dst();
        self.push(Op::Cond { dst, cond });
        dst.t()
    }
    /// c ? a : b.
    pub fn select(&mut self, c: Temp, a: Temp, b: Temp) -> Temp {
        let dst = self.dst();
        self.push(Op::Select { dst, c, a, b });
        dst.t()
    }
    /// A zero-extending load.
    pub fn load(&mut self, addr: Temp, size: u8) -> Temp {
        let dst = self.dst();
        self.push(Op::Load { dst, addr, size });
        dst.t()
    }
    /// A store of the low `size` bytes.
    pub fn store(&mut self, addr: Temp, src: Temp, size: u8) {
        self.push(Op::Store { addr, src, size });
    }
}

/// What a handler sees: the instruction, its address, and the builder.
pub struct Ctx<'a> {
    /// The op builder.
    pub b: &'a mut Builder,
    /// Guest address of this instruction.
    pub pc: u64,
    /// The raw instruction word.
    pub insn: u32,
    /// yaxpeax-arm's decoding.
    pub inst: &'a Instruction,
    /// Set when the handler emitted a terminator.
    pub ended: bool,
}

/// Extracts bits `hi..=lo` of `insn`.
pub fn bits(insn: u32, hi: u32, lo: u32) -> u32 {
    (insn >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// Extracts bit `n` of `insn` as a bool.
pub fn bit(insn: u32, n: u32) -> bool {
    insn >> n & 1 != 0
}

/// Sign-extends the low `n` bits of `v`.
pub fn sext(v: u64, n: u32) -> i64 {
    ((v << (64 - n)) as i64) >> (64 - n)
}

impl Ctx<'_> {
    /// Field `hi..=lo` of the instruction.
    pub fn f(&self, hi: u32, lo: u32) -> u32 {
        bits(self.insn, hi, lo)
    }
    /// Bit `n` of the instruction.
    pub fn bit(&self, n: u32) -> bool {
        bit(self.insn, n)
    }
    /// Reads Xn where 31 is the zero register.
    pub fn x(&mut self, n: u32) -> Temp {
        if n == 31 {
            self.b.konst(0)
        } else {
            self.b.get(Reg::X(n as u8))
        }
    }
    /// Reads Xn where 31 is SP.
    pub fn xsp(&mut self, n: u32) -> Temp {
        self.b.get(Reg::X(n as u8))
    }
    /// Writes Xn where 31 is the zero register (the write is discarded).
    pub fn set_x(&mut self, n: u32, v: Temp) {
        if n != 31 {
            self.b.set(Reg::X(n as u8), v);
        }
    }
    /// Writes Xn where 31 is SP.
    pub fn set_xsp(&mut self, n: u32, v: Temp) {
        self.b.set(Reg::X(n as u8), v);
    }
    /// Ends the block with a terminator.
    pub fn end(&mut self, op: Op) {
        self.b.push(op);
        self.ended = true;
    }
    /// Ends the block with a call to `helper` for this instruction (no terminator).
    pub fn call(&mut self, helper: &'static crate::ir::Helper) {
        self.b.push(Op::Call {
            helper,
            insn: self.insn,
        });
    }
    /// Address of the next instruction.
    pub fn next_pc(&self) -> u64 {
        self.pc.wrapping_add(4)
    }
}

/// The dispatch table: yaxpeax-arm opcode to (class, handler). `None` means not implemented.
pub fn handler_for(op: &Opcode) -> Option<(Class, Handler)> {
    use Opcode::*;
    Some(match op {
        // Data processing - immediate.
        ADD | ADDS | SUB | SUBS | AND | ANDS | ORR | EOR | MOVN | MOVZ | MOVK | BFM | SBFM
        | UBFM | EXTR | ADR | ADRP => (Class::DpImm, dp_imm::translate as Handler),
        // Data processing - register (immediate forms above share opcodes; the handler
        // distinguishes by encoding).
        ORN | EON | BIC | BICS | ADC | ADCS | SBC | SBCS | CSEL | CSINC | CSINV | CSNEG | CCMN
        | CCMP | RBIT | REV16 | REV | REV32 | CLZ | CLS | MADD | MSUB | SMADDL | SMSUBL
        | UMADDL | UMSUBL | SMULH | UMULH | UDIV | SDIV | LSLV | LSRV | ASRV | RORV | CRC32B
        | CRC32H | CRC32W | CRC32X | CRC32CB | CRC32CH | CRC32CW | CRC32CX => {
            (Class::DpReg, dp_reg::translate as Handler)
        }
        // Branches and exception generation.
        B | BL | BR | BLR | RET | CBZ | CBNZ | TBZ | TBNZ | Bcc(_) | SVC | BRK | UDF => {
            (Class::Branch, branch::translate as Handler)
        }
        // Loads and stores of general registers.
        LDR | LDRB | LDRH | LDRSB | LDRSH | LDRSW | STR | STRB | STRH | LDUR | LDURB | LDURH
        | LDURSB | LDURSH | LDURSW | STUR | STURB | STURH | LDP | LDPSW | STP | LDNP | STNP
        | LDTR | LDTRB | LDTRH | LDTRSB | LDTRSH | LDTRSW | STTR | STTRB | STTRH | PRFM | PRFUM
        | LDAR | LDARB | LDARH | STLR | STLRB | STLRH | LDAPR | LDAPRB | LDAPRH | LDLAR
        | LDLARB | LDLARH | STLLR | STLLRB | STLLRH | LDAPUR | LDAPURB | LDAPURH | LDAPURSB
        | LDAPURSH | LDAPURSW | STLUR | STLURB | STLURH => {
            (Class::LoadStore, ldst::translate as Handler)
        }
        // Exclusives and LSE atomics.
        LDXR | LDXRB | LDXRH | LDAXR | LDAXRB | LDAXRH | STXR | STXRB | STXRH | STLXR | STLXRB
        | STLXRH | LDXP | LDAXP | STXP | STLXP | CLREX | CAS(_) | CASB(_) | CASH(_) | CASP(_)
        | SWP(_) | SWPB(_) | SWPH(_) | LDADD(_) | LDADDB(_) | LDADDH(_) | LDCLR(_) | LDCLRB(_)
        | LDCLRH(_) | LDEOR(_) | LDEORB(_) | LDEORH(_) | LDSET(_) | LDSETB(_) | LDSETH(_)
        | LDSMAX(_) | LDSMAXB(_) | LDSMAXH(_) | LDSMIN(_) | LDSMINB(_) | LDSMINH(_) | LDUMAX(_)
        | LDUMAXB(_) | LDUMAXH(_) | LDUMIN(_) | LDUMINB(_) | LDUMINH(_) => {
            (Class::Atomic, atomic::translate as Handler)
        }
        // System.
        MRS | MSR | SYS(_) | HINT | ISB | DSB(_) | DMB(_) | SB | SSBB | PSSBB | PACIASP
        | PACIBSP | AUTIASP | AUTIBSP | PACIAZ | PACIBZ | AUTIAZ | AUTIBZ | PACIA1716
        | PACIB1716 | AUTIA1716 | AUTIB1716 | XPACLRI => {
            (Class::System, system::translate as Handler)
        }
        _ => {
            if let Some(h) = fp::handler_for(op) {
                (Class::Fp, h)
            } else if let Some(h) = simd::handler_for(op) {
                (Class::Simd, h)
            } else {
                return None;
            }
        }
    })
}

/// Decodes one word with yaxpeax-arm.
pub fn decode(insn: u32) -> Option<Instruction> {
    let bytes = insn.to_le_bytes();
    let mut reader = U8Reader::new(&bytes);
    InstDecoder::default().decode(&mut reader).ok()
}

/// Disassembles one word for traces and IR listings.
pub fn disasm(insn: u32, _pc: u64) -> String {
    match decode(insn) {
        Some(i) => i.to_string(),
        None => "<undefined>".to_string(),
    }
}

/// Why an instruction could not be translated, for the SIGILL message.
pub fn undefined_reason(insn: u32) -> String {
    match decode(insn) {
        None => "unallocated encoding".to_string(),
        Some(i) if handler_for(&i.opcode).is_none() => format!("`{i}` is not implemented"),
        Some(i) => format!("`{i}`: reserved or unsupported form"),
    }
}

/// Translates the block starting at `pc`. `fetch` returns the instruction word at an address,
/// or `None` when it is not mapped executable.
pub fn translate_block(fetch: &mut dyn FnMut(u64) -> Option<u32>, pc: u64) -> Block {
    translate_block_limit(fetch, pc, MAX_BLOCK_INSNS)
}

/// [`translate_block`] with an instruction limit (1 gives single-step blocks for tracing).
pub fn translate_block_limit(
    fetch: &mut dyn FnMut(u64) -> Option<u32>,
    start: u64,
    limit: usize,
) -> Block {
    let mut b = Builder::default();
    let mut pc = start;
    let mut count = 0u32;
    loop {
        let Some(insn) = fetch(pc) else {
            if count == 0 {
                b.push(Op::Trap {
                    kind: TrapKind::FetchFault,
                    pc,
                    insn: 0,
                });
            } else {
                b.push(Op::Jump {
                    target: pc,
                    kind: BranchKind::Jump,
                });
            }
            break;
        };
        count += 1;
        b.push(Op::Insn { pc, insn });
        let mark_ops = b.ops.len();
        let mark_temps = b.temps;
        let decoded = decode(insn);
        let result = match &decoded {
            Some(inst) => match handler_for(&inst.opcode) {
                Some((_, h)) => {
                    let mut ctx = Ctx {
                        b: &mut b,
                        pc,
                        insn,
                        inst,
                        ended: false,
                    };
                    h(&mut ctx).map(|_| ctx.ended)
                }
                None => Err(Undefined),
            },
            None => Err(Undefined),
        };
        match result {
            Ok(true) => break,
            Ok(false) => {}
            Err(Undefined) => {
                b.ops.truncate(mark_ops);
                b.temps = mark_temps;
                b.push(Op::Trap {
                    kind: TrapKind::Undefined,
                    pc,
                    insn,
                });
                break;
            }
        }
        pc = pc.wrapping_add(4);
        if count as usize >= limit || pc & 0xfff == 0 {
            b.push(Op::Jump {
                target: pc,
                kind: BranchKind::Jump,
            });
            break;
        }
    }
    checked(Block {
        pc: start,
        guest_insns: count,
        temps: b.temps,
        ops: b.ops,
    })
}

/// Verifies a block the frontend built: a frontend bug (IR that breaks the invariants the
/// interpreter and the lowering rely on) must cost the guest a SIGILL at the instruction
/// whose semantics are wrong, never the host a panic. The block is cut before that
/// instruction, which becomes an undefined-instruction trap.
fn checked(mut block: Block) -> Block {
    let Err(e) = crate::ir::verify(&block) else {
        return block;
    };
    let bad = e.index().min(block.ops.len().saturating_sub(1));
    let insn = block.ops[..=bad]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, op)| match op {
            Op::Insn { pc, insn } => Some((i, *pc, *insn)),
            _ => None,
        });
    // Keep the instruction's marker (as an undefined instruction's block does).
    let (cut, pc, insn) = insn.map_or((0, block.pc, 0), |(i, pc, insn)| (i + 1, pc, insn));
    log::error!(
        "frontend bug: block at {:#x}: {e}; instruction {insn:08x} at {pc:#x} raises SIGILL",
        block.pc
    );
    block.ops.truncate(cut);
    block.ops.push(Op::Trap {
        kind: TrapKind::Undefined,
        pc,
        insn,
    });
    block.guest_insns = block
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Insn { .. }))
        .count() as u32;
    if crate::ir::verify(&block).is_err() {
        // The instructions before it broke the invariants too: trap at the block's start.
        block.ops = vec![Op::Trap {
            kind: TrapKind::Undefined,
            pc: block.pc,
            insn,
        }];
        block.guest_insns = 0;
    }
    block
}

/// Every instruction helper the frontend can emit. AOT images name helpers, and the runtime
/// resolves the names through this registry (names are unique: see the tests).
pub fn helpers() -> impl Iterator<Item = &'static Helper> {
    dp_reg::HELPERS
        .iter()
        .chain(simd::HELPERS)
        .chain(atomic::HELPERS)
        .chain(system::HELPERS)
        .copied()
        .chain(fp::helpers())
}

/// The helper named `name`.
pub fn helper_by_name(name: &str) -> Option<&'static Helper> {
    helpers().find(|h| h.name == name)
}
