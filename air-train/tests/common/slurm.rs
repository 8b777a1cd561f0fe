//! Whether the multi-process tests can use Slurm.

use std::process::Command;

/// Whether a Slurm controller answers; without one the Slurm test is skipped, unless
/// `AIR_REQUIRE_SLURM` is set (CI starts one with `scripts/slurm-one-host.sh`).
pub(crate) fn available() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("idle"));
    if !up {
        assert!(
            std::env::var_os("AIR_REQUIRE_SLURM").is_none(),
            "AIR_REQUIRE_SLURM is set but no Slurm controller answers `sinfo` (start one with \
             scripts/slurm-one-host.sh start DIR and export SLURM_CONF)"
        );
        eprintln!("skipped: no Slurm controller (scripts/slurm-one-host.sh start DIR)");
    }
    up
}
