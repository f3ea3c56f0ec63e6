//! Tests of the Advanced SIMD helpers: a few hand-checked cases, and a differential check of
//! thousands of random encodings of every group against qemu-aarch64.

use super::{classify, handler_for, implemented, GROUPS};
use crate::a64::{decode, translate_block_limit, Builder, Ctx};
use crate::interp::{run_block, Exit};
use crate::ir::{Block, Op, TrapKind};
use crate::mem::{Fault, FlatMemory};
use crate::state::CpuState;

const CODE: u64 = 0x10000;

/// Translates and runs one instruction; returns the exit and whether the main dispatch
/// table had to be bypassed (shared opcode not yet forwarded to this module).
fn run_one(st: &mut CpuState, mem: &mut FlatMemory, insn: u32) -> (Exit, bool) {
    let mut block = translate_block_limit(&mut |pc| (pc == CODE).then_some(insn), CODE, 1);
    let mut bypassed = false;
    let trapped = matches!(
        block.ops.last(),
        Some(Op::Trap {
            kind: TrapKind::Undefined,
            ..
        })
    );
    if trapped && implemented(insn) {
        // The opcode is shared with a general-register class whose handler does not
        // forward yet: translate through this module directly.
        bypassed = true;
        let inst = decode(insn).expect("decodable");
        let mut b = Builder::default();
        b.push(Op::Insn { pc: CODE, insn });
        let mut ctx = Ctx {
            b: &mut b,
            pc: CODE,
            insn,
            inst: &inst,
            ended: false,
        };
        super::translate(&mut ctx).expect("implemented");
        b.push(Op::Jump {
            target: CODE + 4,
            kind: crate::ir::BranchKind::Jump,
        });
        block = Block {
            pc: CODE,
            guest_insns: 1,
            temps: b.temps,
            ops: b.ops,
        };
    }
    st.pc = CODE;
    let exit = run_block(&block, st, mem, &mut Vec::new());
    (exit, bypassed)
}

fn vreg(lanes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..lanes.len()].copy_from_slice(lanes);
    u128::from_le_bytes(b)
}

#[test]
fn unit_cases() {
    let mut mem = FlatMemory::new(0x8000, 0x100);
    let mut st = CpuState::default();
    // add v0.16b, v1.16b, v2.16b
    st.v[1] = vreg(&[1, 2, 3, 250, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    st.v[2] = vreg(&[1, 1, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    run_one(&mut st, &mut mem, 0x4e228420);
    assert_eq!(
        st.v[0],
        vreg(&[2, 3, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])
    );
    // add v0.8b, v1.8b, v2.8b zeroes the upper half.
    run_one(&mut st, &mut mem, 0x0e228420);
    assert_eq!(st.v[0], vreg(&[2, 3, 4, 4]));
    // uqadd v0.16b, v1.16b, v2.16b saturates and sets QC.
    run_one(&mut st, &mut mem, 0x6e220c20);
    assert_eq!(elem8(st.v[0], 3), 255);
    assert_ne!(st.fpsr & 1 << 27, 0);
    // cmeq v3.16b, v1.16b, #0
    run_one(&mut st, &mut mem, 0x4e209823);
    assert_eq!(elem8(st.v[3], 4), 0xff);
    assert_eq!(elem8(st.v[3], 0), 0);
    // ld1 {v4.16b}, [x0], #16 ; then st1 {v4.16b}, [x1]
    for (i, b) in mem.bytes.iter_mut().enumerate() {
        *b = i as u8;
    }
    st.x[0] = 0x8010;
    st.x[1] = 0x8080;
    let (exit, _) = run_one(&mut st, &mut mem, 0x4cdf7004);
    assert!(matches!(exit, Exit::Continue(_)), "{exit:?}");
    assert_eq!(elem8(st.v[4], 0), 0x10);
    assert_eq!(elem8(st.v[4], 15), 0x1f);
    assert_eq!(st.x[0], 0x8020);
    run_one(&mut st, &mut mem, 0x4c007024);
    assert_eq!(mem.bytes[0x80..0x90], (0x10..0x20).collect::<Vec<u8>>()[..]);
    // A faulting ld4 leaves the registers and the base untouched.
    st.x[0] = 0x80f0;
    let before = st.clone();
    let (exit, _) = run_one(&mut st, &mut mem, 0x4cdf0000); // ld4 {v0.16b-v3.16b}, [x0], #64
    assert!(
        matches!(
            exit,
            Exit::Fault {
                fault: Fault::Segv { .. },
                ..
            }
        ),
        "{exit:?}"
    );
    assert_eq!(st.v, before.v);
    assert_eq!(st.x, before.x);
    // ld1 {v0.16b}, [sp]
    st.x[31] = 0x8000;
    run_one(&mut st, &mut mem, 0x4c4073e0);
    assert_eq!(elem8(st.v[0], 15), 15);
    // Reserved: shadd with size=11 -> SIGILL.
    let (exit, _) = run_one(&mut st, &mut mem, 0x4ee20420);
    assert!(
        matches!(
            exit,
            Exit::Trap {
                kind: TrapKind::Undefined,
                ..
            }
        ),
        "{exit:?}"
    );
}

fn elem8(v: u128, i: usize) -> u8 {
    (v >> (8 * i)) as u8
}

/// Helpers never panic, whatever the word (they may be reached with any word through a
/// stale translation or a future dispatch change).
#[test]
fn no_panic_on_any_word() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut mem = FlatMemory::new(0, 0x1000);
    for &(mask, value, _) in GROUPS {
        for _ in 0..4000 {
            let w = (rng.next() as u32 & !mask) | value;
            let mut st = CpuState::default();
            for (i, v) in st.v.iter_mut().enumerate() {
                *v = (rng.next() as u128) << 64 | rng.next() as u128 | i as u128;
            }
            let g = classify(w).expect("group");
            let _ = (super::helper(g).func)(&mut st, &mut mem, w);
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Same distribution as `gen()` in the generated C program.
    fn gen(&mut self) -> u64 {
        let x = self.next();
        match self.next() % 8 {
            0 => SPECIALS[(x % 6) as usize],
            1 => x & 0x0f0f_0f0f_0f0f_0f0f,
            2 => x | 0xf0f0_f0f0_f0f0_f0f0,
            3 => x & 0x8181_8181_8181_8181,
            _ => x,
        }
    }
}

const SPECIALS: [u64; 6] = [
    0,
    u64::MAX,
    1 << 63,
    (1 << 63) - 1,
    0x8080_8080_8080_8080,
    0x7f7f_7f7f_7f7f_7f7f,
];

/// Inputs of case `idx`, as the C program builds them.
struct Inputs {
    v: [u128; 32],
    x: [u64; 16],
    buf: [u8; 256],
}

fn inputs(idx: usize, ldst: bool) -> Inputs {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ (idx as u64).wrapping_mul(0x1_0000_01b3));
    let mut v = [0u128; 32];
    for reg in v.iter_mut() {
        let lo = r.gen() as u128;
        let hi = r.gen() as u128;
        *reg = lo | hi << 64;
    }
    let mut x = [0u64; 16];
    for xi in x.iter_mut() {
        *xi = if ldst { r.next() % 64 } else { r.gen() };
    }
    let mut buf = [0u8; 256];
    for b in buf.iter_mut() {
        *b = r.next() as u8;
    }
    Inputs { v, x, buf }
}

const C_PROLOGUE: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include <signal.h>
#include <setjmp.h>
#include <string.h>
struct st { uint64_t v[64]; uint64_t x[16]; uint64_t fpsr; } S;
unsigned char buf[256] __attribute__((aligned(64)));
static sigjmp_buf jb;
static void handler(int sig) { siglongjmp(jb, sig); }
static uint64_t rs;
static uint64_t nx(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static const uint64_t sp[6] = {0, ~0ULL, 1ULL << 63, (1ULL << 63) - 1, 0x8080808080808080ULL, 0x7f7f7f7f7f7f7f7fULL};
static uint64_t gen(void) {
  uint64_t x = nx();
  switch (nx() % 8) {
  case 0: return sp[x % 6];
  case 1: return x & 0x0f0f0f0f0f0f0f0fULL;
  case 2: return x | 0xf0f0f0f0f0f0f0f0ULL;
  case 3: return x & 0x8181818181818181ULL;
  default: return x;
  }
}
extern char stubs[];
static void run(int i) {
  void *fn = stubs + 8 * i;
  asm volatile(
    "mov x28, %0\n mov x26, %1\n add x27, x28, #512\n"
    "ldp q0, q1, [x28, #0]\n ldp q2, q3, [x28, #32]\n ldp q4, q5, [x28, #64]\n ldp q6, q7, [x28, #96]\n"
    "ldp q8, q9, [x28, #128]\n ldp q10, q11, [x28, #160]\n ldp q12, q13, [x28, #192]\n ldp q14, q15, [x28, #224]\n"
    "ldp q16, q17, [x28, #256]\n ldp q18, q19, [x28, #288]\n ldp q20, q21, [x28, #320]\n ldp q22, q23, [x28, #352]\n"
    "ldp q24, q25, [x28, #384]\n ldp q26, q27, [x28, #416]\n ldp q28, q29, [x28, #448]\n ldp q30, q31, [x28, #480]\n"
    "ldp x0, x1, [x27, #0]\n ldp x2, x3, [x27, #16]\n ldp x4, x5, [x27, #32]\n ldp x6, x7, [x27, #48]\n"
    "ldp x8, x9, [x27, #64]\n ldp x10, x11, [x27, #80]\n ldp x12, x13, [x27, #96]\n ldp x14, x15, [x27, #112]\n"
    "ldr x16, [x27, #128]\n msr fpsr, x16\n"
    "blr x26\n"
    "stp q0, q1, [x28, #0]\n stp q2, q3, [x28, #32]\n stp q4, q5, [x28, #64]\n stp q6, q7, [x28, #96]\n"
    "stp q8, q9, [x28, #128]\n stp q10, q11, [x28, #160]\n stp q12, q13, [x28, #192]\n stp q14, q15, [x28, #224]\n"
    "stp q16, q17, [x28, #256]\n stp q18, q19, [x28, #288]\n stp q20, q21, [x28, #320]\n stp q22, q23, [x28, #352]\n"
    "stp q24, q25, [x28, #384]\n stp q26, q27, [x28, #416]\n stp q28, q29, [x28, #448]\n stp q30, q31, [x28, #480]\n"
    "stp x0, x1, [x27, #0]\n stp x2, x3, [x27, #16]\n stp x4, x5, [x27, #32]\n stp x6, x7, [x27, #48]\n"
    "stp x8, x9, [x27, #64]\n stp x10, x11, [x27, #80]\n stp x12, x13, [x27, #96]\n stp x14, x15, [x27, #112]\n"
    "mrs x16, fpsr\n str x16, [x27, #128]\n"
    :: "r"(&S), "r"(fn)
    : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
      "x15", "x16", "x26", "x27", "x28", "x30", "memory",
      "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14",
      "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
      "v28", "v29", "v30", "v31");
}
static void prep(int idx, int ldst) {
  rs = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)idx * 0x1000001b3ULL);
  for (int i = 0; i < 64; i++) S.v[i] = gen();
  for (int i = 0; i < 16; i++) S.x[i] = ldst ? nx() % 64 : gen();
  for (int i = 0; i < 256; i++) buf[i] = (unsigned char)nx();
  if (ldst) S.x[1] = (uint64_t)buf + 64;
  S.fpsr = 0;
}
static void one(int idx, int ldst) {
  prep(idx, ldst);
  int sig = sigsetjmp(jb, 1);
  if (!sig) run(idx);
  printf("%d %d", idx, sig);
  for (int i = 0; i < 64; i++) printf(" %llx", (unsigned long long)S.v[i]);
  for (int i = 0; i < 16; i++) printf(" %llx", (unsigned long long)S.x[i]);
  printf(" %llx", (unsigned long long)S.fpsr);
  if (ldst) for (int i = 0; i < 32; i++) { uint64_t w; memcpy(&w, buf + 8 * i, 8); printf(" %llx", (unsigned long long)w); }
  printf("\n");
}
"#;

/// Mnemonics (as yaxpeax prints them) the random cases must exercise.
const EXPECTED: &str = "abs add addhn addhn2 addp addv and bic bif bit bsl cls clz cmeq cmge cmgt \
    cmhi cmhs cmle cmlt cmtst cnt dup eor ext ld1 ld1r ld2 ld2r ld3 ld3r ld4 ld4r mla mls mov movi \
    mul mvn mvni neg orn orr pmul pmull pmull2 raddhn raddhn2 rbit rev16 rev32 rev64 rshrn rshrn2 \
    rsubhn rsubhn2 saba sabal sabal2 sabd sabdl sabdl2 sadalp saddl saddl2 saddlp saddlv saddw \
    saddw2 shadd shl shll shll2 shrn shrn2 shsub sli smax smaxp smaxv smin sminp sminv smlal smlal2 \
    smlsl smlsl2 smov smull smull2 sqabs sqadd sqdmlal sqdmlal2 sqdmlsl sqdmlsl2 sqdmulh sqdmull \
    sqdmull2 sqneg sqrdmulh sqrshl sqrshrn sqrshrn2 sqrshrun sqrshrun2 sqshl sqshlu sqshrn sqshrn2 \
    sqshrun sqshrun2 sqsub sqxtn sqxtn2 sqxtun sqxtun2 srhadd sri srshl srshr srsra sshl sshll sshll2 \
    sshr ssra ssubl ssubl2 ssubw ssubw2 st1 st2 st3 st4 sub subhn subhn2 suqadd tbl tbx trn1 trn2 \
    uaba uabal uabal2 uabd uabdl uabdl2 uadalp uaddl uaddl2 uaddlp uaddlv uaddw uaddw2 uhadd uhsub \
    umax umaxp umaxv umin uminp uminv umlal umlal2 umlsl umlsl2 umov umull umull2 uqadd uqrshl \
    uqrshrn uqrshrn2 uqshl uqshrn uqshrn2 uqsub uqxtn uqxtn2 urhadd urshl urshr ursra ushl ushll \
    ushll2 ushr usqadd usra usubl usubl2 usubw usubw2 uzp1 uzp2 xtn xtn2 zip1 zip2";

struct Case {
    insn: u32,
    ldst: bool,
}

/// Random words of every group: mostly ones this module implements, plus some it rejects
/// (which qemu must reject too).
fn cases() -> Vec<Case> {
    let mut rng = Rng(0xdead_beef_1234_5678);
    let mut out = Vec::new();
    for &(mask, value, g) in GROUPS {
        let ldst = matches!(g, super::Group::LdStMulti | super::Group::LdStSingle);
        let want = if ldst { 700 } else { 600 };
        let (mut good, mut bad) = (0, 0);
        for _ in 0..want * 300 {
            if good >= want {
                break;
            }
            let mut w = (rng.next() as u32 & !mask) | value;
            let gpr = |r: u32| if r >= 16 && r != 31 { r & 15 } else { r };
            if ldst {
                w = (w & !0x3e0) | 1 << 5; // Rn = x1, pointing into buf
                if w & mask & (1 << 23) != 0 {
                    let rm = (rng.next() % 17) as u32;
                    let rm = if rm == 16 { 31 } else { rm };
                    w = (w & !(0x1f << 16)) | rm << 16;
                }
            }
            if g == super::Group::Copy {
                w = (w & !0x3ff) | gpr(w >> 5 & 31) << 5 | gpr(w & 31);
            }
            if implemented(w) {
                good += 1;
                out.push(Case { insn: w, ldst });
            } else if bad < 10 {
                let mine =
                    decode(w).is_some_and(|i| handler_for(&i.opcode).is_some() && !fp_like(&i));
                if mine {
                    bad += 1;
                    out.push(Case { insn: w, ldst });
                }
            }
        }
    }
    out
}

/// Encodings yaxpeax names like one of ours that belong to later extensions qemu implements.
fn fp_like(i: &yaxpeax_arm::armv8::a64::Instruction) -> bool {
    let s = i.to_string();
    s.starts_with('f') || s.contains(".h[") || s.contains("sdot") || s.contains("udot")
}

fn tool_ok(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn differential_against_qemu() {
    if !tool_ok("qemu-aarch64") || !tool_ok("aarch64-linux-gnu-gcc") {
        eprintln!("skipping: qemu-aarch64 or aarch64-linux-gnu-gcc not found");
        return;
    }
    let cases = cases();
    let mut c = String::from(C_PROLOGUE);
    c.push_str("asm(\".text\\n.balign 8\\n.global stubs\\nstubs:\\n\"\n");
    for case in &cases {
        c.push_str(&format!("\".inst {:#010x}\\nret\\n\"\n", case.insn));
    }
    c.push_str(");\nint main(void) {\n  struct sigaction sa; memset(&sa, 0, sizeof sa);\n");
    c.push_str("  sa.sa_handler = handler; sa.sa_flags = SA_NODEFER;\n");
    c.push_str(
        "  sigaction(SIGILL, &sa, 0); sigaction(SIGSEGV, &sa, 0); sigaction(SIGBUS, &sa, 0);\n",
    );
    c.push_str("  printf(\"BUF %llx\\n\", (unsigned long long)buf);\n");
    c.push_str("  static const unsigned char ld[] = {");
    for case in &cases {
        c.push_str(if case.ldst { "1," } else { "0," });
    }
    c.push_str("};\n");
    c.push_str(&format!(
        "  for (int i = 0; i < {}; i++) one(i, ld[i]);\n  return 0;\n}}\n",
        cases.len()
    ));

    let dir = std::env::temp_dir().join(format!("vmc-simd-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.c");
    let exe = dir.join("t");
    std::fs::write(&src, &c).unwrap();
    let out = std::process::Command::new("aarch64-linux-gnu-gcc")
        .args(["-O1", "-static", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cross compile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("qemu-aarch64")
        .arg(&exe)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "qemu run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let buf_addr =
        u64::from_str_radix(lines.next().unwrap().strip_prefix("BUF ").unwrap(), 16).unwrap();

    let mut failures = Vec::new();
    let mut bypassed = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut count = 0;
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let idx: usize = f[0].parse().unwrap();
        let sig: i32 = f[1].parse().unwrap();
        let hex = |i: usize| u64::from_str_radix(f[i], 16).unwrap();
        let case = &cases[idx];
        let inp = inputs(idx, case.ldst);
        let mut st = CpuState {
            v: inp.v,
            ..Default::default()
        };
        st.x[..16].copy_from_slice(&inp.x);
        let mut mem = FlatMemory::new(buf_addr, 256);
        mem.bytes.copy_from_slice(&inp.buf);
        if case.ldst {
            st.x[1] = buf_addr + 64;
        }
        let (exit, by) = run_one(&mut st, &mut mem, case.insn);
        let dis = crate::a64::disasm(case.insn, CODE);
        if by {
            bypassed.insert(format!("{:?}", decode(case.insn).map(|i| i.opcode)));
        }
        let our_sig = match exit {
            Exit::Continue(_) => 0,
            Exit::Trap {
                kind: TrapKind::Undefined,
                ..
            } => 4,
            Exit::Fault {
                fault: Fault::Segv { .. },
                ..
            } => 11,
            other => panic!("unexpected exit {other:?}"),
        };
        count += 1;
        if sig != our_sig {
            failures.push(format!(
                "{:08x} {dis}: qemu signal {sig}, ours {our_sig}",
                case.insn
            ));
            continue;
        }
        if sig != 0 {
            continue;
        }
        seen.insert(dis.split(' ').next().unwrap_or("").to_string());
        let mut diffs = Vec::new();
        for r in 0..32 {
            let q = hex(2 + 2 * r) as u128 | (hex(3 + 2 * r) as u128) << 64;
            if q != st.v[r] {
                diffs.push(format!(
                    "v{r}: qemu {q:032x} ours {:032x} (in n? {:032x})",
                    st.v[r], inp.v[r]
                ));
            }
        }
        for r in 0..16 {
            if hex(66 + r) != st.x[r] {
                diffs.push(format!("x{r}: qemu {:x} ours {:x}", hex(66 + r), st.x[r]));
            }
        }
        if hex(82) != st.fpsr {
            diffs.push(format!("fpsr: qemu {:x} ours {:x}", hex(82), st.fpsr));
        }
        if case.ldst {
            for i in 0..32 {
                let ours = u64::from_le_bytes(mem.bytes[8 * i..8 * i + 8].try_into().unwrap());
                if hex(83 + i) != ours {
                    diffs.push(format!(
                        "buf[{}]: qemu {:016x} ours {ours:016x}",
                        8 * i,
                        hex(83 + i)
                    ));
                }
            }
        }
        if !diffs.is_empty() {
            failures.push(format!("{:08x} {dis}: {}", case.insn, diffs.join("; ")));
        }
    }
    assert_eq!(count, cases.len(), "qemu output truncated");
    let missing: Vec<&str> = EXPECTED
        .split_whitespace()
        .filter(|m| !seen.contains(*m))
        .collect();
    assert!(missing.is_empty(), "mnemonics never exercised: {missing:?}");
    eprintln!(
        "simd differential: {count} cases, {} mnemonics ran: {seen:?}",
        seen.len()
    );
    if !bypassed.is_empty() {
        eprintln!("NOTE: routed around the main dispatch table (shared opcodes): {bypassed:?}");
    }
    for f in failures.iter().take(40) {
        eprintln!("MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from qemu",
        failures.len()
    );
}
