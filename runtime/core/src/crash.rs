//! Crash reports: an operator that segfaults or aborts takes its process down (nothing can
//! continue after memory was corrupted), but not silently. A handler for SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE and SIGABRT, on the alternate stack Rust gives every thread, writes which
//! node and which callback was running on the crashing thread, then lets the signal kill the
//! process as it would have (exit status 128 + signal). Only async-signal-safe work happens
//! in the handler: reads of data prepared before the run and `write(2)`.
//!
//! Opt-in ([`install`]): the `quiver` binary installs it; a program embedding the runtime
//! keeps its own signal handling unless it asks.

use std::sync::Once;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// The names a report needs, prepared when a run starts and never freed (a handler may read
/// them at any time).
struct Names {
    /// Per node: its id, then its callbacks' names by `what` (see `realtime`).
    nodes: Vec<NodeNames>,
}

struct NodeNames {
    id: String,
    inputs: Vec<String>,
    timers: Vec<String>,
}

static NAMES: AtomicPtr<Names> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    /// The node this thread runs (index + 1; 0: none) and the callback it is in.
    static NODE: AtomicUsize = const { AtomicUsize::new(0) };
    static WHAT: AtomicU32 = const { AtomicU32::new(u32::MAX) };
}

/// Which callback, as `realtime` encodes it: `IN_TIMER | timer`, `IN_INPUT | slot`, `IN_STOP`.
pub(crate) const IN_TIMER: u32 = 0;
pub(crate) const IN_INPUT: u32 = 1 << 30;
pub(crate) const IN_STOP: u32 = 2 << 30;
const KIND: u32 = 3 << 30;

/// Makes the names of a run's nodes and callbacks available to the handler (the previous
/// run's stay allocated: a handler may still be reading them).
pub(crate) fn register(nodes: impl Iterator<Item = (String, Vec<String>, Vec<String>)>) {
    let names = Box::new(Names {
        nodes: nodes
            .map(|(id, inputs, timers)| NodeNames { id, inputs, timers })
            .collect(),
    });
    NAMES.store(Box::into_raw(names), Ordering::Release);
}

/// This thread runs node `node` from now on.
pub(crate) fn enter_node(node: usize) {
    NODE.with(|n| n.store(node + 1, Ordering::Relaxed));
}

/// This thread is in callback `what` (`u32::MAX`: none).
pub(crate) fn in_callback(what: u32) {
    WHAT.with(|w| w.store(what, Ordering::Relaxed));
}

/// Installs the handler (once per process).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT] {
            // SAFETY: a zeroed sigaction is valid; `handler` has the SA_SIGINFO signature and
            // only does async-signal-safe work; SA_ONSTACK uses the alternate stack Rust sets
            // up for each thread (a stack overflow still gets a stack to report on).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Appends `s` to `buf` from `len`, as much as fits.
fn push(buf: &mut [u8], len: &mut usize, s: &[u8]) {
    let n = s.len().min(buf.len() - *len);
    buf[*len..*len + n].copy_from_slice(&s[..n]);
    *len += n;
}

fn push_number(buf: &mut [u8], len: &mut usize, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    push(buf, len, &digits[i..]);
}

fn signal_name(sig: i32) -> &'static [u8] {
    match sig {
        libc::SIGSEGV => b"SIGSEGV",
        libc::SIGBUS => b"SIGBUS",
        libc::SIGILL => b"SIGILL",
        libc::SIGFPE => b"SIGFPE",
        libc::SIGABRT => b"SIGABRT",
        _ => b"a signal",
    }
}

extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let mut buf = [0u8; 512];
    let mut len = 0;
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO; si_pid is meaningful for
    // SI_USER (a signal another process sent with kill(2)).
    let sent_by = unsafe {
        if !info.is_null() && (*info).si_code == libc::SI_USER {
            Some((*info).si_pid())
        } else {
            None
        }
    };
    if let Some(pid) = sent_by {
        // Sent to the process: it reached whichever thread; nothing here is known to be at
        // fault.
        push(&mut buf, &mut len, b"quiver: killed by ");
        push(&mut buf, &mut len, signal_name(sig));
        push(&mut buf, &mut len, b" (signal ");
        push_number(&mut buf, &mut len, sig as u32);
        push(&mut buf, &mut len, b") sent by process ");
        push_number(&mut buf, &mut len, pid as u32);
        push(&mut buf, &mut len, b"\n");
        // SAFETY: as below.
        unsafe {
            libc::write(2, buf.as_ptr().cast(), len);
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    push(&mut buf, &mut len, b"quiver: the process crashed (");
    push(&mut buf, &mut len, signal_name(sig));
    push(&mut buf, &mut len, b", signal ");
    push_number(&mut buf, &mut len, sig as u32);
    push(&mut buf, &mut len, b")");
    // Const-initialised thread locals without destructors: plain reads.
    let node = NODE.with(|n| n.load(Ordering::Relaxed));
    let what = WHAT.with(|w| w.load(Ordering::Relaxed));
    let names = NAMES.load(Ordering::Acquire);
    if node == 0 || names.is_null() {
        push(&mut buf, &mut len, b" outside any operator's callback");
    } else {
        // SAFETY: `names` came from `Box::into_raw` in `register` and is never freed.
        let names = unsafe { &*names };
        match names.nodes.get(node - 1) {
            None => push(&mut buf, &mut len, b" in a node of another run"),
            Some(n) => {
                push(&mut buf, &mut len, b" in node `");
                push(&mut buf, &mut len, n.id.as_bytes());
                push(&mut buf, &mut len, b"`");
                let index = (what & !KIND) as usize;
                let callback: Option<(&[u8], &str)> = match what & KIND {
                    _ if what == u32::MAX => None,
                    IN_TIMER => n.timers.get(index).map(|t| (&b"timer"[..], t.as_str())),
                    IN_INPUT => n.inputs.get(index).map(|i| (&b"input"[..], i.as_str())),
                    _ => Some((&b"stop"[..], "")),
                };
                match callback {
                    Some((kind, name)) => {
                        push(&mut buf, &mut len, b", in its ");
                        push(&mut buf, &mut len, kind);
                        if !name.is_empty() {
                            push(&mut buf, &mut len, b" `");
                            push(&mut buf, &mut len, name.as_bytes());
                            push(&mut buf, &mut len, b"`");
                        }
                        push(&mut buf, &mut len, b" callback");
                    }
                    None => push(&mut buf, &mut len, b", between callbacks"),
                }
            }
        }
    }
    push(
        &mut buf,
        &mut len,
        b". Run operators that may crash with `isolate: true`: their process dies, is reported and restarted, the rest runs on.\n",
    );
    // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; the buffer is ours.
    // The signal is blocked while this handler runs: raised again with the default action, it
    // kills the process once the handler returns (a fault would also recur on return).
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}
