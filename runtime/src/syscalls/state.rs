//! Per-process kernel-side state the syscall layer keeps for the guest (signal mask and
//! pending set, alternate stack, thread name, robust-list registration, emulated limits).

/// Guest state that Linux keeps in the task structure.
#[derive(Debug, Clone, Default)]
pub struct SysState {
    /// Blocked signals (bit `sig - 1`), as set by rt_sigprocmask.
    pub sigmask: u64,
    /// Signals sent to ourselves while blocked (bit `sig - 1`), acted upon when unblocked.
    pub sigpending: u64,
    /// The siginfo of each pending signal (one instance per signal number).
    pub pending_info: Vec<crate::syscalls::signal::SigInfo>,
    /// The mask to restore once a signal is delivered (rt_sigsuspend's saved mask; Linux
    /// `saved_sigmask` with `TIF_RESTORE_SIGMASK`).
    pub saved_sigmask: Option<u64>,
    /// Alternate signal stack: `(ss_sp, ss_flags, ss_size)`; `None` = disabled.
    pub altstack: Option<(u64, u32, u64)>,
    /// Guest address of the sigreturn trampoline page (the vDSO's `__kernel_rt_sigreturn`),
    /// mapped on first use by a handler installed without SA_RESTORER; 0 = not mapped.
    pub sigtramp: u64,
    /// Address and ESR of the last synchronous fault (Linux `thread.fault_address` and
    /// `thread.fault_code`), reported in every later signal frame as the kernel does.
    pub last_fault: (u64, u64),
    /// Thread name (prctl PR_SET_NAME); `None` = the executable's base name.
    pub comm: Option<[u8; 16]>,
    /// set_tid_address pointer (clear_child_tid).
    pub clear_child_tid: u64,
    /// set_robust_list head and length.
    pub robust_list: (u64, u64),
    /// Limits the guest set but that are not applied to the emulator itself
    /// (RLIMIT_STACK, RLIMIT_AS, RLIMIT_DATA), by resource number.
    pub rlimits: [Option<[u64; 2]>; 16],
    /// Descriptors whose reads and writes the runtime serves itself (/proc/self/mem), by
    /// host (= guest) descriptor number.
    pub special_fds: std::collections::HashMap<i32, crate::syscalls::procfs::Special>,
    /// Names of the guest's mappings, for /proc/self/maps.
    pub maps: crate::syscalls::procfs::MapNames,
    /// Where the initial stack holds argv and envp strings, and the auxv as loaded.
    pub proc_info: crate::syscalls::procfs::ProcInfo,
}
