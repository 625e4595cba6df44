//! CPU accounting: this process's threads and the server's backends, from `/proc` (scheduler time and context switches).

#[allow(clippy::wildcard_imports)]
use super::*;

/// CPU time so far, in seconds: the machine's (busy and all, over every core, from
/// `/proc/stat`), and, from the scheduler's own counts (`schedstat`, exact rather than
/// sampled at ticks), this process's threads' and each PostgreSQL server process's by
/// pid.
#[derive(Clone, Default)]
pub(super) struct Cpu {
    busy: f64,
    total: f64,
    process: BTreeMap<u32, f64>,
    server: BTreeMap<u32, f64>,
    switches: BTreeMap<u32, f64>,
}

/// Context switches (voluntary and not) of this process's threads, by thread id.
pub(super) fn switches() -> BTreeMap<u32, f64> {
    let mut counts = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let total: f64 = status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
                .sum();
            counts.insert(tid, total);
        }
    }
    counts
}

/// The `application_name` of this run's connections, so that the server's CPU time
/// counts its own backends (and the server's shared processes: WAL writer,
/// checkpointer), not those of other sessions (tests running alongside).
pub(super) static APPLICATION: OnceLock<String> = OnceLock::new();
pub(super) static MONITOR: OnceLock<std::sync::Mutex<Option<postgres::Client>>> = OnceLock::new();
pub(super) static URL: OnceLock<String> = OnceLock::new();

/// The pids of other sessions' client backends.
pub(super) fn foreign_backends() -> Vec<u32> {
    let (Some(url), Some(name)) = (URL.get(), APPLICATION.get()) else {
        return Vec::new();
    };
    let monitor = MONITOR.get_or_init(|| {
        std::sync::Mutex::new(postgres::Client::connect(url, postgres::NoTls).ok())
    });
    let mut monitor = monitor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(client) = monitor.as_mut() else {
        return Vec::new();
    };
    client
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND application_name IS DISTINCT FROM $1
               AND pid <> pg_backend_pid()",
            &[name],
        )
        .map(|rows| {
            rows.iter()
                .filter_map(|row| u32::try_from(row.get::<_, i32>(0)).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `url` with `application_name` set to `name` (unless it sets one).
pub(super) fn with_application(url: &str, name: &str) -> String {
    if url.contains("application_name") {
        return url.to_owned();
    }
    if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// The first field of a `schedstat`: time on a CPU, in seconds.
pub(super) fn schedstat(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// `schedstat` of every numbered entry of `dir` that `keep` accepts, by number.
pub(super) fn schedstats(dir: &Path, keep: impl Fn(&Path) -> bool) -> BTreeMap<u32, f64> {
    let mut times = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let path = entry.path();
            if keep(&path)
                && let Some(t) = schedstat(&path.join("schedstat"))
            {
                times.insert(pid, t);
            }
        }
    }
    times
}

pub(super) fn cpu_now() -> Cpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let times: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let get = |i: usize| times.get(i).copied().unwrap_or(0.0) / 100.0;
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let total = busy + get(3) + get(4);
    let process = schedstats(Path::new("/proc/self/task"), |_| true);
    let mut server = schedstats(Path::new("/proc"), |path| {
        std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.starts_with("postgres"))
    });
    for pid in foreign_backends() {
        server.remove(&pid);
    }
    Cpu {
        busy,
        total,
        process,
        server,
        switches: switches(),
    }
}

/// What a window used: the share of the machine's CPU that was busy, and the CPU
/// seconds of this process's threads and of the server's processes (those alive at the
/// end).
#[derive(Clone, Copy, Default)]
pub(super) struct CpuUse {
    pub(super) machine: f64,
    pub(super) process: f64,
    pub(super) server: f64,
    pub(super) switches: f64,
    /// The share of the machine's CPU that other processes used (builds, the kernel's
    /// own threads): busy time less this process's and the server's.
    pub(super) other: f64,
}

/// The time of the entries of `after` since `before` (all of it for new ones); an entry
/// gone by `after` (a thread or backend that ended) is left out.
pub(super) fn delta(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

pub(super) fn cpu_since(before: &Cpu) -> CpuUse {
    let after = cpu_now();
    let total = (after.total - before.total).max(1e-9);
    let busy = after.busy - before.busy;
    let process = delta(&before.process, &after.process);
    let server = delta(&before.server, &after.server);
    CpuUse {
        machine: busy / total,
        process,
        server,
        switches: delta(&before.switches, &after.switches),
        other: ((busy - process - server) / total).max(0.0),
    }
}
