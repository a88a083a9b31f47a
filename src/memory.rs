//! The process's allocator, set up before any thread starts.
//!
//! Rust's allocations go to jemalloc: with glibc's malloc, a quarter of the metadata path's
//! CPU went to malloc, free and fastbin consolidation (millions of small strings decoded on
//! the runtime's workers and freed on the blocking pool); jemalloc made the run ~30% faster
//! (issue 8, figure 1). Its default keeps freed pages for ten seconds, which put the audio
//! bench's peak at ~190 MB; a background thread returns them after half a second instead.
//! Held for less (100 ms, until 2026-12-01), a window's memory was handed back to the kernel
//! between one window and the next and faulted in again, zeroed, page by page: a sixth of the
//! metadata path's CPU was page faults and the TLB flushes of returning them. At 500 ms, CPU
//! per 100,000 tasks fell from 2.79-3.05 to 2.37-2.74 core-seconds (one second measured the
//! same, 2.49-2.79, for ~30 MB more at one-day windows); the audio bench's peak stays at
//! 120-132 MB (goal 150), one-day windows of 1M tasks at 365 MB (goal 500). The C and C++
//! inside (DuckDB, zstd) keep glibc's malloc, whose arenas [`limit_arenas`] caps.

#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (before `main`).
#[cfg(unix)]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: Option<&'static libc::c_char> =
    // SAFETY: a pointer to the first byte of a 'static NUL-terminated string.
    Some(unsafe { &*c"background_thread:true,dirty_decay_ms:500".as_ptr() });

/// Arenas per core: glibc's default is eight. Two in all made threads queue for malloc on
/// the metadata path (issue 8, figure 1: 0.53-0.71 of the baseline instead of 0.74); four
/// per core cost nothing measurable there.
const ARENAS_PER_CORE: usize = 4;

/// Caps glibc's malloc at `ARENAS_PER_CORE` arenas per core. Each thread that allocates
/// may get its own arena, and each keeps what it freed for itself: while Rust's allocations
/// still went to glibc, the default held ~45 MB more at the audio bench's peak (148 MB
/// against 103 MB on a 2-core machine); zstd's contexts on the blocking pool still do.
/// Elsewhere (musl, macOS) the allocator is left as it is.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let arenas = libc::c_int::try_from(cores * ARENAS_PER_CORE).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only sets a malloc parameter; called before threads start, and
        // a refused value (return 0) leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
