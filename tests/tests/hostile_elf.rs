//! Crafted ELF files that used to hang or panic the host: an entry point at the last
//! address (the jump cache's old empty marker), a 60 GiB segment (mapped page by page:
//! 30 s), overlapping segments and segments beyond the guest space. Each must end at once
//! with the guest's faithful signal or a one-line refusal (status 126), never a panic.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vmc_tests::*;

/// Long enough for any of these to finish many times over; a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(30);
const BASE: u64 = 0x40_0000;

/// `mov x0, #7; mov x8, #93; svc #0`: exit(7).
const EXIT7: [u32; 3] = [0xd28000e0, 0xd2800ba8, 0xd4000001];

/// A PT_LOAD: (vaddr, file offset, filesz, memsz, flags).
type Seg = (u64, u64, u64, u64, u32);

/// An AArch64 executable: header, program headers, then the exit(7) code; `entry` defaults
/// to the code. `segs` gets `total` (the file size) to describe the first segment.
fn elf(entry: Option<u64>, segs: impl Fn(u64) -> Vec<Seg>) -> Vec<u8> {
    let n = segs(0).len() as u64;
    let code_off = 64 + 56 * n;
    let total = code_off + 12;
    let segs = segs(total);
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    h.extend_from_slice(&183u16.to_le_bytes()); // e_machine: AArch64
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&entry.unwrap_or(BASE + code_off).to_le_bytes());
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&(n as u16).to_le_bytes()); // e_phnum
    h.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    for (vaddr, off, filesz, memsz, flags) in segs {
        h.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        h.extend_from_slice(&flags.to_le_bytes());
        for v in [off, vaddr, vaddr, filesz, memsz, 0x1000] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    }
    assert_eq!(h.len() as u64, code_off);
    h.extend(EXIT7.iter().flat_map(|w| w.to_le_bytes()));
    h
}

/// The text segment holding the whole file (R+X).
fn text(total: u64) -> Seg {
    (BASE, 0, total, total, 5)
}

struct Case {
    name: &'static str,
    file: Vec<u8>,
    /// Expected exit status (128+N for signal N) and a phrase of the one stderr line.
    status: i32,
    says: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "entry-at-last-address",
            file: elf(Some(u64::MAX), |t| vec![text(t)]),
            status: 128 + 11,
            says: "SIGSEGV",
        },
        Case {
            name: "entry-misaligned",
            file: elf(Some(BASE + 2), |t| vec![text(t)]),
            status: 128 + 11,
            says: "SIG",
        },
        Case {
            name: "60-GiB-bss",
            file: elf(None, |t| {
                vec![text(t), (BASE + 0x10_0000, 0, 0, 60 << 30, 6)]
            }),
            status: 7,
            says: "",
        },
        Case {
            name: "overlapping-segments",
            file: elf(None, |t| vec![text(t), (BASE, 0, t, 0x2000, 6)]),
            status: 126,
            says: "overlaps",
        },
        Case {
            name: "segment-beyond-guest-space",
            file: elf(None, |t| vec![text(t), (1 << 40, 0, 0, 0x1000, 6)]),
            status: 126,
            says: "out of range",
        },
        Case {
            name: "segment-wrapping-the-address-space",
            file: elf(None, |t| vec![text(t), (u64::MAX - 0xfff, 0, 0, 0x2000, 6)]),
            status: 126,
            says: "bad program header",
        },
    ]
}

#[test]
fn hostile_elfs_end_at_once_without_a_panic() {
    let Some(vmrun) = find_vmrun() else {
        say!("hostile_elf: SKIPPED: no vmrun binary (cargo build --release -p vmrun)");
        return;
    };
    let dir = TempDir::new("hostile-elf").expect("temp dir");
    let mut problems = Vec::new();
    for case in cases() {
        let path = dir.path().join(case.name);
        std::fs::write(&path, &case.file).expect("write elf");
        for tier in ["interp", "auto"] {
            let out = run_with_timeout(
                Command::new(&vmrun).args(["--tier", tier]).arg(&path),
                TIMEOUT,
            );
            let problem = check(&path, &case, &out);
            say!(
                "{:<36} {tier:<6} {}",
                case.name,
                problem.as_deref().unwrap_or("ok")
            );
            if let Some(p) = problem {
                problems.push(format!("{} [{tier}]: {p}", case.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn check(path: &Path, case: &Case, out: &Outcome) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = match out.status {
        Status::Exited(c) => c,
        Status::Signaled(s) => 128 + s,
        ref other => return Some(format!("{other}")),
    };
    if stderr.contains("panicked") {
        return Some(format!("host panic: {stderr}"));
    }
    if status != case.status {
        return Some(format!(
            "status {status}, expected {} (stderr: {stderr})",
            case.status
        ));
    }
    let lines: Vec<&str> = stderr.lines().collect();
    if case.says.is_empty() {
        return (!lines.is_empty()).then(|| format!("unexpected stderr: {stderr}"));
    }
    let name = path.display().to_string();
    match lines.as_slice() {
        [line]
            if line.starts_with("vmrun: ") && line.contains(&name) && line.contains(case.says) =>
        {
            None
        }
        _ => Some(format!(
            "expected one line naming the file and saying {:?}, got: {stderr}",
            case.says
        )),
    }
}
