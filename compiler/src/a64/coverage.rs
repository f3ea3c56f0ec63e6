//! Opcode coverage of the frontend: decodes a deterministic sample of instruction words with
//! yaxpeax-arm, buckets them by opcode name, and records for each bucket whether
//! [`super::handler_for`] has a handler and whether translation succeeded for any sampled
//! word. Used by the `a64-coverage` binary and the coverage test.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{decode, handler_for, translate_block_limit, Class};
use crate::ir::{Op, TrapKind};

/// How much of an opcode the frontend handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// A handler exists and translated at least one sampled word.
    Implemented,
    /// A handler exists but rejected every sampled word.
    Partial,
    /// No handler.
    Missing,
}

impl Status {
    /// Lower-case name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Partial => "partial",
            Status::Missing => "missing",
        }
    }
}

/// Statistics of one opcode.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Opcode name (yaxpeax-arm's `Debug` without parenthesized data).
    pub name: String,
    /// Handler class, when there is a handler.
    pub class: Option<Class>,
    /// Words sampled with this opcode.
    pub samples: u64,
    /// Words that translated without an `Undefined` trap.
    pub accepted: u64,
    /// A sampled word (an accepted one when there is any).
    pub example: u32,
}

impl Bucket {
    /// The bucket's status.
    pub fn status(&self) -> Status {
        match (self.class, self.accepted) {
            (None, _) => Status::Missing,
            (Some(_), 0) => Status::Partial,
            _ => Status::Implemented,
        }
    }
}

/// Opcodes gcc emits for ARMv8.0 integer, LSE, scalar FP and Advanced SIMD code: the frontend
/// must implement every one.
pub const MUST_HAVE: &[&str] = &[
    // Data processing.
    "ADD", "ADDS", "SUB", "SUBS", "AND", "ANDS", "ORR", "ORN", "EOR", "EON", "BIC", "BICS", "MOVN",
    "MOVZ", "MOVK", "SBFM", "BFM", "UBFM", "EXTR", "ADR", "ADRP", "ADC", "ADCS", "SBC", "SBCS",
    "CSEL", "CSINC", "CSINV", "CSNEG", "CCMP", "CCMN", "RBIT", "REV", "REV16", "REV32", "CLZ",
    "CLS", "MADD", "MSUB", "SMADDL", "UMADDL", "SMSUBL", "UMSUBL", "SMULH", "UMULH", "UDIV",
    "SDIV", "LSLV", "LSRV", "ASRV", "RORV", "CRC32B", "CRC32H", "CRC32W", "CRC32X", "CRC32CB",
    "CRC32CH", "CRC32CW", "CRC32CX", // Branches, exceptions, system.
    "B", "BL", "BR", "BLR", "RET", "CBZ", "CBNZ", "TBZ", "TBNZ", "Bcc", "SVC", "BRK", "UDF", "MRS",
    "MSR", "SYS", "HINT", "DMB", "DSB", "ISB", "CLREX", // Loads and stores.
    "LDR", "LDRB", "LDRH", "LDRSB", "LDRSH", "LDRSW", "STR", "STRB", "STRH", "LDUR", "LDURB",
    "LDURH", "LDURSB", "LDURSH", "LDURSW", "STUR", "STURB", "STURH", "LDP", "LDPSW", "STP", "LDNP",
    "STNP", "PRFM", "LDAR", "LDARB", "LDARH", "STLR", "STLRB", "STLRH", "LDXR", "LDXRB", "LDXRH",
    "LDAXR", "LDAXRB", "LDAXRH", "STXR", "STXRB", "STXRH", "STLXR", "STLXRB", "STLXRH", "LDXP",
    "LDAXP", "STXP", "STLXP", // LSE.
    "CAS", "CASB", "CASH", "CASP", "SWP", "SWPB", "SWPH", "LDADD", "LDADDB", "LDADDH", "LDCLR",
    "LDEOR", "LDSET", "LDSMAX", "LDSMIN", "LDUMAX", "LDUMIN",
    // Scalar floating point.
    "FADD", "FSUB", "FMUL", "FDIV", "FNMUL", "FMADD", "FMSUB", "FNMADD", "FNMSUB", "FABS", "FNEG",
    "FSQRT", "FMAX", "FMIN", "FMAXNM", "FMINNM", "FCVT", "FCVTZS", "FCVTZU", "FCVTAS", "FCVTAU",
    "FCVTMS", "FCVTMU", "FCVTNS", "FCVTNU", "FCVTPS", "FCVTPU", "SCVTF", "UCVTF", "FMOV", "FCMP",
    "FCMPE", "FCCMP", "FCCMPE", "FCSEL", "FRINTA", "FRINTI", "FRINTM", "FRINTN", "FRINTP",
    "FRINTX", "FRINTZ",
    // Advanced SIMD (integer and the FP vector forms gcc vectorizes with).
    "LD1", "ST1", "LD2", "ST2", "LD3", "ST3", "LD4", "ST4", "LD1R", "MOVI", "MVNI", "DUP", "INS",
    "UMOV", "SMOV", "EXT", "TBL", "TBX", "ZIP1", "ZIP2", "UZP1", "UZP2", "TRN1", "TRN2", "REV64",
    "CNT", "ADDP", "ADDV", "UMAXV", "UMINV", "SMAXV", "SMINV", "UADDLV", "MUL", "MLA", "MLS",
    "NEG", "ABS", "NOT", "BSL", "BIT", "BIF", "CMEQ", "CMGE", "CMGT", "CMHI", "CMHS", "CMLE",
    "CMLT", "CMTST", "SHL", "USHR", "SSHR", "USRA", "SSRA", "USHL", "SSHL", "SHRN", "XTN", "SQXTN",
    "UQXTN", "SSHLL", "USHLL", "SMULL", "UMULL", "SMLAL", "UMLAL", "SADDL", "UADDL", "SADDW",
    "UADDW", "SMAX", "SMIN", "UMAX", "UMIN", "SABD", "UABD", "UQADD", "SQADD", "UQSUB", "SQSUB",
    "FMLA", "FMLS", "FCMEQ", "FCMGE", "FCMGT", "FADDP", "FMAXNMV", "FMINNMV", "FCVTL", "FCVTN",
];

/// Hand-picked words for opcodes a random sample rarely hits (fixed-encoding system
/// instructions, branches with fixed fields, should-be-one register fields).
pub const TARGETED: &[u32] = &[
    0xd65f03c0, // ret
    0xd61f0000, // br x0
    0xd63f0000, // blr x0
    0xd503201f, // nop
    0xd503233f, // paciasp
    0xd50323bf, // autiasp
    0xd503305f, // clrex
    0xd5033fdf, // isb
    0xd5033bbf, // dmb ish
    0xd5033f9f, // dsb sy
    0xd4000001, // svc #0
    0xd4200000, // brk #0
    0x00000000, // udf #0
    0xd53b4200, // mrs x0, nzcv
    0xd51b4200, // msr nzcv, x0
    0xd53bd040, // mrs x0, tpidr_el0
    0xd50b7420, // dc zva, x0
    0xc85f7c01, // ldxr x1, [x0]
    0xc85ffc01, // ldaxr x1, [x0]
    0xc8027c01, // stxr w2, x1, [x0]
    0xc802fc01, // stlxr w2, x1, [x0]
    0x085ffc01, // ldaxrb w1, [x0]
    0x485ffc01, // ldaxrh w1, [x0]
    0xc8dffc01, // ldar x1, [x0]
    0xc89ffc01, // stlr x1, [x0]
    0xc87f0801, // ldxp x1, x2, [x0]
    0xc8220801, // stxp w2, x1, x2, [x0]
    0x9bc27c20, // umulh x0, x1, x2
    0x9b427c20, // smulh x0, x1, x2
    0x1e602000, // fcmp d0, d0
    0x1e604000, // fmov d0, d0
    0x4e083c00, // mov x0, v0.d[0] (umov)
    0x4e180c00, // dup v0.2d, x0
    0x4f000400, // movi v0.4s, #0
    0x2f00e400, // movi d0, #0
    0x0f08a400, // sshll v0.8h, v0.8b, #0 (sxtl)
    0x2f08a400, // ushll v0.8h, v0.8b, #0 (uxtl)
    0x9ac24c20, // crc32x w0, w1, x2
    0x1e654020, // frintm d0, d1
    0x6e30c820, // fmaxnmv s0, v1.4s
    0x6eb0c820, // fminnmv s0, v1.4s
    0x0e205820, // cnt v0.8b, v1.8b
    0x0e212820, // xtn v0.8b, v1.8h
    0x0e617820, // fcvtl v0.2d, v1.2s
    0x0e616820, // fcvtn v0.2s, v1.2d
    0x0e214820, // sqxtn v0.8b, v1.8h
];

/// xorshift64* for the deterministic sample.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The sampled words: [`TARGETED`], then `random` words where each register-sized field
/// (bits 4:0, 9:5, 14:10, 20:16) is kept random with probability 1/2, or else forced to
/// 00000, 11111, 10000 or 11000, so fixed fields (should-be-one registers, the opcode2 of
/// 1-source data processing, the SIMD two-register and across-lanes patterns) get sampled.
pub fn sample_words(random: usize, seed: u64) -> impl Iterator<Item = u32> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    TARGETED.iter().copied().chain((0..random).map(move |_| {
        let r = rng.next();
        let mut w = r as u32;
        let choice = (r >> 32) as u32;
        for (k, lo) in [0u32, 5, 10, 16].into_iter().enumerate() {
            let pick = (choice >> (3 * k)) & 7;
            if pick < 4 {
                let v = [0u32, 31, 16, 24][pick as usize];
                w = (w & !(31 << lo)) | v << lo;
            }
        }
        w
    }))
}

/// Opcode name without parenthesized data: `SWP(..)` → `SWP`.
pub fn opcode_name(op: &yaxpeax_arm::armv8::a64::Opcode) -> String {
    let s = format!("{op:?}");
    match s.find('(') {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Whether `insn` translates without an `Undefined` trap.
pub fn translates(insn: u32) -> bool {
    let block = translate_block_limit(&mut |pc| (pc == 0x1000).then_some(insn), 0x1000, 1);
    !matches!(
        block.ops.last(),
        Some(Op::Trap {
            kind: TrapKind::Undefined,
            ..
        })
    )
}

/// Buckets `random` sampled words (plus [`TARGETED`]) by opcode, sorted by name.
/// Words yaxpeax-arm cannot decode are counted under `<undecodable>` (class `None`).
pub fn coverage(random: usize, seed: u64) -> Vec<Bucket> {
    let mut map: BTreeMap<String, Bucket> = BTreeMap::new();
    for w in sample_words(random, seed) {
        let (name, class) = match decode(w) {
            Some(i) => (
                opcode_name(&i.opcode),
                handler_for(&i.opcode).map(|(c, _)| c),
            ),
            None => ("<undecodable>".to_string(), None),
        };
        let b = map.entry(name.clone()).or_insert(Bucket {
            name,
            class,
            samples: 0,
            accepted: 0,
            example: w,
        });
        b.samples += 1;
        if b.class.is_some() && translates(w) {
            if b.accepted == 0 {
                b.example = w;
            }
            b.accepted += 1;
        }
    }
    map.into_values().collect()
}

/// Totals: (opcodes seen, implemented, partial, missing); `<undecodable>` is not counted.
pub fn totals(buckets: &[Bucket]) -> (usize, usize, usize, usize) {
    let real: Vec<&Bucket> = buckets
        .iter()
        .filter(|b| !b.name.starts_with('<'))
        .collect();
    let n = |s: Status| real.iter().filter(|b| b.status() == s).count();
    (
        real.len(),
        n(Status::Implemented),
        n(Status::Partial),
        n(Status::Missing),
    )
}

/// Names from [`MUST_HAVE`] that are not implemented (never sampled counts as missing
/// unless a [`TARGETED`] or random word reached a handler).
pub fn missing_must_haves(buckets: &[Bucket]) -> Vec<&'static str> {
    MUST_HAVE
        .iter()
        .copied()
        .filter(|m| {
            !buckets
                .iter()
                .any(|b| b.name == *m && b.status() == Status::Implemented)
        })
        .collect()
}

fn class_name(c: Option<Class>) -> String {
    c.map(|c| format!("{c:?}"))
        .unwrap_or_else(|| "-".to_string())
}

/// Plain-text table sorted by status, class and name, with totals.
pub fn render_table(buckets: &[Bucket]) -> String {
    let mut rows: Vec<&Bucket> = buckets.iter().collect();
    rows.sort_by_key(|b| (b.status(), b.class, b.name.clone()));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<10} {:<12} {:>9} {:>9}  example",
        "opcode", "class", "status", "samples", "accepted"
    );
    for b in rows {
        let _ = writeln!(
            s,
            "{:<16} {:<10} {:<12} {:>9} {:>9}  {:08x} {}",
            b.name,
            class_name(b.class),
            b.status().name(),
            b.samples,
            b.accepted,
            b.example,
            super::disasm(b.example, 0)
        );
    }
    let (seen, imp, part, miss) = totals(buckets);
    let _ = writeln!(
        s,
        "\nopcodes seen: {seen}; implemented: {imp}; partial: {part}; missing: {miss}"
    );
    let must = missing_must_haves(buckets);
    let _ = writeln!(s, "must-have opcodes missing: {} {:?}", must.len(), must);
    s
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// JSON report: `{"totals": {...}, "missing_must_have": [...], "opcodes": [...]}`.
pub fn render_json(buckets: &[Bucket]) -> String {
    let (seen, imp, part, miss) = totals(buckets);
    let mut s = String::from("{\n");
    let _ = writeln!(
        s,
        "  \"totals\": {{\"seen\": {seen}, \"implemented\": {imp}, \"partial\": {part}, \"missing\": {miss}}},"
    );
    let must: Vec<String> = missing_must_haves(buckets)
        .iter()
        .map(|m| json_str(m))
        .collect();
    let _ = writeln!(s, "  \"missing_must_have\": [{}],", must.join(", "));
    s.push_str("  \"opcodes\": [\n");
    let rows: Vec<String> = buckets
        .iter()
        .map(|b| {
            format!(
                "    {{\"opcode\": {}, \"class\": {}, \"status\": \"{}\", \"samples\": {}, \"accepted\": {}, \"example\": \"{:08x}\"}}",
                json_str(&b.name),
                json_str(&class_name(b.class)),
                b.status().name(),
                b.samples,
                b.accepted,
                b.example
            )
        })
        .collect();
    s.push_str(&rows.join(",\n"));
    s.push_str("\n  ]\n}\n");
    s
}
