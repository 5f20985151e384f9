//! Timing: interleaved samples, medians, ranges and ratios to an in-run baseline.
//!
//! A comparison runs its cases round-robin — baseline, subject 1, subject 2, baseline, … — for
//! a fixed number of samples. Each sample times a calibrated batch of operations (about
//! `--sample-ms` long) and yields nanoseconds per operation. A case reports the median, the
//! minimum and the maximum of its samples; its ratio is the median of the per-round ratios to
//! the baseline sample of the same round, so load that comes and goes during a run affects the
//! numerator and the denominator alike.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Command-line options shared by every bench binary.
#[derive(Clone, Debug)]
pub struct Bench {
    quick: bool,
    samples: usize,
    sample_time: Duration,
    rest: Vec<String>,
}

impl Bench {
    /// Parses `--quick`, `--samples N` and `--sample-ms MS` from the process arguments; other
    /// arguments stay available through [`Bench::value`] and [`Bench::flag`].
    ///
    /// # Panics
    ///
    /// On a malformed number (a usage error).
    pub fn from_env() -> Self {
        Self::from_args(std::env::args().skip(1))
    }

    /// Like [`Bench::from_env`], from explicit arguments.
    ///
    /// # Panics
    ///
    /// On a malformed number (a usage error).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut quick = false;
        let mut samples = None;
        let mut sample_ms = None;
        let mut rest = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--samples" => samples = it.next().map(|v| v.parse().expect("--samples N")),
                "--sample-ms" => sample_ms = it.next().map(|v| v.parse().expect("--sample-ms MS")),
                _ => rest.push(a),
            }
        }
        let (default_samples, default_ms) = if quick { (3, 2) } else { (31, 40) };
        Bench {
            quick,
            samples: samples.unwrap_or(default_samples),
            sample_time: Duration::from_millis(sample_ms.unwrap_or(default_ms)),
            rest,
        }
    }

    /// `true` with `--quick`: small sizes, a few samples (seconds in total).
    pub fn quick(&self) -> bool {
        self.quick
    }

    /// `a` in quick mode, `b` otherwise.
    pub fn pick<T>(&self, a: T, b: T) -> T {
        if self.quick {
            a
        } else {
            b
        }
    }

    /// The value after `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.rest
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.rest.get(i + 1))
            .map(String::as_str)
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.rest.iter().any(|a| a == name)
    }

    /// Runs `cases` interleaved (the first is the baseline), prints a table and returns the
    /// statistics in the same order.
    pub fn compare(&self, title: &str, cases: &mut [Case<'_>]) -> Vec<Stats> {
        assert!(!cases.is_empty(), "a comparison needs a baseline");
        let iters: Vec<u64> = cases
            .iter_mut()
            .map(|c| {
                let n = calibrate(&mut c.run, self.sample_time);
                if let Some(reset) = &mut c.reset {
                    reset();
                }
                n
            })
            .collect();
        let mut per_op: Vec<Vec<f64>> = vec![Vec::with_capacity(self.samples); cases.len()];
        for _ in 0..self.samples {
            for (i, c) in cases.iter_mut().enumerate() {
                let t = Instant::now();
                (c.run)(iters[i]);
                per_op[i].push(t.elapsed().as_nanos() as f64 / iters[i] as f64);
                if let Some(reset) = &mut c.reset {
                    reset();
                }
            }
        }
        let stats: Vec<Stats> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ratios: Vec<f64> = per_op[i]
                    .iter()
                    .zip(&per_op[0])
                    .map(|(s, b)| s / b)
                    .collect();
                Stats::new(&c.name, &per_op[i], (i > 0).then_some(&ratios[..]))
            })
            .collect();
        print_table(title, &cases[0].name, &stats);
        stats
    }
}

/// One thing to time: `run(n)` performs `n` operations.
pub struct Case<'a> {
    name: String,
    run: Box<dyn FnMut(u64) + 'a>,
    reset: Option<Box<dyn FnMut() + 'a>>,
}

impl<'a> Case<'a> {
    /// A case named `name`.
    pub fn new(name: impl Into<String>, run: impl FnMut(u64) + 'a) -> Self {
        Case {
            name: name.into(),
            run: Box::new(run),
            reset: None,
        }
    }

    /// Runs `reset` after every sample, untimed (for instance to empty a store that the
    /// operation fills).
    #[must_use]
    pub fn with_reset(mut self, reset: impl FnMut() + 'a) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }
}

/// Doubles the batch until one takes a tenth of the sample time, then scales it to the sample
/// time. Also warms caches and lazily built state up.
fn calibrate(run: &mut dyn FnMut(u64), sample: Duration) -> u64 {
    run(1);
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        run(n);
        let el = t.elapsed();
        if el >= sample / 10 || n >= 1 << 30 {
            let per = el.as_nanos().max(1) as f64 / n as f64;
            return ((sample.as_nanos() as f64 / per) as u64).max(1);
        }
        n *= 2;
    }
}

/// Statistics of one case, in nanoseconds per operation.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The case's name.
    pub name: String,
    /// Median of the samples.
    pub median: f64,
    /// Fastest sample.
    pub min: f64,
    /// Slowest sample.
    pub max: f64,
    /// Median of the per-round ratios to the baseline (`None` for the baseline itself).
    pub ratio: Option<f64>,
}

impl Stats {
    /// Statistics of `samples` (ns/op) and, for a subject, its per-round ratios.
    pub fn new(name: &str, samples: &[f64], ratios: Option<&[f64]>) -> Self {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Stats {
            name: name.to_owned(),
            median: median(&s),
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            ratio: ratios.map(|r| {
                let mut r = r.to_vec();
                r.sort_by(f64::total_cmp);
                median(&r)
            }),
        }
    }

    /// Operations per second at the median.
    pub fn rate(&self) -> f64 {
        1e9 / self.median
    }
}

/// The median of sorted values.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// The `p`-th percentile (0–100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in nanoseconds, human-readable (`850 ns`, `21.3 µs`, `4.10 ms`).
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 100_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A rate, human-readable (`41.2 k/s`).
pub fn fmt_rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} /s")
    }
}

fn print_table(title: &str, baseline: &str, stats: &[Stats]) {
    let mut out = String::new();
    let _ = writeln!(out, "\n## {title}\n");
    let _ = writeln!(out, "| case | median | min–max | ratio to `{baseline}` |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for s in stats {
        let ratio = s
            .ratio
            .map_or_else(|| "1 (baseline)".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {} |",
            s.name,
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            ratio
        );
    }
    print!("{out}");
}

/// Prints a target line: what was measured against what the issue asks. Informational only:
/// a bench never fails on a timing.
pub fn target(what: &str, value: &str, goal: &str, met: bool) {
    let verdict = if met { "met" } else { "NOT met" };
    println!("target: {what}: {value} (goal {goal}) — {verdict}");
}

/// The process's resident set size in bytes (Linux `/proc/self/statm`), if readable.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time (user + system) consumed so far by this process's threads named `name` (tokio
/// runtimes name their workers with `thread_name`), in seconds; `None` where `/proc` is not
/// readable. Resolution is the kernel's clock tick (10 ms), so measure over a second or more.
pub fn thread_cpu_seconds(name: &str) -> Option<f64> {
    let mut ticks = 0u64;
    for dir in threads_named(name).ok()? {
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        ticks += utime + stime;
    }
    // `sysconf(_SC_CLK_TCK)` is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// Puts every thread of this process named `name` under `SCHED_BATCH` (with `chrt`, since the
/// workspace forbids `unsafe` and so the direct system call), and returns how many it moved.
///
/// A batch thread never preempts a running thread when it wakes up; it waits for the next
/// scheduler tick. The HTTP bench does this to its load generator, which shares the machine's
/// cores with the server it measures: otherwise every response that wakes a generator thread
/// can preempt a server thread in the middle of a request, which a server whose clients run on
/// other machines never sees.
///
/// # Errors
///
/// When `/proc/self/task` cannot be read or `chrt` fails (not installed, not permitted).
pub fn batch_schedule(name: &str) -> Result<usize, String> {
    let mut moved = 0;
    for dir in threads_named(name).map_err(|e| e.to_string())? {
        let tid = dir
            .file_name()
            .and_then(|t| t.to_str())
            .ok_or("a task without an id")?
            .to_owned();
        let status = std::process::Command::new("chrt")
            .args(["--batch", "--pid", "0", &tid])
            .status()
            .map_err(|e| format!("chrt: {e}"))?;
        if !status.success() {
            return Err(format!("chrt --batch --pid 0 {tid}: {status}"));
        }
        moved += 1;
    }
    Ok(moved)
}

/// The `/proc/self/task/<tid>` directories of this process's threads named `name`.
fn threads_named(name: &str) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut dirs = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// A one-line description of the machine: cores, CPU model, load average.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        "debug build: timings are meaningless, use --release"
    } else {
        "release build"
    };
    format!("{cores} cores, {model}, load average {load}, {profile}")
}

/// Prints the bench's header: its name and the machine.
pub fn header(name: &str, bench: &Bench) {
    println!("# {name}{}", if bench.quick() { " (--quick)" } else { "" });
    println!("machine: {}", machine());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert!((median(&[1.0, 2.0, 10.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&[1.0, 2.0, 3.0, 10.0]) - 2.5).abs() < f64::EPSILON);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 99.0) - 99.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 50.0) - 50.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 100.0) - 100.0).abs() < f64::EPSILON);
    }

    #[test]
    fn arguments() {
        let b = Bench::from_args(["--quick", "--sessions", "5"].map(String::from));
        assert!(b.quick());
        assert_eq!(b.value("--sessions"), Some("5"));
        assert!(!b.flag("--nope"));
        assert_eq!(b.pick(1, 2), 1);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_ns(850.0), "850 ns");
        assert_eq!(fmt_ns(21_300.0), "21.30 µs");
        assert_eq!(fmt_rate(41_200.0), "41.2 k/s");
    }

    #[test]
    fn compare_runs_every_case() {
        let b = Bench::from_args(["--quick".to_owned()]);
        let mut x = 0u64;
        let stats = b.compare(
            "t",
            &mut [
                Case::new("a", |n| x = x.wrapping_add(n)),
                Case::new("b", |n| {
                    std::hint::black_box(n);
                }),
            ],
        );
        assert_eq!(stats.len(), 2);
        assert!(stats[0].ratio.is_none() && stats[1].ratio.is_some());
    }
}
