//! vmrun on inputs it cannot run: each must end with status 126 (127 for a missing file) and
//! exactly one diagnostic line on stderr that starts with `vmrun: ` and names the file; never
//! a panic. Also `vmrun --help`, `vmrun demo` and `--precise-faults` on a wild load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vmc_tests::*;

const TIMEOUT: Duration = Duration::from_secs(30);

fn vmrun() -> Option<PathBuf> {
    let v = find_vmrun();
    if v.is_none() {
        say!("bad_inputs: SKIPPED: no vmrun binary (cargo build --release -p vmrun)");
    }
    v
}

/// A minimal 52-byte ELF32 header for 32-bit ARM (e_machine 40), executable, no segments.
fn elf32_arm_header() -> Vec<u8> {
    let mut h = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    h.extend_from_slice(&40u16.to_le_bytes()); // e_machine: ARM
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&0x8000u32.to_le_bytes()); // e_entry
    h.extend_from_slice(&0u32.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0x0500_0000u32.to_le_bytes()); // e_flags: EABI5
    h.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    h.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    h.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    h.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(h.len(), 52);
    h
}

/// A small AArch64 ELF64 executable with a PT_INTERP segment (i.e. dynamically linked).
fn elf64_aarch64_with_interp() -> Vec<u8> {
    let interp = b"/lib/ld-linux-aarch64.so.1\0";
    let base: u64 = 0x40_0000;
    let interp_off: u64 = 64 + 2 * 56;
    let code_off = (interp_off + interp.len() as u64 + 7) & !7;
    let total = code_off + 8;
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    h.extend_from_slice(&183u16.to_le_bytes()); // e_machine: AArch64
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&(base + code_off).to_le_bytes()); // e_entry
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&2u16.to_le_bytes()); // e_phnum
    h.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    h.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    let mut phdr = |p_type: u32, flags: u32, off: u64, size: u64, align: u64| {
        h.extend_from_slice(&p_type.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&off.to_le_bytes());
        h.extend_from_slice(&(base + off).to_le_bytes()); // p_vaddr
        h.extend_from_slice(&(base + off).to_le_bytes()); // p_paddr
        h.extend_from_slice(&size.to_le_bytes()); // p_filesz
        h.extend_from_slice(&size.to_le_bytes()); // p_memsz
        h.extend_from_slice(&align.to_le_bytes());
    };
    phdr(3, 4, interp_off, interp.len() as u64, 1); // PT_INTERP
    phdr(1, 5, 0, total, 0x1000); // PT_LOAD
    assert_eq!(h.len() as u64, interp_off);
    h.extend_from_slice(interp);
    h.resize(code_off as usize, 0);
    // mov x8, #93; svc #0 (exit)
    h.extend_from_slice(&0xd2800ba8u32.to_le_bytes());
    h.extend_from_slice(&0xd4000001u32.to_le_bytes());
    assert_eq!(h.len() as u64, total);
    h
}

/// Checks that vmrun refuses `file` with `status` and one proper diagnostic line.
fn expect_refusal(vmrun: &Path, what: &str, file: &Path, status: i32, problems: &mut Vec<String>) {
    let out = run_with_timeout(
        Command::new(vmrun).arg(file).env_remove("RUST_LOG"),
        TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    let mut bad = Vec::new();
    if out.status != Status::Exited(status) {
        bad.push(format!("expected exit status {status}, got {}", out.status));
    }
    if stderr.contains("panicked") {
        bad.push("vmrun panicked".to_string());
    }
    if lines.len() != 1 {
        bad.push(format!(
            "expected exactly one line on stderr, got {}",
            lines.len()
        ));
    }
    match lines.first() {
        Some(l) if l.starts_with("vmrun: ") && l.contains(&file.display().to_string()) => {}
        Some(l) => bad.push(format!(
            "first stderr line does not start with `vmrun: ` and name the file: {l:?}"
        )),
        None => bad.push("nothing on stderr".to_string()),
    }
    if !out.stdout.is_empty() {
        bad.push(format!(
            "unexpected stdout: {}",
            printable(Some(&out.stdout), 200)
        ));
    }
    if bad.is_empty() {
        say!("  ok   {what}: {}", lines[0]);
    } else {
        say!("  FAIL {what}");
        problems.push(format!(
            "{what} ({}):\n      {}\n      stderr was: {stderr:?}",
            file.display(),
            bad.join("\n      ")
        ));
    }
}

#[test]
fn refuses_bad_inputs() {
    let Some(vmrun) = vmrun() else { return };
    let dir = TempDir::new("vmc-bad").expect("temp dir");
    let d = dir.path();
    let mut problems = Vec::new();

    expect_refusal(
        &vmrun,
        "missing file",
        &d.join("does-not-exist"),
        127,
        &mut problems,
    );

    let text = d.join("text.txt");
    std::fs::write(&text, "#!/bin/sh\necho this is not an ELF file\n").unwrap();
    expect_refusal(&vmrun, "text file", &text, 126, &mut problems);

    let empty = d.join("empty");
    std::fs::write(&empty, b"").unwrap();
    expect_refusal(&vmrun, "empty file", &empty, 126, &mut problems);

    // The first 100 bytes of a real static AArch64 program: header fine, segments missing.
    let demo = workspace_root().join("vmrun/demo.elf");
    let guest = guest_cases(&guest_build_dir())
        .first()
        .map(|c| c.binary.clone())
        .unwrap_or(demo);
    let bytes = std::fs::read(&guest).expect("read a guest ELF");
    let truncated = d.join("truncated.elf");
    std::fs::write(&truncated, &bytes[..100.min(bytes.len())]).unwrap();
    expect_refusal(&vmrun, "truncated ELF", &truncated, 126, &mut problems);

    let x86 = Path::new("/bin/true");
    if x86.exists() {
        expect_refusal(&vmrun, "x86-64 ELF", x86, 126, &mut problems);
    }

    let arm32 = d.join("arm32.elf");
    std::fs::write(&arm32, elf32_arm_header()).unwrap();
    expect_refusal(&vmrun, "32-bit ARM ELF", &arm32, 126, &mut problems);

    let crafted = d.join("interp.elf");
    std::fs::write(&crafted, elf64_aarch64_with_interp()).unwrap();
    expect_refusal(
        &vmrun,
        "AArch64 ELF with PT_INTERP (crafted)",
        &crafted,
        126,
        &mut problems,
    );

    // A real dynamically linked AArch64 program, when the cross compiler is there.
    if let Some(cc) = find_in_path("aarch64-linux-gnu-gcc") {
        let src = d.join("dyn.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"dynamic\"); return 0; }\n",
        )
        .unwrap();
        let exe = d.join("dynamic.elf");
        let out = run_with_timeout(
            Command::new(cc).arg("-o").arg(&exe).arg(&src),
            Duration::from_secs(120),
        );
        if out.status == Status::Exited(0) && exe.exists() {
            expect_refusal(
                &vmrun,
                "AArch64 dynamically linked (gcc)",
                &exe,
                126,
                &mut problems,
            );
        } else {
            say!(
                "  skip dynamically linked program: cross compiler failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        say!("  skip dynamically linked program built by gcc: no aarch64-linux-gnu-gcc");
    }

    // A directory is not a program either.
    expect_refusal(&vmrun, "directory", d, 126, &mut problems);

    assert!(
        problems.is_empty(),
        "{} bad-input checks failed:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn help_and_demo() {
    let Some(vmrun) = vmrun() else { return };
    let help = run_with_timeout(Command::new(&vmrun).arg("--help"), TIMEOUT);
    assert_eq!(
        help.status,
        Status::Exited(0),
        "vmrun --help: stderr {}",
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(!help.stdout.is_empty(), "vmrun --help printed nothing");

    let demo = run_with_timeout(Command::new(&vmrun).arg("demo"), TIMEOUT);
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert_eq!(
        demo.status,
        Status::Exited(0),
        "vmrun demo: stdout {stdout}\nstderr {}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(
        stdout.contains("Hello from an AArch64 guest!"),
        "vmrun demo output lacks the greeting:\n{stdout}"
    );
    assert!(!String::from_utf8_lossy(&demo.stderr).contains("panicked"));
}

/// A wild load in translated code: by default the host MMU stops it (the guest dies by
/// SIGSEGV without its exact pc); `--precise-faults` reports the faulting instruction, as the
/// interpreter does.
#[test]
fn precise_faults_name_the_faulting_instruction() {
    let Some(vmrun) = vmrun() else { return };
    let segv = guest_build_dir().join("segv-O2");
    if !segv.exists() {
        say!("precise_faults: SKIPPED: {} not built", segv.display());
        return;
    }
    let run = |extra: &[&str]| {
        let out = run_with_timeout(
            Command::new(&vmrun)
                .args(extra)
                .arg(&segv)
                .arg("read")
                .env_remove("RUST_LOG"),
            TIMEOUT,
        );
        assert_eq!(
            out.status,
            Status::Signaled(11),
            "vmrun {extra:?} segv read"
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        stderr
            .lines()
            .find(|l| l.contains("segmentation fault"))
            .unwrap_or_else(|| panic!("vmrun {extra:?}: no fault line in {stderr}"))
            .to_owned()
    };
    let interp = run(&["--tier", "interp"]);
    let fast = run(&["--tier", "opt"]);
    let precise = run(&["--tier", "opt", "--precise-faults"]);
    assert!(interp.contains("read of address 0x0 at pc 0x"), "{interp}");
    assert!(
        fast.contains("read of address 0x0 in translated code"),
        "{fast}"
    );
    assert_eq!(
        precise, interp,
        "--precise-faults reports what the interpreter does"
    );
}
