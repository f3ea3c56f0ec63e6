//! Shared helpers of the runtime's integration tests: a small PRNG, a builder of minimal
//! static AArch64 ELF images, and a runner that executes such an image in a [`Process`] with
//! a chosen tier configuration and captures the final state.

#![allow(dead_code)]

pub mod gen;

use std::path::Path;

use vmc_compiler::CpuState;
use vmc_runtime::tiers::{TierConfig, TierMode};
use vmc_runtime::{ExecOptions, Process, ProcessConfig, Termination, Timing};

/// Small deterministic PRNG (xorshift64*), as in the compiler's tests.
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
    /// Uniform in 0..n, as u32.
    pub fn b32(&mut self, n: u32) -> u32 {
        self.below(n as u64) as u32
    }
    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// A random bool.
    pub fn coin(&mut self) -> bool {
        self.next() >> 63 != 0
    }
    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
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
    /// A double's bit pattern, biased to special values.
    pub fn f64_bits(&mut self) -> u64 {
        const SPECIAL: [f64; 12] = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            0.5,
            3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-310,
            -12345.678,
        ];
        // Edges of the inline FP paths: the two lowest normal binades (underflow), the top
        // one (overflow), and the integer conversion limits.
        const EDGE: [f64; 16] = [
            3.0 * f64::MIN_POSITIVE,
            1.5e-308,
            1.0e-154,
            -1.2e-154,
            1.0e154,
            1.6e308,
            9007199254740993.0,
            -2147483648.75,
            -2147483649.0,
            2147483647.5,
            4294967295.5,
            -0.75,
            9.223372036854775e18,
            i64::MIN as f64,
            f64::from_bits(0x43ef_ffff_ffff_ffff),
            1.8446744073709552e19,
        ];
        match self.below(10) {
            0..=2 => self.pick(&SPECIAL).to_bits(),
            3 => f64::NAN.to_bits() | (self.next() & 0xf_ffff),
            4 => ((self.next() % 2000) as f64 - 1000.0).to_bits(),
            5 => self.pick(&EDGE).to_bits(),
            // Moderate magnitudes: results mostly stay normal (the fast paths).
            6 => (self.next() & 0x800f_ffff_ffff_ffff) | (1000 + self.below(48)) << 52,
            _ => self.next(),
        }
    }
    /// A float's bit pattern, biased to special values.
    pub fn f32_bits(&mut self) -> u32 {
        const SPECIAL: [f32; 16] = [
            0.0,
            -0.0,
            1.0,
            -2.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            1e-40,
            7.25,
            f32::MIN_POSITIVE,
            2.5e-38,
            1.1e-19,
            3.0e38,
            16777217.0,
            -2147483648.0,
            4294967040.0,
        ];
        match self.below(8) {
            0..=2 => self.pick(&SPECIAL).to_bits(),
            3 => f32::NAN.to_bits() | (self.u32() & 0xfff),
            4 => (self.u32() & 0x807f_ffff) | (110 + self.b32(32)) << 23,
            _ => self.u32(),
        }
    }
}

/// Reads an unsigned integer from the environment.
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// One PT_LOAD segment of a test image.
pub struct Segment {
    /// Guest address.
    pub vaddr: u64,
    /// Contents (file size = memory size).
    pub bytes: Vec<u8>,
    /// ELF p_flags: PF_X = 1, PF_W = 2, PF_R = 4.
    pub flags: u32,
}

/// A minimal static ELF64 AArch64 executable (ET_EXEC) with the given segments and entry.
pub fn elf_image(entry: u64, segments: &[Segment]) -> Vec<u8> {
    const EHSIZE: usize = 64;
    const PHENTSIZE: usize = 56;
    let phoff = EHSIZE;
    let mut data_off = phoff + PHENTSIZE * segments.len();
    data_off = (data_off + 15) & !15;
    let mut out = Vec::new();
    // e_ident
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SysV ABI
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&(phoff as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PHENTSIZE as u16).to_le_bytes());
    out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(out.len(), EHSIZE);
    let mut off = data_off;
    for s in segments {
        out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        out.extend_from_slice(&s.flags.to_le_bytes());
        out.extend_from_slice(&(off as u64).to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&4096u64.to_le_bytes());
        off += s.bytes.len();
    }
    out.resize(data_off, 0);
    for s in segments {
        out.extend_from_slice(&s.bytes);
    }
    out
}

/// A named tier configuration to run images under.
#[derive(Clone, Copy, Debug)]
pub struct TierRun {
    /// Name for reports.
    pub name: &'static str,
    /// The configuration.
    pub cfg: TierConfig,
}

/// A tier configuration with a small code cache.
pub fn tier_config(mode: TierMode, baseline_threshold: u32, opt_threshold: u32) -> TierConfig {
    TierConfig {
        mode,
        baseline_threshold,
        opt_threshold,
        code_cache_size: 4 << 20,
        ..TierConfig::default()
    }
}

/// The reference (interpreter) configuration.
pub fn interp_tier() -> TierRun {
    TierRun {
        name: "interp",
        cfg: tier_config(TierMode::Interp, 2, 500),
    }
}

/// The JIT configurations compared with the interpreter.
pub fn jit_tiers() -> Vec<TierRun> {
    let mut all = vec![
        TierRun {
            name: "baseline",
            cfg: tier_config(TierMode::Baseline, 1, 1),
        },
        TierRun {
            name: "opt",
            cfg: tier_config(TierMode::Opt, 1, 1),
        },
        TierRun {
            name: "auto-eager",
            cfg: tier_config(TierMode::Auto, 1, 2),
        },
    ];
    // VMC_JIT_TIERS=opt,baseline restricts the tiers (for chasing one failure).
    if let Ok(only) = std::env::var("VMC_JIT_TIERS") {
        all.retain(|t| only.split(',').any(|n| n == t.name));
    }
    all
}

/// The state a run ended in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Final {
    /// Registers after the exit syscall (or at the fault).
    pub cpu: CpuState,
    /// The watched memory range after the run.
    pub mem: Vec<u8>,
    /// How the guest ended.
    pub term: Termination,
}

/// Loads `image`, replaces the initial registers by `init` (pc excepted: the entry), runs it
/// under `cfg` and returns the final state and `watch_len` bytes at `watch`.
pub fn run_image(
    image: &[u8],
    init: &CpuState,
    cfg: TierConfig,
    watch: u64,
    watch_len: u64,
) -> Final {
    run_image_bounded(image, init, cfg, watch, watch_len, None)
}

/// [`run_image`] with at most `max_dispatches` dispatcher iterations (then the run ends with
/// SIGXCPU, see [`is_budget_exhausted`]).
pub fn run_image_bounded(
    image: &[u8],
    init: &CpuState,
    cfg: TierConfig,
    watch: u64,
    watch_len: u64,
    max_dispatches: Option<u64>,
) -> Final {
    let mut p = Process::spawn_image(
        image,
        Path::new("jit-diff-guest"),
        &[],
        &[],
        &ProcessConfig::default(),
    )
    .expect("load test image");
    let entry = p.cpu.pc;
    *p.cpu = init.clone();
    p.cpu.pc = entry;
    let opts = ExecOptions {
        trace: false,
        tiers: cfg,
        timing: false,
        aot: None,
        max_dispatches,
        profile: None,
    };
    let mut timing = Timing::default();
    let term = p.run(&opts, &mut timing);
    let mem = p
        .mem
        .slice(watch, watch_len)
        .map(|s| s.to_vec())
        .unwrap_or_default();
    Final {
        cpu: p.cpu.clone(),
        mem,
        term,
    }
}

/// Whether a run ended because its dispatch budget ran out.
pub fn is_budget_exhausted(t: &Termination) -> bool {
    matches!(t, Termination::Signaled { signal, .. } if *signal == vmc_runtime::exec::sig::SIGXCPU)
}
