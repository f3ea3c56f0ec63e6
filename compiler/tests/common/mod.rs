//! Shared harness of the differential tests: runs short A64 instruction sequences both in the
//! reference interpreter and under `qemu-aarch64` (a generated static program), and compares
//! the full general-register state, NZCV, the path a branch took, the signal raised and a
//! scratch buffer mapped at the same guest address in both worlds.
//!
//! The qemu program: a C driver reads the case inputs from a binary file, maps the scratch
//! buffer at [`BUF_ADDR`], and calls `run_case` (assembly) for each case. `run_case` saves the
//! callee-saved registers and SP, loads NZCV, SP and x0..x29 from the case record, puts x30
//! in d30, and jumps (through x30) to the case code:
//!
//! ```text
//! case_N: fmov x30, d30        ; x30 = its input value
//!         .inst W0 [, W1]      ; the instruction(s) under test, at case_N + 4
//!         fmov d30, x30        ; fall-through path (path 0)
//!         mov  x30, #0
//!         b    save_common
//!         fmov d30, x30        ; branch target: case_N + 4 + 16 (path 1)
//!         mov  x30, #1
//!         b    save_common
//! ```
//!
//! `save_common` parks x0..x29 in d0..d29, reads NZCV and SP, restores the host SP and writes
//! the record. SIGILL, SIGSEGV, SIGBUS and SIGTRAP are caught on an alternate stack: the
//! handler records the signal and skips the faulting instruction (pc += 4).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmc_compiler::a64::{disasm, translate_block_limit};
use vmc_compiler::interp::{run_block, Exit};
use vmc_compiler::ir::{self, TrapKind};
use vmc_compiler::mem::{Fault, FlatMemory};
use vmc_compiler::state::CpuState;

/// Guest address of the scratch buffer in both worlds.
pub const BUF_ADDR: u64 = 0x0000_0040_0000_0000;
/// Size of the scratch buffer (one page).
pub const BUF_SIZE: usize = 4096;
/// Offset of the branch target from the branch instruction (imm19 = imm14 = 4).
pub const TAKEN_OFFSET: u64 = 16;

/// Small deterministic PRNG (xorshift64*).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// A random bool.
    pub fn coin(&mut self) -> bool {
        self.next() >> 63 != 0
    }
    /// A random element.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// A register value with a bias towards edge cases.
    pub fn value(&mut self) -> u64 {
        const EDGE: [u64; 22] = [
            0,
            1,
            u64::MAX,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0xffff_ffff_8000_0000,
            0xffff_ffff_7fff_ffff,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x8000_0000_0000_0001,
            0x1_0000_0000,
            2,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            31,
            32,
            63,
        ];
        match self.below(10) {
            0 | 1 => self.pick(&EDGE),
            2 => self.below(70),
            3 => self.next() & 0xffff_ffff,
            4 => self.next() as u32 as i32 as i64 as u64,
            5 => self.next() & 0x8000_0000_ffff_ffff,
            _ => self.next(),
        }
    }
}

/// One differential case: up to a few instruction words run in sequence, with their inputs.
#[derive(Clone, Debug)]
pub struct Case {
    /// Class label (for statistics and reports).
    pub class: &'static str,
    /// The instruction words (a branch must be alone).
    pub words: Vec<u32>,
    /// x0..x30 and SP (index 31).
    pub x: [u64; 32],
    /// NZCV in architectural position.
    pub nzcv: u64,
    /// Initial scratch buffer, when the case touches memory.
    pub buf: Option<Vec<u8>>,
}

/// The state after running a case in one world.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// x0..x30 and SP.
    pub x: [u64; 32],
    /// NZCV.
    pub nzcv: u64,
    /// 0: fell through; 1: branch taken; other values: unexpected pc (interpreter only).
    pub path: u64,
    /// Signal number (0 if none).
    pub sig: u64,
    /// Final buffer (when the case has one).
    pub buf: Option<Vec<u8>>,
}

/// Whether a host tool runs.
pub fn tool_ok(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `Some(reason)` when qemu-aarch64 or the cross compiler is missing.
pub fn missing_tools() -> Option<&'static str> {
    if !tool_ok("qemu-aarch64") {
        Some("qemu-aarch64 not found")
    } else if !tool_ok("aarch64-linux-gnu-gcc") {
        Some("aarch64-linux-gnu-gcc not found")
    } else {
        None
    }
}

const C_DRIVER: &str = r#"
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

extern void run_case(const uint64_t *in, uint64_t *out, void *code);
extern void *case_table[];
extern uint64_t case_count;
volatile uint64_t g_sig;

static void handler(int sig, siginfo_t *si, void *ucv) {
  (void)si;
  ucontext_t *uc = ucv;
  uc->uc_mcontext.pc += 4;
  g_sig = (uint64_t)sig;
}

int main(int argc, char **argv) {
  if (argc != 3) return 3;
  FILE *fi = fopen(argv[1], "rb");
  FILE *fo = fopen(argv[2], "wb");
  if (!fi || !fo) { perror("fopen"); return 2; }
  uint8_t *buf = mmap((void *)BUF_ADDR, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf != (uint8_t *)BUF_ADDR) { fprintf(stderr, "mmap at %#lx gave %p\n", (unsigned long)BUF_ADDR, buf); return 2; }
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_size = 1 << 16;
  ss.ss_sp = malloc(ss.ss_size);
  if (sigaltstack(&ss, 0)) { perror("sigaltstack"); return 2; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigaction(SIGILL, &sa, 0);
  sigaction(SIGSEGV, &sa, 0);
  sigaction(SIGBUS, &sa, 0);
  sigaction(SIGTRAP, &sa, 0);
  sigaction(SIGFPE, &sa, 0);
  uint64_t n;
  if (fread(&n, 8, 1, fi) != 1 || n != case_count) { fprintf(stderr, "bad input header\n"); return 2; }
  for (uint64_t i = 0; i < n; i++) {
    uint64_t in[34], out[36];
    if (fread(in, 8, 34, fi) != 34) { fprintf(stderr, "short input\n"); return 2; }
    if (in[33] & 1) {
      if (fread(buf, 1, BUF_SIZE, fi) != BUF_SIZE) { fprintf(stderr, "short input\n"); return 2; }
    }
    memset(out, 0, sizeof out);
    g_sig = 0;
    run_case(in, out, case_table[i]);
    out[34] = g_sig;
    out[35] = (uint64_t)case_table[i];
    fwrite(out, 8, 36, fo);
    if (in[33] & 1) fwrite(buf, 1, BUF_SIZE, fo);
    fflush(fo);
  }
  fclose(fo);
  return 0;
}
"#;

const ASM_RUNNER: &str = r#"
    .text
    .balign 16
    .global run_case
run_case:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    adrp x9, g_save
    add x9, x9, :lo12:g_save
    mov x10, sp
    str x10, [x9]
    str x1, [x9, #8]
    clrex
    ldr d30, [x0, #240]
    mov x30, x2
    ldr x10, [x0, #256]
    msr nzcv, x10
    ldr x10, [x0, #248]
    mov sp, x10
    ldp x1, x2, [x0, #8]
    ldp x3, x4, [x0, #24]
    ldp x5, x6, [x0, #40]
    ldp x7, x8, [x0, #56]
    ldp x9, x10, [x0, #72]
    ldp x11, x12, [x0, #88]
    ldp x13, x14, [x0, #104]
    ldp x15, x16, [x0, #120]
    ldp x17, x18, [x0, #136]
    ldp x19, x20, [x0, #152]
    ldp x21, x22, [x0, #168]
    ldp x23, x24, [x0, #184]
    ldp x25, x26, [x0, #200]
    ldp x27, x28, [x0, #216]
    ldr x29, [x0, #232]
    ldr x0, [x0]
    br x30

save_common:
    fmov d0, x0
    fmov d1, x1
    fmov d2, x2
    fmov d3, x3
    fmov d4, x4
    fmov d5, x5
    fmov d6, x6
    fmov d7, x7
    fmov d8, x8
    fmov d9, x9
    fmov d10, x10
    fmov d11, x11
    fmov d12, x12
    fmov d13, x13
    fmov d14, x14
    fmov d15, x15
    fmov d16, x16
    fmov d17, x17
    fmov d18, x18
    fmov d19, x19
    fmov d20, x20
    fmov d21, x21
    fmov d22, x22
    fmov d23, x23
    fmov d24, x24
    fmov d25, x25
    fmov d26, x26
    fmov d27, x27
    fmov d28, x28
    fmov d29, x29
    mrs x0, nzcv
    mov x1, sp
    adrp x9, g_save
    add x9, x9, :lo12:g_save
    ldr x10, [x9]
    mov sp, x10
    ldr x11, [x9, #8]
    stp d0, d1, [x11, #0]
    stp d2, d3, [x11, #16]
    stp d4, d5, [x11, #32]
    stp d6, d7, [x11, #48]
    stp d8, d9, [x11, #64]
    stp d10, d11, [x11, #80]
    stp d12, d13, [x11, #96]
    stp d14, d15, [x11, #112]
    stp d16, d17, [x11, #128]
    stp d18, d19, [x11, #144]
    stp d20, d21, [x11, #160]
    stp d22, d23, [x11, #176]
    stp d24, d25, [x11, #192]
    stp d26, d27, [x11, #208]
    stp d28, d29, [x11, #224]
    str d30, [x11, #240]
    str x1, [x11, #248]
    str x0, [x11, #256]
    str x30, [x11, #264]
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
"#;

fn asm_source(cases: &[Case]) -> String {
    let mut s = String::from(ASM_RUNNER);
    for (i, c) in cases.iter().enumerate() {
        assert!(!c.words.is_empty() && c.words.len() <= 4);
        let _ = writeln!(s, "    .balign 4\ncase_{i}:\n    fmov x30, d30");
        for w in &c.words {
            let _ = writeln!(s, "    .inst {w:#010x}");
        }
        s.push_str("    fmov d30, x30\n    mov x30, #0\n    b save_common\n");
        s.push_str("    fmov d30, x30\n    mov x30, #1\n    b save_common\n");
    }
    s.push_str("    .data\n    .balign 8\n    .global case_table\ncase_table:\n");
    for i in 0..cases.len() {
        let _ = writeln!(s, "    .quad case_{i}");
    }
    let _ = writeln!(
        s,
        "    .global case_count\ncase_count:\n    .quad {}",
        cases.len()
    );
    s.push_str("    .bss\n    .balign 16\ng_save:\n    .skip 32\n");
    s
}

fn input_file(cases: &[Case]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(cases.len() as u64).to_le_bytes());
    for c in cases {
        for v in c.x {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&c.nzcv.to_le_bytes());
        out.extend_from_slice(&(c.buf.is_some() as u64).to_le_bytes());
        if let Some(b) = &c.buf {
            assert_eq!(b.len(), BUF_SIZE);
            out.extend_from_slice(b);
        }
    }
    out
}

/// Results of one qemu run: the outcome and the code address of each case, in order.
pub struct QemuRun {
    /// (outcome, address of the case code) per case that completed.
    pub results: Vec<(Outcome, u64)>,
    /// qemu's stderr when the run stopped early.
    pub error: Option<String>,
}

fn work_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmc-diff-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn build(dir: &Path, cases: &[Case]) -> Result<PathBuf, String> {
    let c_src = dir.join("driver.c");
    let s_src = dir.join("cases.S");
    let exe = dir.join("prog");
    std::fs::write(&c_src, C_DRIVER).map_err(|e| e.to_string())?;
    std::fs::write(&s_src, asm_source(cases)).map_err(|e| e.to_string())?;
    let out = Command::new("aarch64-linux-gnu-gcc")
        .args(["-O1", "-static", "-no-pie"])
        .arg(format!("-DBUF_ADDR={BUF_ADDR:#x}UL"))
        .arg(format!("-DBUF_SIZE={BUF_SIZE}"))
        .arg("-o")
        .arg(&exe)
        .arg(&c_src)
        .arg(&s_src)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cross compile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(exe)
}

/// Builds the program for `cases` and runs it under `qemu-aarch64 -cpu <cpu>`.
pub fn run_qemu(tag: &str, cpu: &str, cases: &[Case]) -> QemuRun {
    let dir = work_dir(tag);
    let exe = match build(&dir, cases) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let inp = dir.join("in.bin");
    let outp = dir.join("out.bin");
    std::fs::write(&inp, input_file(cases)).unwrap();
    let out = Command::new("qemu-aarch64")
        .args(["-cpu", cpu])
        .arg(&exe)
        .arg(&inp)
        .arg(&outp)
        .output()
        .expect("run qemu-aarch64");
    let data = std::fs::read(&outp).unwrap_or_default();
    let error = (!out.status.success()).then(|| {
        format!(
            "qemu exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut results = Vec::new();
    let mut pos = 0usize;
    let rd = |p: usize| u64::from_le_bytes(data[p..p + 8].try_into().unwrap());
    for c in cases {
        if pos + 36 * 8 > data.len() {
            break;
        }
        let mut x = [0u64; 32];
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = rd(pos + 8 * i);
        }
        let nzcv = rd(pos + 32 * 8);
        let path = rd(pos + 33 * 8);
        let sig = rd(pos + 34 * 8);
        let code = rd(pos + 35 * 8);
        pos += 36 * 8;
        let buf = if c.buf.is_some() {
            if pos + BUF_SIZE > data.len() {
                break;
            }
            let b = data[pos..pos + BUF_SIZE].to_vec();
            pos += BUF_SIZE;
            Some(b)
        } else {
            None
        };
        results.push((
            Outcome {
                x,
                nzcv,
                path,
                sig,
                buf,
            },
            code,
        ));
    }
    QemuRun { results, error }
}

/// Signal number the guest would get for an interpreter exit, if any.
fn exit_signal(exit: &Exit) -> Option<u64> {
    match exit {
        Exit::Continue(_) => None,
        Exit::Syscall => Some(999),
        Exit::Trap {
            kind: TrapKind::Undefined | TrapKind::PermanentlyUndefined,
            ..
        } => Some(4),
        Exit::Trap {
            kind: TrapKind::Breakpoint,
            ..
        } => Some(5),
        Exit::Trap {
            kind: TrapKind::FetchFault,
            ..
        } => Some(11),
        Exit::Fault {
            fault: Fault::Segv { .. },
            ..
        } => Some(11),
        Exit::Fault {
            fault: Fault::Bus { .. } | Fault::Unbacked { .. },
            ..
        } => Some(7),
        Exit::Fault {
            fault: Fault::Undefined { .. },
            ..
        } => Some(4),
    }
}

/// Runs `case` in the interpreter with its first word at `insn_pc`, one instruction per
/// block (every block is also checked with `ir::verify`).
pub fn run_interp(case: &Case, insn_pc: u64) -> Result<Outcome, String> {
    let mut st = CpuState {
        nzcv: case.nzcv,
        pc: insn_pc,
        ..Default::default()
    };
    st.x = case.x;
    let mut mem = FlatMemory::new(BUF_ADDR, BUF_SIZE);
    if let Some(b) = &case.buf {
        mem.bytes.copy_from_slice(b);
    }
    let words = &case.words;
    let end = insn_pc + 4 * words.len() as u64;
    let mut sig = 0;
    let mut temps = Vec::new();
    for _ in 0..words.len() {
        let mut fetch = |a: u64| {
            (a >= insn_pc && a < end && a.is_multiple_of(4))
                .then(|| words[((a - insn_pc) / 4) as usize])
        };
        let block = translate_block_limit(&mut fetch, st.pc, 1);
        if let Err(e) = ir::verify(&block) {
            return Err(format!("ir::verify failed: {e}\n{block}"));
        }
        let exit = run_block(&block, &mut st, &mut mem, &mut temps);
        if let Some(s) = exit_signal(&exit) {
            sig = s;
            break;
        }
        if st.pc < insn_pc || st.pc >= end {
            break;
        }
    }
    let path = if sig != 0 || st.pc == end {
        0
    } else if words.len() == 1 && st.pc == insn_pc + TAKEN_OFFSET {
        1
    } else {
        // Unexpected pc: report it (distinct from 0 and 1).
        st.pc | 1 << 63
    };
    Ok(Outcome {
        x: st.x,
        nzcv: st.nzcv,
        path,
        sig,
        buf: case.buf.as_ref().map(|_| mem.bytes.clone()),
    })
}

fn reg_name(i: usize) -> String {
    if i == 31 {
        "sp".to_string()
    } else {
        format!("x{i}")
    }
}

/// Names of the fields that differ, for one-line summaries.
pub fn differing_fields(q: &Outcome, i: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    for r in 0..32 {
        if q.x[r] != i.x[r] {
            out.push(reg_name(r));
        }
    }
    if q.nzcv != i.nzcv {
        out.push("nzcv".into());
    }
    if q.path != i.path {
        out.push("path".into());
    }
    if q.sig != i.sig {
        out.push(format!("signal(qemu {}, interp {})", q.sig, i.sig));
    }
    if let (Some(a), Some(b)) = (&q.buf, &i.buf) {
        let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
        if n > 0 {
            out.push(format!("{n} buffer bytes"));
        }
    }
    out
}

/// Side-by-side report of one mismatch: the words, the inputs, then every field with a `*`
/// on those that differ (buffer bytes: those that differ or changed in either world).
pub fn report(case: &Case, insn_pc: u64, q: &Outcome, i: &Outcome) -> String {
    let mut s = String::new();
    for (k, w) in case.words.iter().enumerate() {
        let pc = insn_pc + 4 * k as u64;
        let _ = writeln!(s, "  insn {pc:#x}: {w:08x}  {}", disasm(*w, pc));
    }
    let _ = write!(s, "  input: nzcv={:04b}", case.nzcv >> 28);
    for r in 0..32 {
        if r % 4 == 0 {
            s.push_str("\n        ");
        }
        let _ = write!(s, " {:>3}={:016x}", reg_name(r), case.x[r]);
    }
    s.push('\n');
    let _ = writeln!(s, "  {:<10} {:>18} {:>18}", "field", "qemu", "interp");
    let mut row = |name: &str, a: u64, b: u64| {
        let mark = if a != b { "*" } else { "" };
        let _ = writeln!(s, "  {name:<10} {a:>18x} {b:>18x} {mark}");
    };
    for r in 0..32 {
        row(&reg_name(r), q.x[r], i.x[r]);
    }
    row("nzcv", q.nzcv >> 28, i.nzcv >> 28);
    row("path", q.path, i.path);
    row("signal", q.sig, i.sig);
    if let (Some(qb), Some(ib), Some(inb)) = (&q.buf, &i.buf, &case.buf) {
        let mut shown = 0;
        for k in 0..BUF_SIZE {
            if qb[k] != ib[k] || qb[k] != inb[k] || ib[k] != inb[k] {
                if shown < 64 {
                    let mark = if qb[k] != ib[k] { "*" } else { "" };
                    let name = format!("buf[{k:#x}]");
                    let _ = writeln!(
                        s,
                        "  {name:<10} {:>18x} {:>18x} {mark} (was {:02x})",
                        qb[k], ib[k], inb[k]
                    );
                }
                shown += 1;
            }
        }
        if shown > 64 {
            let _ = writeln!(s, "  ... {} more changed buffer bytes", shown - 64);
        }
    }
    s
}
