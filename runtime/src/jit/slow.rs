//! Entry points translated code calls when the inline fast path does not apply: faults,
//! accesses crossing a page, stores to pages holding translated code, and helpers. Each
//! implements exactly the interpreter's semantics through [`GuestMemory`].

use vmc_compiler::ir::{BranchKind, Helper};
use vmc_compiler::lower::{Callee, JitContext, STORE_HIT_CODE};
use vmc_compiler::mem::{Fault, Memory};
use vmc_compiler::CpuState;

use crate::memory::GuestMemory;
use crate::profile::Recorder;

/// What the slow paths reach through [`JitContext::runtime`].
pub struct SlowState {
    /// The guest memory.
    pub mem: *mut GuestMemory,
    /// The fault of the last failed access, for the dispatcher.
    pub fault: Option<Fault>,
    /// The profile recorder, or null when not profiling.
    pub profile: *const Recorder,
}

/// The host address of a runtime entry point translated code calls.
pub fn callee_addr(c: Callee) -> u64 {
    match c {
        Callee::Load => preserving_load as *const () as u64,
        Callee::Store => preserving_store as *const () as u64,
        Callee::LoadVec => preserving_load_vec as *const () as u64,
        Callee::StoreVec => preserving_store_vec as *const () as u64,
        Callee::Helper => helper as *const () as u64,
        Callee::HelperCold => preserving_helper as *const () as u64,
        Callee::ProfileIndirect => preserving_profile_indirect as *const () as u64,
    }
}

/// Defines an entry point with Cranelift's `preserve_all` convention around a C function
/// of this module (see [`Callee::preserves_all`]): it saves every register the C convention
/// lets the callee clobber (the general ones and xmm0-15; the stack is 16-byte aligned at
/// the inner call), calls the function with the arguments still in place, stores its result
/// in [`JitContext::ret`] (the context is the first argument), and restores everything.
macro_rules! preserving {
    ($name:ident => $target:ident) => {
        #[doc = concat!("`preserve_all` entry point of [`", stringify!($target), "`].")]
        ///
        /// # Safety
        /// Called only by translated code, like the function it wraps.
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push rbp",
                "mov rbp, rsp",
                "push rax",
                "push rcx",
                "push rdx",
                "push rsi",
                "push rdi",
                "push r8",
                "push r9",
                "push r10",
                "push r11",
                "sub rsp, 264",
                "movdqu [rsp], xmm0",
                "movdqu [rsp + 16], xmm1",
                "movdqu [rsp + 32], xmm2",
                "movdqu [rsp + 48], xmm3",
                "movdqu [rsp + 64], xmm4",
                "movdqu [rsp + 80], xmm5",
                "movdqu [rsp + 96], xmm6",
                "movdqu [rsp + 112], xmm7",
                "movdqu [rsp + 128], xmm8",
                "movdqu [rsp + 144], xmm9",
                "movdqu [rsp + 160], xmm10",
                "movdqu [rsp + 176], xmm11",
                "movdqu [rsp + 192], xmm12",
                "movdqu [rsp + 208], xmm13",
                "movdqu [rsp + 224], xmm14",
                "movdqu [rsp + 240], xmm15",
                "call {f}",
                // The saved rdi: the context.
                "mov rcx, [rsp + 296]",
                "mov [rcx + {ret}], rax",
                "movdqu xmm0, [rsp]",
                "movdqu xmm1, [rsp + 16]",
                "movdqu xmm2, [rsp + 32]",
                "movdqu xmm3, [rsp + 48]",
                "movdqu xmm4, [rsp + 64]",
                "movdqu xmm5, [rsp + 80]",
                "movdqu xmm6, [rsp + 96]",
                "movdqu xmm7, [rsp + 112]",
                "movdqu xmm8, [rsp + 128]",
                "movdqu xmm9, [rsp + 144]",
                "movdqu xmm10, [rsp + 160]",
                "movdqu xmm11, [rsp + 176]",
                "movdqu xmm12, [rsp + 192]",
                "movdqu xmm13, [rsp + 208]",
                "movdqu xmm14, [rsp + 224]",
                "movdqu xmm15, [rsp + 240]",
                "add rsp, 264",
                "pop r11",
                "pop r10",
                "pop r9",
                "pop r8",
                "pop rdi",
                "pop rsi",
                "pop rdx",
                "pop rcx",
                "pop rax",
                "pop rbp",
                "ret",
                f = sym $target,
                ret = const std::mem::offset_of!(JitContext, ret),
            )
        }
    };
}

preserving!(preserving_load => load);
preserving!(preserving_store => store);
preserving!(preserving_load_vec => load_vec);
preserving!(preserving_store_vec => store_vec);
preserving!(preserving_profile_indirect => profile_indirect);
preserving!(preserving_helper => helper);

/// `profile_indirect(ctx, site, target, kind)`: records an indirect branch's target.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context (see `state`).
pub unsafe extern "C" fn profile_indirect(
    ctx: *mut JitContext,
    site: u64,
    target: u64,
    kind: u64,
) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context.
    let (_, rt, _) = unsafe { state(ctx) };
    // SAFETY: `profile` is null or points to the recorder the dispatcher keeps alive for
    // the whole run.
    if let Some(r) = unsafe { rt.profile.as_ref() } {
        let kind = match kind {
            1 => BranchKind::Call,
            2 => BranchKind::Return,
            _ => BranchKind::Jump,
        };
        r.indirect(site, target, kind);
    }
    0
}

/// Resolves the context's runtime pointer.
///
/// # Safety
/// `ctx` must be the live context the dispatcher passed to translated code, whose `runtime`
/// points to a live [`SlowState`] whose `mem` points to the live guest memory, with no other
/// reference to either in use during the call.
unsafe fn state<'a>(
    ctx: *mut JitContext,
) -> (&'a mut JitContext, &'a mut SlowState, &'a mut GuestMemory) {
    // SAFETY: guaranteed by the caller (see above).
    unsafe {
        let ctx = &mut *ctx;
        let rt = &mut *(ctx.runtime as *mut SlowState);
        let mem = &mut *rt.mem;
        (ctx, rt, mem)
    }
}

fn store_result(rt: &mut SlowState, mem: &mut GuestMemory, r: Result<(), Fault>) -> u64 {
    match r {
        Err(f) => {
            rt.fault = Some(f);
            1
        }
        Ok(()) if mem.code_written.is_some() => STORE_HIT_CODE as u64,
        Ok(()) => 0,
    }
}

/// `load(ctx, addr, size)`: the value, or 0 with `ctx.status = 1` on a fault.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context (see `state`).
pub unsafe extern "C" fn load(ctx: *mut JitContext, addr: u64, size: u64) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context.
    let (ctx, rt, mem) = unsafe { state(ctx) };
    match mem.read(addr, size as u8) {
        Ok(v) => {
            ctx.status = 0;
            v
        }
        Err(f) => {
            rt.fault = Some(f);
            ctx.status = 1;
            0
        }
    }
}

/// `store(ctx, addr, size, value)`: 0, 1 on a fault, or STORE_HIT_CODE.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context and CPU state.
pub unsafe extern "C" fn store(ctx: *mut JitContext, addr: u64, size: u64, value: u64) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context.
    let (_, rt, mem) = unsafe { state(ctx) };
    let r = mem.write(addr, size as u8, value);
    store_result(rt, mem, r)
}

/// `load_vec(ctx, cpu, addr, size, reg)`: V[reg] = zero-extended load; 0 or 1 on a fault.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context and CPU state.
pub unsafe extern "C" fn load_vec(
    ctx: *mut JitContext,
    cpu: *mut CpuState,
    addr: u64,
    size: u64,
    reg: u64,
) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context and state.
    let (_, rt, mem) = unsafe { state(ctx) };
    let mut buf = [0u8; 16];
    match mem.read_bytes(addr, &mut buf[..size as usize & 31]) {
        Ok(()) => {
            // SAFETY: `cpu` is the live CPU state passed to the translated code.
            unsafe { (*cpu).v[reg as usize & 31] = u128::from_le_bytes(buf) };
            0
        }
        Err(f) => {
            rt.fault = Some(f);
            1
        }
    }
}

/// `store_vec(ctx, cpu, addr, size, reg)`: 0, 1 on a fault, or STORE_HIT_CODE.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context and CPU state.
pub unsafe extern "C" fn store_vec(
    ctx: *mut JitContext,
    cpu: *mut CpuState,
    addr: u64,
    size: u64,
    reg: u64,
) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context and state.
    let (_, rt, mem) = unsafe { state(ctx) };
    // SAFETY: `cpu` is the live CPU state passed to the translated code.
    let bytes = unsafe { (*cpu).v[reg as usize & 31] }.to_le_bytes();
    let r = mem.write_bytes(addr, &bytes[..size as usize & 31]);
    store_result(rt, mem, r)
}

/// `helper(ctx, cpu, helper, insn)`: runs an instruction helper; 0, or 1 on a fault.
///
/// # Safety
/// Called only by translated code, with the dispatcher's live context and CPU state.
pub unsafe extern "C" fn helper(
    ctx: *mut JitContext,
    cpu: *mut CpuState,
    h: *const Helper,
    insn: u64,
) -> u64 {
    // SAFETY: called only by translated code with the dispatcher's live context and state;
    // `h` is the address of a `static Helper` embedded by the lowering.
    let (_, rt, mem) = unsafe { state(ctx) };
    // SAFETY: as above.
    let (cpu, h) = unsafe { (&mut *cpu, &*h) };
    match (h.func)(cpu, mem, insn as u32) {
        Ok(()) => 0,
        Err(f) => {
            rt.fault = Some(f);
            1
        }
    }
}
