//! Random differential test of the JIT tiers against the reference interpreter.
//!
//! Each case is a random A64 program: straight-line runs of random instructions (integer data
//! processing with and without flags, conditional select/compare, loads and stores of every
//! size and addressing mode into a data area, system register moves, a few LSE atomics, and a
//! sprinkling of scalar FP and vector instructions and SIMD loads/stores; a third of the
//! programs use scalar FP only, so their loops keep V registers in variables), forward branches
//! of every kind (B.cond on every condition, CBZ/CBNZ, TBZ/TBNZ, B, BL, ADR + BR/BLR/RET)
//! inside those runs, and small loops bounded by a counter register (backward CBNZ/B.cond).
//! The program ends with `exit` (x8 = 93, `svc #0`). It is packed into a minimal static ELF
//! (code segment + 16 KiB data segment) and run through the whole runtime path
//! (`Process::spawn_image` + `Process::run`: block translation, tier policy, region formation,
//! chaining, slow paths) from the same random initial state (x0..x30, SP, NZCV, FPCR, FPSR,
//! TPIDR, v0..v31, data bytes) under `--tier interp` (the reference), `baseline`, `opt` and
//! `auto` with thresholds 1/2. The final CPU state (x0..x30, SP, PC, NZCV, FPCR, FPSR, V
//! registers, ...), the data area and the termination (exit status or signal and reason)
//! must be identical.
//!
//! Register roles, so that memory accesses mostly stay inside the data area and loops end:
//! x20..x23 and SP are base registers (changed only by writeback), x24 a small index, x28
//! the loop counter, x8 the syscall number; random instructions write the others. Faults
//! (a base that wandered off) are fine: the termination and state at the fault are compared.
//!
//! `VMC_JIT_CASES=N` (default 2000), `VMC_JIT_SEED=S` (default 11, fixed so CI is deterministic; always
//! printed), `VMC_JIT_CASE=I` runs only case I of the seed, `VMC_JIT_JOBS=N` threads,
//! `VMC_JIT_MAX_FAILURES=N` (default 3) stops after N mismatching cases. On a
//! mismatch the case is shrunk (instructions replaced by NOP while the mismatch persists) and
//! both the original and the shrunk program are printed with a side-by-side dump of the final
//! states (`*` marks every difference).
//!
//! Non-terminating programs. The generator can still, rarely, build a program that never
//! ends (a random instruction overwrites a register a later BR/RET or loop counter uses, a
//! branch lands before its loop's counter setup, ...). Every run is therefore bounded:
//! - Every run goes through the dispatcher with a budget (`ExecOptions::max_dispatches`):
//!   [`INTERP_BUDGET`] dispatches (= executed blocks) for the interpreter, twice that for the
//!   JIT tiers (one dispatch there runs at least one block, so a JIT run needs at most as
//!   many as the interpreter; the factor is slack). An exhausted budget ends the run with
//!   SIGXCPU. A case whose interpreter run exhausts the budget is counted as
//!   non-terminating and skipped (the summary line reports how many); a JIT run that
//!   exhausts its budget while the interpreter's did not is an ordinary mismatch (its
//!   termination differs), shrunk and reported like any other.
//! - Translated code can loop without ever returning to the dispatcher (loops inside an
//!   optimized region, chained tail calls between translations), where no budget can be
//!   checked. A watchdog (the test's main thread) therefore watches every run's wall time;
//!   a run still going after `VMC_JIT_TIMEOUT` seconds (default 120, orders of magnitude
//!   above any real run, which takes milliseconds) is reported as a hang naming the seed,
//!   case, tier and program, and the test process exits with failure, since a thread stuck
//!   in translated code cannot be stopped.

mod common;

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::gen::*;
use common::{
    env_u64, interp_tier, is_budget_exhausted, jit_tiers, run_image_bounded, Final, Rng, TierRun,
};
use vmc_compiler::a64::disasm;
use vmc_compiler::CpuState;

/// Prints on the real stderr (not captured by the test harness).
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

/// Dispatcher iterations the interpreter may use before a case counts as non-terminating
/// (generated programs need a few hundred at most).
const INTERP_BUDGET: u64 = 100_000;

/// A run in progress on a worker thread, for the watchdog.
struct Running {
    since: Instant,
    case: u64,
    tier: &'static str,
    program: Program,
}

/// The run in progress per worker thread (indexed by [`WORKER`]).
static RUNNING: Mutex<Vec<Option<Running>>> = Mutex::new(Vec::new());

thread_local! {
    /// This worker's slot in [`RUNNING`] and the case it is on (unset: not watched).
    static WORKER: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

fn set_running(slot: usize, r: Option<Running>) {
    let mut all = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    if all.len() <= slot {
        all.resize_with(slot + 1, || None);
    }
    all[slot] = r;
}

/// Runs the program under `tier` with the dispatch budget, watched by the watchdog when
/// called from a worker.
fn run(p: &Program, st: &CpuState, data: &[u8], tier: &TierRun) -> Final {
    let worker = WORKER.get();
    if let Some((slot, case)) = worker {
        set_running(
            slot,
            Some(Running {
                since: Instant::now(),
                case,
                tier: tier.name,
                program: p.clone(),
            }),
        );
    }
    let budget = if tier.name == "interp" {
        INTERP_BUDGET
    } else {
        2 * INTERP_BUDGET
    };
    let f = run_image_bounded(&image(p, data), st, tier.cfg, DATA, DATA_LEN, Some(budget));
    if let Some((slot, _)) = worker {
        set_running(slot, None);
    }
    f
}

/// Watches the workers' runs until `finished` says all workers are done; a run older than
/// `limit` is reported and ends the test process (its thread cannot be stopped).
fn watchdog(seed: u64, limit: Duration, finished: &dyn Fn() -> bool) {
    while !finished() {
        std::thread::sleep(Duration::from_millis(100));
        let all = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = all.iter().flatten().find(|r| r.since.elapsed() > limit) else {
            continue;
        };
        let what = if r.tier == "interp" {
            "the interpreter run (bounded by its dispatch budget) did not finish: a runtime bug"
                .to_string()
        } else {
            format!(
                "the {} run did not finish although the interpreter ends within {INTERP_BUDGET} \
                 dispatches: translated code loops without returning to the dispatcher",
                r.tier
            )
        };
        say!(
            "HANG case {case} (VMC_JIT_SEED={seed} VMC_JIT_CASE={case}), tier {tier}: after {:.0} s, {what}\n  program (the case's, or a shrunk version of it):\n{}",
            r.since.elapsed().as_secs_f64(),
            listing(&r.program, None),
            case = r.case,
            tier = r.tier,
        );
        std::process::exit(101);
    }
}

/// Replaces instructions by NOP (the layout, hence every branch offset, stays the same) while
/// `tier` still disagrees with the interpreter on the same fields.
fn shrink(p: &Program, st: &CpuState, data: &[u8], tier: &TierRun) -> Program {
    let mut cur = p.clone();
    let interp = interp_tier();
    let what = |q: &Program| differing(&run(q, st, data, &interp), &run(q, st, data, tier));
    // Keep a reduction only while the same fields differ: another bug must not take over.
    let target = what(p);
    let differs = |q: &Program| what(q) == target;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..cur.words.len() {
            if cur.keep[i] || cur.words[i] == NOP {
                continue;
            }
            let mut q = cur.clone();
            q.words[i] = NOP;
            // A mismatch that only shows sometimes (background compiles) may vanish; a few
            // tries keep the shrinking faithful enough.
            if (0..2).any(|_| differs(&q)) {
                cur = q;
                changed = true;
            }
        }
    }
    cur
}

struct Failure {
    index: u64,
    text: String,
}

#[test]
fn jit_tiers_match_interpreter_on_random_programs() {
    // A fixed default seed keeps CI deterministic; VMC_JIT_SEED explores others.
    let seed = env_u64("VMC_JIT_SEED").unwrap_or(11);
    let cases = env_u64("VMC_JIT_CASES").unwrap_or(2000);
    let only = env_u64("VMC_JIT_CASE");
    let jobs = env_u64("VMC_JIT_JOBS")
        .map(|n| n as usize)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
    let max_failures = env_u64("VMC_JIT_MAX_FAILURES").unwrap_or(3) as usize;
    let timeout = Duration::from_secs(env_u64("VMC_JIT_TIMEOUT").unwrap_or(120));
    let tiers = jit_tiers();
    say!(
        "jit_diff: seed {seed} (VMC_JIT_SEED={seed}), {} cases, tiers interp vs {}, {jobs} threads",
        only.map_or(cases, |_| 1),
        tiers.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
    );
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let insns = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let faulted = AtomicUsize::new(0);
    let host_faults = AtomicUsize::new(0);
    let skipped: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let indices: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for slot in 0..jobs.max(1) {
            let (next, stop, failures, insns, done, faulted, skipped, host_faults) = (
                &next,
                &stop,
                &failures,
                &insns,
                &done,
                &faulted,
                &skipped,
                &host_faults,
            );
            let (indices, tiers) = (&indices, &tiers);
            workers.push(s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= indices.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let index = indices[k];
                WORKER.set(Some((slot, index)));
                let mut r = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
                let p = gen_program(&mut r);
                let (st, data) = gen_state(&mut r);
                insns.fetch_add(p.words.len(), Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                if std::env::var_os("VMC_JIT_PRINT").is_some() {
                    eprintln!("case {index}:\n{}", listing(&p, None));
                }
                let reference = run(&p, &st, &data, &interp_tier());
                if is_budget_exhausted(&reference.term) {
                    skipped
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(index);
                    continue;
                }
                if !matches!(reference.term, vmc_runtime::Termination::Exited(_)) {
                    faulted.fetch_add(1, Ordering::Relaxed);
                }
                for tier in tiers {
                    let mut tier = *tier;
                    let mut got = run(&p, &st, &data, &tier);
                    if got != reference && host_fault_agrees(&reference, &got) {
                        // A load the host MMU refused stops translated code without its
                        // exact state (the documented contract): signal, address and memory
                        // agree; with precise faults everything must.
                        host_faults.fetch_add(1, Ordering::Relaxed);
                        tier = precise(tier);
                        got = run(&p, &st, &data, &tier);
                    }
                    if got == reference {
                        continue;
                    }
                    let tier = &tier;
                    let small = shrink(&p, &st, &data, tier);
                    let (sa, sb) = (
                        run(&small, &st, &data, &interp_tier()),
                        run(&small, &st, &data, tier),
                    );
                    let mut text = format!(
                        "MISMATCH case {index} (VMC_JIT_SEED={seed} VMC_JIT_CASE={index}), tier {}: differs in {}\n",
                        tier.name,
                        differing(&reference, &got).join(", ")
                    );
                    let _ = writeln!(text, "  program:\n{}", listing(&p, None));
                    let _ = writeln!(text, "  initial state:\n{}", initial_state(&st));
                    let _ = writeln!(
                        text,
                        "  final states:\n{}",
                        side_by_side(&reference, &got, &data, tier.name)
                    );
                    if small.words != p.words {
                        let _ = writeln!(
                            text,
                            "  shrunk program (same initial state; `...` = replaced by NOP), differs in {}:\n{}",
                            differing(&sa, &sb).join(", "),
                            listing(&small, Some(&p))
                        );
                        let _ = writeln!(
                            text,
                            "  shrunk final states:\n{}",
                            side_by_side(&sa, &sb, &data, tier.name)
                        );
                    }
                    say!("{}", text.lines().next().unwrap_or(""));
                    let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                    f.push(Failure { index, text });
                    if f.len() >= max_failures {
                        stop.store(true, Ordering::Relaxed);
                    }
                    break;
                }
            }));
        }
        watchdog(seed, timeout, &|| workers.iter().all(|w| w.is_finished()));
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut skipped = skipped.into_inner().unwrap_or_else(|e| e.into_inner());
    skipped.sort_unstable();
    say!(
        "jit_diff: {} of {} cases run ({} static guest instructions, {} ended by a signal, {} JIT runs stopped by a host fault and rerun with precise faults, {} skipped as non-terminating{}) in {:.1} s, {} mismatches",
        done.load(Ordering::Relaxed),
        indices.len(),
        insns.load(Ordering::Relaxed),
        faulted.load(Ordering::Relaxed),
        host_faults.load(Ordering::Relaxed),
        skipped.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(
                ": case {}",
                skipped.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            )
        },
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    if !failures.is_empty() {
        let ids: Vec<String> = failures.iter().map(|f| f.index.to_string()).collect();
        panic!(
            "{} random programs differ between the interpreter and a JIT tier (seed {seed}, cases {}):\n{}",
            failures.len(),
            ids.join(", "),
            failures.iter().map(|f| f.text.as_str()).collect::<String>()
        );
    }
}

/// The generators produce encodings the frontend implements (no SIGILL from the generator).
#[test]
fn generated_instructions_are_implemented() {
    let mut r = Rng::new(12345);
    let mut bad = Vec::new();
    for _ in 0..20000 {
        let w = gen_insn(&mut r);
        let mut fetch = |a: u64| (a == CODE).then_some(w);
        let b = vmc_compiler::a64::translate_block_limit(&mut fetch, CODE, 1);
        let undefined = b.ops.iter().any(|op| {
            matches!(
                op,
                vmc_compiler::ir::Op::Trap {
                    kind: vmc_compiler::ir::TrapKind::Undefined,
                    ..
                }
            )
        });
        if undefined {
            bad.push(format!("{w:08x} {}", disasm(w, CODE)));
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.len() < 20,
        "{} generated encodings are undefined, e.g.:\n{}",
        bad.len(),
        bad.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Hand-reduced programs from mismatches the random test found, run from a fixed state under
/// every tier (each is a regression test of one lowering bug).
#[test]
fn jit_regressions() {
    struct Case {
        name: &'static str,
        words: &'static [u32],
        setup: fn(&mut CpuState),
    }
    let cases = [
        Case {
            // Flags set lazily in one block of an optimized region, then a block with a store:
            // the exit wrote back the region's entry NZCV instead of TST's.
            name: "lazy flags lost across a region block with a store",
            words: &[
                0xea01_001f, // tst x0, x1
                0x5400_0044, // b.mi +8
                0xf900_02c2, // str x2, [x22]
                0xd280_0ba8, // mov x8, #93
                0xd400_0001, // svc #0
            ],
            setup: |st| {
                st.x[0] = 1;
                st.x[1] = 1;
                st.nzcv = 0x5000_0000;
            },
        },
        Case {
            // A flag-setting instruction, then FCMP (a helper that writes NZCV): the NZCV
            // seen afterwards must be FCMP's.
            name: "FCMP after a lazy flag-setting instruction",
            words: &[
                0xab01_001f, // cmn x0, x1
                0x1e60_2008, // fcmp d0, #0.0
                0xd53b_4203, // mrs x3, nzcv
                0xd280_0ba8, // mov x8, #93
                0xd400_0001, // svc #0
            ],
            setup: |st| {
                st.x[0] = u64::MAX;
                st.x[1] = 0;
                st.v[0] = 1.0f64.to_bits() as u128;
            },
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let mut p = Program {
            words: Vec::new(),
            keep: Vec::new(),
            used_link_regs: Vec::new(),
        };
        for w in c.words {
            p.push(*w, true);
        }
        let mut st = CpuState::default();
        st.x[20] = MID;
        st.x[21] = MID;
        st.x[22] = MID;
        st.x[23] = MID;
        st.x[31] = MID;
        (c.setup)(&mut st);
        let data = vec![0u8; DATA_LEN as usize];
        let reference = run(&p, &st, &data, &interp_tier());
        for tier in jit_tiers() {
            let got = run(&p, &st, &data, &tier);
            if got != reference {
                failures.push(format!(
                    "{} [{}]: differs in {}\n{}{}",
                    c.name,
                    tier.name,
                    differing(&reference, &got).join(", "),
                    listing(&p, None),
                    side_by_side(&reference, &got, &data, tier.name)
                        .lines()
                        .filter(|l| l.ends_with('*') || l.contains("field"))
                        .map(|l| format!("{l}\n"))
                        .collect::<String>()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
