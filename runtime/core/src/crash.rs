//! Crash reports: an operator that segfaults or aborts takes its process down (nothing can
//! continue after memory was corrupted), but not silently. A handler for SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE and SIGABRT, on the alternate stack Rust gives every thread, writes which
//! node and which callback was running on the crashing thread, then lets the signal kill the
//! process as it would have (exit status 128 + signal). Only async-signal-safe work happens
//! in the handler: reads of data prepared before the run and `write(2)`.
//!
//! The handler also flushes the last summary it was given ([`set_last_summary`], refreshed by
//! the run's status hook about once a second): its text to stdout and, when the run writes one,
//! its JSON to the summary file with a `crash` object first (signal, node, callback). Figures are
//! as of that last refresh: at most about a second old.
//!
//! Opt-in ([`install`]): the `quiver` binary installs it; a program embedding the runtime
//! keeps its own signal handling unless it asks.

use std::collections::VecDeque;
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

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

/// The summary a crash flushes, rendered before the crash (nothing is formatted or allocated
/// in the handler).
struct LastWords {
    text: Vec<u8>,
    /// The summary file and its JSON without the opening `{` (the handler writes
    /// `{"crash":{...},` in front).
    json: Option<(CString, Vec<u8>)>,
}

static LAST: AtomicPtr<LastWords> = AtomicPtr::new(std::ptr::null_mut());
/// Replaced summaries stay allocated for a few more refreshes: a handler that loaded one just
/// before it was replaced is still reading it.
static RETIRED: Mutex<VecDeque<Box<LastWords>>> = Mutex::new(VecDeque::new());
const KEEP_RETIRED: usize = 4;

/// The summary a crash of this process flushes: `text` to stdout and, with `json`, the file
/// (the summary's JSON object). Called by the status hook; the latest call wins.
pub fn set_last_summary(text: String, json: Option<(&Path, String)>) {
    let json = json.and_then(|(path, json)| {
        let path = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
        let body = json.trim_start().strip_prefix('{')?.as_bytes().to_vec();
        Some((path, body))
    });
    let new = Box::into_raw(Box::new(LastWords {
        text: text.into_bytes(),
        json,
    }));
    let old = LAST.swap(new, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` above and is no longer reachable through
        // `LAST`; it is freed only after KEEP_RETIRED more refreshes.
        let old = unsafe { Box::from_raw(old) };
        let mut retired = RETIRED.lock().unwrap_or_else(|p| p.into_inner());
        retired.push_back(old);
        while retired.len() > KEEP_RETIRED {
            retired.pop_front();
        }
    }
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
    // For the summary file: the node's id and the callback (kind, name).
    let mut crashed_in: Option<CrashedIn<'_>> = None;
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
                crashed_in = Some((n.id.as_str(), callback));
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
    let last = LAST.load(Ordering::Acquire);
    if !last.is_null() {
        push(
            &mut buf,
            &mut len,
            b"quiver: the summary below is the last status before the crash (figures up to a second old)\n",
        );
    }
    // SAFETY: write(2) is async-signal-safe; the buffer is ours.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
    }
    if !last.is_null() {
        // SAFETY: `last` came from `Box::into_raw` in `set_last_summary` and stays allocated for
        // several refreshes after it is replaced.
        flush_last_words(unsafe { &*last }, sig, crashed_in);
    }
    // SAFETY: signal(2) and raise(3) are async-signal-safe. The signal is blocked while this
    // handler runs: raised again with the default action, it kills the process once the
    // handler returns (a fault would also recur on return).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Where a crash happened: the node's id and the callback (`timer`/`input`/`stop`, its name).
type CrashedIn<'a> = (&'a str, Option<(&'a [u8], &'a str)>);

/// Writes all of `bytes` to `fd` (async-signal-safe: write(2) only).
fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) on a buffer we own; async-signal-safe.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Writes `s` as the inside of a JSON string to `fd`: quotes and backslashes escaped, control
/// characters as `?` (names are validated identifiers; this is a second line of defence).
fn write_json_str(fd: i32, s: &[u8]) {
    let mut rest = s;
    while !rest.is_empty() {
        let safe = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
        write_all(fd, &rest[..safe]);
        let Some(&b) = rest.get(safe) else { break };
        write_all(
            fd,
            if b < 0x20 {
                b"?"
            } else if b == b'"' {
                b"\\\""
            } else {
                b"\\\\"
            },
        );
        rest = &rest[safe + 1..];
    }
}

/// The summary prepared before the crash: text to stdout, JSON (with the crash first) to the
/// summary file.
fn flush_last_words(last: &LastWords, sig: i32, crashed_in: Option<CrashedIn<'_>>) {
    write_all(1, &last.text);
    let Some((path, body)) = &last.json else {
        return;
    };
    // SAFETY: open(2) is async-signal-safe; `path` is a valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return;
    }
    let mut number = [0u8; 10];
    let mut len = 0;
    push_number(&mut number, &mut len, sig as u32);
    write_all(fd, b"{\"crash\":{\"signal\":");
    write_all(fd, &number[..len]);
    write_all(fd, b",\"signal_name\":\"");
    write_all(fd, signal_name(sig));
    write_all(fd, b"\",\"node\":");
    match crashed_in {
        Some((id, callback)) => {
            write_all(fd, b"\"");
            write_json_str(fd, id.as_bytes());
            write_all(fd, b"\",\"callback\":");
            match callback {
                Some((kind, name)) => {
                    write_all(fd, b"\"");
                    write_all(fd, kind);
                    if !name.is_empty() {
                        write_all(fd, b" ");
                        write_json_str(fd, name.as_bytes());
                    }
                    write_all(fd, b"\"");
                }
                None => write_all(fd, b"null"),
            }
        }
        None => write_all(fd, b"null,\"callback\":null"),
    }
    write_all(fd, b"},");
    write_all(fd, body);
    // SAFETY: close(2) is async-signal-safe; `fd` is ours.
    unsafe {
        libc::close(fd);
    }
}
