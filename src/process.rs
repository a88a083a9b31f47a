//! Who a process is, and whether it still runs: what the run lock and the warehouse leases
//! need to take over a holder that died without waiting for its heartbeat or lease to lapse,
//! and never a live one.
//!
//! A pid means something only where it was issued: on one machine, since one boot, inside
//! one pid namespace (a container has its own). So a holder is named by a *host id* covering
//! exactly that scope, not by its host name (two containers, or two laptops, can share one).
//! A process whose host id is ours is checked with `kill(pid, 0)` and, where the platform
//! tells it, its start time (a pid is reused once its process is gone); any other is judged
//! by its heartbeat alone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A process, as a lock file or lease names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Its process id.
    pub pid: u32,
    /// Its machine's host name, for people reading an error.
    pub host: String,
    /// The scope its pid means something in ([`host_id`]); empty when written by a version
    /// of ccetl that did not record it (such a holder is judged by its heartbeat).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    /// When it started, in the platform's own unit ([`start_time`]), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl ProcessRef {
    /// This process.
    pub fn me() -> ProcessRef {
        let pid = std::process::id();
        ProcessRef {
            pid,
            host: hostname(),
            host_id: host_id().to_string(),
            started: start_time(pid),
        }
    }

    /// Whether its pid can be checked here: it was issued in this process's scope.
    pub fn is_local(&self) -> bool {
        !self.host_id.is_empty() && self.host_id == host_id()
    }

    /// Whether this is a process whose pid this machine can check ([`Self::is_local`]) and
    /// that no longer runs: killed, crashed, or its pid now someone else's.
    pub fn is_gone(&self) -> bool {
        if !self.is_local() {
            return false;
        }
        if !pid_exists(self.pid) || is_zombie(self.pid) {
            return true;
        }
        match (self.started, start_time(self.pid)) {
            (Some(then), Some(now)) => then != now,
            _ => false,
        }
    }
}

/// This machine's name (`gethostname`), or `"unknown"`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "unknown".into(),
    }
}

/// The scope in which this process's pids are meaningful, computed once: on Linux the boot
/// id and the pid namespace, on macOS the hardware UUID and boot time; elsewhere (or when
/// those cannot be read) a random id kept in the temporary directory, which a reboot clears.
pub fn host_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| platform_host_id().unwrap_or_else(kept_random_id))
}

/// Whether a process with this pid exists (EPERM: it does, owned by someone else).
fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 and negatives name process groups, not a process
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(target_os = "linux")]
fn platform_host_id() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

#[cfg(target_os = "macos")]
fn platform_host_id() -> Option<String> {
    let mut uuid = [0u8; 16];
    let wait = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    // SAFETY: gethostuuid writes exactly 16 bytes.
    if unsafe { libc::gethostuuid(uuid.as_mut_ptr(), &wait) } != 0 {
        return None;
    }
    let mut boot = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>();
    let mut mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    // SAFETY: `boot` and `len` describe a buffer of the size kern.boottime returns.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut boot as *mut libc::timeval).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then(|| format!("{}/{}", hex::encode(uuid), boot.tv_sec))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn platform_host_id() -> Option<String> {
    None
}

/// A random id created once per boot (the temporary directory is cleared by one) and
/// shared by every ccetl process of the machine: the first to run writes it.
fn kept_random_id() -> String {
    let path: PathBuf = std::env::temp_dir().join("ccetl-host-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return id.trim().to_string();
        }
    }
    let id = format!("random/{:016x}", rand::random::<u64>());
    let side = path.with_extension(format!("{}", std::process::id()));
    // Written aside and hard-linked into place: a racing process keeps the first id.
    let _ = std::fs::write(&side, &id).and_then(|()| std::fs::hard_link(&side, &path));
    let _ = std::fs::remove_file(&side);
    std::fs::read_to_string(&path).map_or(id, |kept| kept.trim().to_string())
}

/// When process `pid` started: on Linux its start in clock ticks since boot, on macOS in
/// microseconds since the epoch; `None` where the platform does not say or it is gone.
#[cfg(target_os = "linux")]
pub fn start_time(pid: u32) -> Option<u64> {
    linux_stat(pid)?.1
}

/// Process `pid`'s state letter and start time, from `/proc/{pid}/stat`.
#[cfg(target_os = "linux")]
fn linux_stat(pid: u32) -> Option<(char, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18).and_then(|t| t.parse().ok())))
}

/// Whether `pid` has exited but not been reaped: it still answers `kill(pid, 0)`. A killed
/// run whose parent had already gone waits as a zombie for an init that may never reap it
/// (a container's first process often does not).
#[cfg(target_os = "linux")]
fn is_zombie(pid: u32) -> bool {
    linux_stat(pid).is_some_and(|(state, _)| matches!(state, 'Z' | 'X'))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn is_zombie(_pid: u32) -> bool {
    false
}

/// When process `pid` started: on Linux its start in clock ticks since boot, on macOS in
/// microseconds since the epoch; `None` where the platform does not say or it is gone.
#[cfg(target_os = "macos")]
pub fn start_time(pid: u32) -> Option<u64> {
    let info = mac_bsdinfo(pid)?;
    Some(info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

/// Process `pid`'s BSD info (status, start time), from `proc_pidinfo`.
#[cfg(target_os = "macos")]
fn mac_bsdinfo(pid: u32) -> Option<libc::proc_bsdinfo> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: an all-zero proc_bsdinfo is valid; proc_pidinfo fills at most its size.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (got == size).then_some(info)
}

/// Whether `pid` has exited but not been reaped (it still answers `kill(pid, 0)`).
#[cfg(target_os = "macos")]
fn is_zombie(pid: u32) -> bool {
    mac_bsdinfo(pid).is_some_and(|info| info.pbi_status == libc::SZOMB)
}

/// When process `pid` started: on Linux its start in clock ticks since boot, on macOS in
/// microseconds since the epoch; `None` where the platform does not say or it is gone.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn start_time(_pid: u32) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_gone() {
        let me = ProcessRef::me();
        assert!(!me.is_gone());
        assert!(me.started.is_some(), "this platform tells start times");
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        let started = start_time(pid);
        assert!(started.is_some(), "a running child has a start time");
        let running = ProcessRef {
            pid,
            started,
            ..ProcessRef::me()
        };
        assert!(!running.is_gone());
        // Exited, not yet reaped: a zombie still answers kill(pid, 0), and is gone.
        std::thread::sleep(std::time::Duration::from_millis(500));
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        assert!(running.is_gone(), "an exited, unreaped child is gone");
        child.wait().unwrap();
        let dead = ProcessRef {
            pid,
            started,
            ..ProcessRef::me()
        };
        assert!(dead.is_gone(), "an exited (and reaped) child is gone");
    }

    #[test]
    fn a_reused_pid_is_another_process() {
        let reused = ProcessRef {
            started: ProcessRef::me().started.map(|t| t + 1),
            ..ProcessRef::me()
        };
        assert!(
            reused.is_gone(),
            "same pid, other start: the holder is gone"
        );
    }

    #[test]
    fn a_process_of_another_scope_is_never_judged_by_its_pid() {
        let elsewhere = ProcessRef {
            pid: u32::MAX - 1, // no such process here
            host_id: "another-boot/pid:[1]".into(),
            ..ProcessRef::me()
        };
        assert_eq!(elsewhere.host, hostname(), "same host name");
        assert!(!elsewhere.is_gone());
        let unrecorded = ProcessRef {
            host_id: String::new(),
            ..elsewhere
        };
        assert!(!unrecorded.is_gone());
    }

    #[test]
    fn the_host_id_is_stable_and_names_the_pid_namespace() {
        assert_eq!(host_id(), host_id());
        #[cfg(target_os = "linux")]
        assert!(host_id().contains("pid:["), "{}", host_id());
        assert_ne!(hostname(), "unknown");
    }
}
