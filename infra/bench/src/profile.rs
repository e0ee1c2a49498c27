//! Where the machine's CPU goes during a run: every process's user and system time from
//! `/proc/<pid>/stat`, before and after, grouped by what the process is (DynamoDB Local, kinesalite,
//! moto, the local cloud itself, each function binary). A coarse profile, but the one that says
//! whether the emulators or tally hold the pipelines back on a 2-core machine.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// Per process: (what it is, CPU ticks so far).
pub struct CpuSnapshot {
    at: Instant,
    ticks: BTreeMap<u32, (String, u64)>,
}

/// Cores each kind of process used on average between two snapshots, busiest first.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CpuProfile {
    pub seconds: f64,
    pub cores: Vec<(String, f64)>,
}

/// What a process is, from its command name and command line.
pub fn kind(comm: &str, cmdline: &str) -> String {
    match comm {
        "java" if cmdline.contains("DynamoDBLocal") => "DynamoDB Local (java)".into(),
        "java" => "java".into(),
        "node" if cmdline.contains("kinesalite") => "kinesalite (node)".into(),
        c if c.starts_with("python") || cmdline.contains("moto") => "moto (python)".into(),
        "tally" => "tally: edge, API, pollers, Firehose, bench client".into(),
        other => other.to_string(),
    }
}

pub fn snapshot() -> CpuSnapshot {
    let mut ticks = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: comm may hold spaces, so split at the last parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after comm.
        let used = fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        ticks.insert(pid, (kind(comm, &cmdline), used));
    }
    CpuSnapshot {
        at: Instant::now(),
        ticks,
    }
}

impl CpuSnapshot {
    /// The profile from `self` to `later`.
    pub fn until(&self, later: &CpuSnapshot) -> CpuProfile {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let seconds = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, (kind, after)) in &later.ticks {
            let before = self.ticks.get(pid).map_or(0, |(_, t)| *t);
            *by_kind.entry(kind.clone()).or_default() +=
                after.saturating_sub(before) as f64 / hz / seconds;
        }
        let mut cores: Vec<(String, f64)> = by_kind
            .into_iter()
            .filter(|(_, c)| *c >= 0.005)
            .map(|(k, c)| (k, (c * 100.0).round() / 100.0))
            .collect();
        cores.sort_by(|a, b| b.1.total_cmp(&a.1));
        CpuProfile { seconds, cores }
    }
}
