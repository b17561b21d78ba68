//! Masking throughput: what masking costs over a plain pipe, measured in one run.
//!
//! Both runs move the same bytes the way `keygate exec` does: a producer thread (the
//! child) writes 64 KiB chunks into a pipe; the copier (keygate) reads them, through
//! the masker or not, and writes them into a second pipe; a drain thread (whoever reads
//! keygate's stdout) reads and drops them. The plain run is a `cat` with a 64 KiB buffer
//! (`keygate_cli::mask::pump` without a masker), so the ratio is masking's own cost.
//!
//! ```text
//! cargo run --release -p keygate-cli --example mask_bench -- [--mib 1024] [--runs 3]
//! ```
//!
//! docs/benchmarks.md ("Masking throughput") records its figures.

use std::io::{self, Read as _, Write as _};
use std::time::{Duration, Instant};

use keygate_cli::mask::{CHUNK, Masker, pump};

/// Made-up secrets shaped like real ones.
const SECRETS: [(&str, &str); 4] = [
    ("github/token", "ghp_R2xlYW5VcEFmdGVyWW91cnNlbGZQbGVhc2U1"),
    ("aws/key", "AKIAIOSFODNN7EXAMPLE"),
    ("openai/api-key", "sk-proj-9fJ3kLmN0pQrStUvWxYz"),
    ("db/password", "correct horse battery staple"),
];

/// One block of log-like text (repeated to make up the total), with a secret about
/// every 64 KiB, at odd offsets so that some straddle the 64 KiB chunk boundaries.
fn block(size: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "GET",
        "/v1/status",
        "200",
        "took",
        "ms",
        "user=ci",
        "INFO",
        "request",
        "done",
        "connection",
        "pool=4",
        "retry",
    ];
    let mut out = Vec::with_capacity(size + 256);
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut line = 0u64;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        line += 1;
        let _ = write!(out, "2026-05-01T10:00:{:02}Z line {line}:", line % 60);
        for i in 0..(x % 9 + 3) {
            let w = WORDS[usize::try_from((x >> (i * 4)) % 12).unwrap_or(0)];
            out.push(b' ');
            out.extend_from_slice(w.as_bytes());
        }
        if line.is_multiple_of(700) {
            let (_, v) = SECRETS[usize::try_from(line / 700 % 4).unwrap_or(0)];
            out.extend_from_slice(b" token=");
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(size);
    out
}

/// Counts the copier's reads: the average read size explains most differences.
struct Counted<R> {
    inner: R,
    reads: u64,
}

impl<R: io::Read> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        self.inner.read(buf)
    }
}

/// What one run measured.
struct Ran {
    time: Duration,
    /// CPU time of the copier thread alone (user + system).
    cpu: Duration,
    seen: u64,
    reads: u64,
}

/// This thread's CPU time so far, from /proc (Linux).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Where the copier writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// A pipe read by a drain thread: keygate's stdout read by the next program.
    Pipe,
    /// /dev/null: writing costs nothing, so masking's share is the largest.
    DevNull,
}

/// Moves `total` bytes of `data` (repeated) through producer → copier → sink.
fn run(data: &[u8], total: usize, masked: bool, sink: Sink) -> io::Result<Ran> {
    let (child_out, to_child) = io::pipe()?;
    let (mut drain_in, from_copier) = io::pipe()?;
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let started = Instant::now();
    let data = data.to_vec();
    let producer = std::thread::spawn(move || -> io::Result<()> {
        let mut to_child = to_child;
        let mut left = total;
        while left > 0 {
            for chunk in data.chunks(CHUNK) {
                let n = chunk.len().min(left);
                to_child.write_all(&chunk[..n])?;
                left -= n;
                if left == 0 {
                    break;
                }
            }
        }
        Ok(())
    });
    let drain = std::thread::spawn(move || -> io::Result<u64> {
        let mut buf = vec![0u8; CHUNK];
        let mut seen = 0u64;
        loop {
            match drain_in.read(&mut buf)? {
                0 => return Ok(seen),
                n => seen += n as u64,
            }
        }
    });
    let mut masker =
        Masker::new(SECRETS.iter().map(|(n, v)| (*n, v.as_bytes()))).map_err(io::Error::other)?;
    let mut from = Counted {
        inner: child_out,
        reads: 0,
    };
    let cpu = thread_cpu();
    let mut seen_direct = 0;
    match sink {
        Sink::Pipe => {
            pump(&mut from, from_copier, masked.then_some(&mut masker))?;
        }
        Sink::DevNull => {
            drop(from_copier);
            seen_direct = pump(&mut from, devnull, masked.then_some(&mut masker))?;
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu);
    producer
        .join()
        .map_err(|_| io::Error::other("producer panicked"))??;
    let seen = drain
        .join()
        .map_err(|_| io::Error::other("drain panicked"))??
        + seen_direct;
    Ok(Ran {
        time: started.elapsed(),
        cpu,
        seen,
        reads: from.reads,
    })
}

/// The masker alone, in memory: no pipes, no system calls.
fn in_memory(data: &[u8], total: usize) -> io::Result<Duration> {
    let mut masker =
        Masker::new(SECRETS.iter().map(|(n, v)| (*n, v.as_bytes()))).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(2 * CHUNK);
    let started = Instant::now();
    let mut left = total;
    while left > 0 {
        for chunk in data.chunks(CHUNK) {
            let n = chunk.len().min(left);
            masker.push(&chunk[..n], &mut out);
            out.clear();
            left -= n;
            if left == 0 {
                break;
            }
        }
    }
    masker.finish(&mut out);
    Ok(started.elapsed())
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::cast_precision_loss)]
fn gib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / f64::from(1u32 << 30)
}

fn main() -> io::Result<()> {
    let total = arg("--mib", 1024) << 20;
    let runs = arg("--runs", 3).max(1);
    let data = block(16 << 20);

    // Correctness first: the block masked holds no value and the expected markers.
    let mut check =
        Masker::new(SECRETS.iter().map(|(n, v)| (*n, v.as_bytes()))).map_err(io::Error::other)?;
    let mut masked = Vec::new();
    check.push(&data, &mut masked);
    check.finish(&mut masked);
    let text = String::from_utf8_lossy(&masked);
    let markers = text.matches("<keygate:").count();
    assert!(markers > 0, "the block holds secrets");
    for (_, v) in SECRETS {
        assert!(!text.contains(v), "a value survived masking");
    }

    println!(
        "masking throughput: {} MiB in {} KiB chunks, {} secrets, {markers} occurrences per 16 MiB, {runs} runs each",
        total >> 20,
        CHUNK >> 10,
        SECRETS.len()
    );
    let mut over = false;
    for (sink, what) in [
        (
            Sink::Pipe,
            "child -> pipe -> copier -> pipe -> reader (what `exec` does)",
        ),
        (
            Sink::DevNull,
            "child -> pipe -> copier -> /dev/null (worst case for masking)",
        ),
    ] {
        println!("\n{what}");
        let mut plain = Vec::new();
        let mut masked = Vec::new();
        for _ in 0..runs {
            let p = run(&data, total, false, sink)?;
            assert_eq!(p.seen, total as u64);
            let m = run(&data, total, true, sink)?;
            println!(
                "  plain {:.3} s (copier cpu {:.3} s, {} KiB/read)   masked {:.3} s (copier cpu {:.3} s, {} KiB/read)",
                p.time.as_secs_f64(),
                p.cpu.as_secs_f64(),
                total as u64 / p.reads.max(1) / 1024,
                m.time.as_secs_f64(),
                m.cpu.as_secs_f64(),
                total as u64 / m.reads.max(1) / 1024,
            );
            plain.push(p);
            masked.push(m);
        }
        let median = |v: &mut Vec<Ran>| {
            v.sort_by_key(|r| r.time);
            v[v.len() / 2].time
        };
        let (bp, bm) = (
            plain.iter().map(|r| r.time).min().unwrap_or_default(),
            masked.iter().map(|r| r.time).min().unwrap_or_default(),
        );
        let (mp, mm) = (median(&mut plain), median(&mut masked));
        println!(
            "  best:   plain {:.3} s {:.2} GiB/s, masked {:.3} s {:.2} GiB/s, ratio {:.2}",
            bp.as_secs_f64(),
            gib_per_s(total, bp),
            bm.as_secs_f64(),
            gib_per_s(total, bm),
            bm.as_secs_f64() / bp.as_secs_f64()
        );
        println!(
            "  median: plain {:.3} s {:.2} GiB/s, masked {:.3} s {:.2} GiB/s, ratio {:.2}",
            mp.as_secs_f64(),
            gib_per_s(total, mp),
            mm.as_secs_f64(),
            gib_per_s(total, mm),
            mm.as_secs_f64() / mp.as_secs_f64()
        );
        if sink == Sink::Pipe && bm.as_secs_f64() / bp.as_secs_f64() > 2.0 {
            over = true;
        }
    }
    let memory = in_memory(&data, total)?;
    println!(
        "\nmasker alone, in memory: {:.3} s, {:.2} GiB/s",
        memory.as_secs_f64(),
        gib_per_s(total, memory)
    );
    if over {
        eprintln!("masking costs more than 2x a plain pipe");
        std::process::exit(1);
    }
    Ok(())
}
