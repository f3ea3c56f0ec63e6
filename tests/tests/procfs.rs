//! The contained /proc under attack: `proc_probe --sweep` writes through /proc/self/mem at
//! every 16 GiB step of the 47-bit address space the guest has not mapped (where vmrun's
//! own code, data and JIT memory live on the host) and must get EIO for each, exit 0 (the
//! host was not changed into running anything else), and see no descriptor of the runtime
//! in /proc/self/fd. Run in every tier (not under qemu-user: there guest and host share
//! addresses, so the sweep would overwrite qemu itself).

use std::path::Path;
use std::time::Duration;

use vmc_tests::*;

#[test]
fn proc_mem_sweep_cannot_reach_the_host() {
    let Some(vmrun) = find_vmrun() else {
        say!("procfs: SKIPPED: no vmrun binary (cargo build --release -p vmrun)");
        return;
    };
    let probe = guest_build_dir().join("proc_probe-O2");
    if !probe.exists() {
        say!(
            "procfs: SKIPPED: no {} (bash tests/guests/build.sh)",
            probe.display()
        );
        return;
    }
    for tier in all_tiers() {
        let mut cmd = guest_command_with(
            &vmrun,
            &tier.args,
            &probe,
            &["--sweep".to_string()],
            Path::new("/tmp"),
        );
        let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
        let text = String::from_utf8_lossy(&out.stdout);
        for want in [
            "sweep of unmapped offsets refused: 1 (all)",
            "fd listing: at or above the limit: 0",
            "fd listing: std 3, own 1, others below 10: 0",
            "write read-only page: 7, reads back: yes",
            "maps mentions vmrun: 0",
            "maps mentions memfd: 0",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "tier {}: no {want:?} in\n{text}\nstderr: {}\nstatus: {:?}",
                tier.name,
                String::from_utf8_lossy(&out.stderr),
                out.status
            );
        }
        assert!(
            matches!(out.status, Status::Exited(0)),
            "tier {}: {:?}",
            tier.name,
            out.status
        );
    }
}
