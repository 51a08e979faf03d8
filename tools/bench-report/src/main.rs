//! `bench-report RESULTS DOCS`: reads what the benches wrote to `RESULTS` (with `BENCH_OUT`
//! set, see `benches/common/results.rs`) and writes `DOCS/benchmarks.md` with its SVG plots in
//! `DOCS/benchmarks/`. `scripts/bench-report` runs the benches and then this.
//!
//! Every plot says the machine, the Redis version, the date and the command that made it.

mod data;
mod plot;

use std::fmt::Write as _;
use std::path::Path;

use data::{Data, Figures};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [results, docs] = &args[..] else {
        eprintln!("usage: bench-report RESULTS_DIR DOCS_DIR (see scripts/bench-report)");
        std::process::exit(2);
    };
    if let Err(e) = run(Path::new(results), Path::new(docs)) {
        eprintln!("bench-report: {e}");
        std::process::exit(1);
    }
}

/// The bench whose figures have a section of their own, read apart from the others (its
/// variants are not those of the processes' plots).
const REDLOCK: &str = "redlock";

fn run(results: &Path, docs: &Path) -> Result<()> {
    let data = Data::read(results, |bench| bench != REDLOCK)?;
    let redlock = Data::read(results, |bench| bench == REDLOCK).ok();
    let page = Page {
        plots: docs.join("benchmarks"),
        machine: machine(),
        date: today(),
    };
    std::fs::create_dir_all(&page.plots)?;
    let (machine, date) = (&page.machine, &page.date);
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Written by `scripts/bench-report` on {date}, on {machine}. Every figure below comes \
         from that one run; the ratios compare variants measured in the same run, against the \
         same Redis, taking turns in short slices so that a shared machine's drift falls on all \
         of them alike. Run `scripts/bench-report` to measure your own machine.\n"
    )?;

    if let Some(redis) = data.figures("redis") {
        uncontended(&data, redis, &page, &mut md)?;
    }
    if let Some(processes) = data.figures("processes") {
        contended(&data, processes, &page, &mut md)?;
    }
    if let Some(redlock) = &redlock
        && let Some(figures) = redlock.figures(REDLOCK)
    {
        quorum(redlock, figures, &page, &mut md)?;
    }
    let path = docs.join("benchmarks.md");
    std::fs::write(&path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Where the page's plots go, and what their footers say of where they were measured.
struct Page {
    plots: std::path::PathBuf,
    machine: String,
    date: String,
}

impl Page {
    /// The path of the plot `file`.
    fn plot(&self, file: &str) -> std::path::PathBuf {
        self.plots.join(file)
    }

    /// The footer of a plot of `figures`: the machine, the Redis version, the date, the command.
    fn footer(&self, figures: &Figures) -> String {
        format!(
            "{} · Redis {} · {} · {}",
            self.machine,
            figures.meta("redis").unwrap_or("?"),
            self.date,
            figures.meta("command").unwrap_or("?"),
        )
    }
}

/// The uncontended section: lock + release cycles per second against the raw clients.
fn uncontended(data: &Data, redis: &Figures, page: &Page, md: &mut String) -> Result<()> {
    writeln!(md, "## Uncontended: our lock against its raw client\n")?;
    writeln!(
        md,
        "One lock + release cycle per task, on distinct names, for 1 to 64 concurrent tasks \
         on one backend (`benches/redis.rs`). `raw scripts` sends the same two `EVALSHA` as \
         `ProcessLock` straight through the client; `raw fenced scripts` the same work as the \
         `Lock` guard's (a lock with a fencing token). Command: `{}`.\n",
        redis.meta("command").unwrap_or("?")
    )?;
    if data.clients().iter().any(|c| c.ends_with("cluster")) {
        writeln!(
            md,
            "The `cluster` rows are the same cycles on a Redis Cluster of 3 primaries (each \
             script on the node of its lock's slot, releases with `SPUBLISH`), against the raw \
             cluster client. Every server, the single one and the Cluster's nodes, is reached \
             straight on Docker's bridge network (not through its port proxy); a Cluster \
             client does more per request: compare the ratios, not the rates.\n"
        )?;
    }
    let foot = page.footer(redis);
    for client in data.clients() {
        let file = format!("uncontended-{}.svg", client.replace(' ', "-"));
        plot::rates(&page.plot(&file), data, &client, &foot)?;
        writeln!(
            md,
            "![uncontended cycles per second, {client}](benchmarks/{file})\n"
        )?;
    }
    writeln!(
        md,
        "| client | tasks | ProcessLock / raw scripts | Lock guard / raw fenced scripts | \
         ProcessLock / raw SET NX + DEL |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    for client in data.clients() {
        for tasks in data.task_counts(&client) {
            let rate = |variant: &str| data.rate(&client, variant, tasks);
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".to_owned(),
            };
            writeln!(
                md,
                "| {client} | {tasks} | {} | {} | {} |",
                ratio(rate("ProcessLock"), rate("raw scripts")),
                ratio(rate("Lock guard"), rate("raw fenced scripts")),
                ratio(rate("ProcessLock"), rate("raw SET NX + DEL")),
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// The contended section: real processes taking turns, ours against rslock.
fn contended(data: &Data, processes: &Figures, page: &Page, md: &mut String) -> Result<()> {
    writeln!(md, "## Contended: real processes taking turns\n")?;
    writeln!(
        md,
        "P separate OS processes, each with its own backend and connections, loop on one lock: \
         ask, acquire, hold about 1 ms, release (`benches/processes.rs`), with our waiting \
         `Lock::lock` on each client and with rslock's polling acquire. Hand-over is the time \
         from a release being sent to the next acquisition by another process; wait is each \
         turn's time inside the acquire (but each process's first, as all P ask at one \
         instant and a first wait subscribes to the lock's hand-offs; the processes stay, \
         idle, until every one is done, so that none exiting slows the last turns). The `cluster` variants run the same on a Redis \
         Cluster of 3 primaries (the lock's keys and channels in one slot, releases published \
         to its shard with `SPUBLISH`, commands counted on that slot's primary); rslock is not \
         run there, as it takes its URLs for independent servers. Command: `{}`.\n",
        processes.meta("command").unwrap_or("?")
    )?;
    let foot = page.footer(processes);
    let counts = data.process_counts();
    for (what, title) in [("handover", "Hand-over"), ("wait", "Wait")] {
        writeln!(md, "### {title} times\n")?;
        for &p in &counts {
            let file = format!("{what}-cdf-{p}-processes.svg");
            plot::cdf(&page.plot(&file), data, what, (p, "processes"), &foot)?;
            writeln!(md, "![{title} CDF, {p} processes](benchmarks/{file})\n")?;
        }
    }
    let file = "commands-per-acquisition.svg";
    plot::per_processes(
        &page.plot(file),
        data,
        "commands_per_acquisition",
        "Redis commands per acquisition",
        &foot,
    )?;
    writeln!(md, "### Redis commands per acquisition\n")?;
    writeln!(
        md,
        "Top-level commands (`MONITOR`) over turns taken, counted in a 2 s run of their own \
         after the timed one (a `MONITOR` client slows the server and the machine the times \
         are measured on): a waiting process that costs a command at every release shows as a \
         line that climbs with P.\n"
    )?;
    writeln!(md, "![commands per acquisition](benchmarks/{file})\n")?;

    writeln!(
        md,
        "| variant | P | same process again | least/most served while all ask | hand-over p50 / p99 | \
         wait p50 / p99 / max | wait target | P − 1 mean turns | others served during a wait, max | longest turn | commands per acquisition |"
    )?;
    writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for &p in &counts {
        for variant in data.variants_with_samples(p) {
            let value = |what: &str| data.value(what, &variant, p);
            let handover = data.samples("handover", &variant, p);
            let wait = data.samples("wait", &variant, p);
            let target = wait_target(p, value("hold_p50_us"), data::percentile(handover, 0.50));
            let met = match (target, data::percentile(wait, 0.99)) {
                (Some(t), Some(p99)) if p99 as f64 <= t => format!("{:.1} ms, met", t / 1000.0),
                (Some(t), Some(_)) => format!("{:.1} ms, **missed**", t / 1000.0),
                _ => "–".to_owned(),
            };
            let fifo = match (value("turn_mean_us"), data::percentile(wait, 0.99)) {
                (Some(turn), Some(p99)) => {
                    let turns = p.saturating_sub(1) as f64 * turn;
                    format!(
                        "{:.1} ms (p99 {:.2}×)",
                        turns / 1000.0,
                        p99 as f64 / turns.max(1.0)
                    )
                }
                _ => "–".to_owned(),
            };
            writeln!(
                md,
                "| {variant} | {p} | {} | {} | {} / {} ms | {} / {} / {} ms | {met} | {fifo} | {} | {} | {} |",
                value("same_process").map_or("–".into(), |v| format!("{:.1}%", v * 100.0)),
                value("least_most_while_all_ask").map_or("–".into(), |v| format!("{v:.2}")),
                ms(data::percentile(handover, 0.50)),
                ms(data::percentile(handover, 0.99)),
                ms(data::percentile(wait, 0.50)),
                ms(data::percentile(wait, 0.99)),
                ms(data::percentile(wait, 1.0)),
                value("passed_max").map_or("–".into(), |v| format!("{v:.0} (P − 1 = {})", p - 1)),
                value("longest_turn_us").map_or("–".into(), |v| format!("{:.2} ms", v / 1000.0)),
                value("commands_per_acquisition").map_or("–".into(), |v| format!("{v:.2}")),
            )?;
        }
    }
    writeln!(
        md,
        "\nThe wait target is the waiter queue's (issue 12): a waiter's wait p99 at most \
         (P − 1) × (hold + hand-over) + 5 ms, P − 1 turns ahead of it, with this run's hold p50 \
         (the 1 ms sleep plus the process's own scheduling) and hand-over p50. The next column \
         counts the turns ahead at their mean instead (the run's time between acquisitions while \
         every process asks): a waiter served in arrival order waits P − 1 turns, so its wait \
         is that on average, and its p99 exceeds it only by the spread of a sum of P − 1 turns; \
         a waiter passed over would wait several times as long. `others served during a wait` \
         counts the acquisitions by other processes between a process's request and its \
         acquisition: at most P − 1 when waiters are served in arrival order (a little more \
         when a request is slow to reach the server, as order is the server's arrival order). \
         `longest turn` is the longest time from one acquisition to the next while every \
         process asks: one slow turn (the holder's process or the server descheduled on this \
         shared 2-core machine) lengthens the wait of every process queued behind it, up to \
         P − 1 of them. A wait adds up P − 1 turns, so its spread grows with P (the ordinary \
         spread of each turn, the 1 ms sleep's wake-up and the processes' scheduling, and any \
         such stall), while the target allows a fixed 5 ms for it: where the target is missed \
         with at most P − 1 others served during a wait, the order was kept and the turns were \
         slow.\n"
    )?;
    Ok(())
}

/// The Redlock section: a quorum of 3 servers, ours against rslock's Redlock.
fn quorum(data: &Data, figures: &Figures, page: &Page, md: &mut String) -> Result<()> {
    writeln!(md, "## Redlock: a quorum of 3 servers\n")?;
    writeln!(
        md,
        "Our `Quorum` of 3 backends against rslock's Redlock on the same 3 servers \
         (`benches/contention.rs`, `BENCH_REDLOCK=1`). Uncontended: one task, lock and release \
         on one name, in alternating slices. Command: `{}`.\n",
        figures.meta("command").unwrap_or("?")
    )?;
    let peer = data
        .variants_of("uncontended")
        .into_iter()
        .find(|v| v.starts_with("rslock"))
        .and_then(|v| data.rate("uncontended", &v, 1));
    writeln!(md, "| variant | cycles/s | vs rslock |")?;
    writeln!(md, "|---|---:|---:|")?;
    for variant in data.variants_of("uncontended") {
        let Some(rate) = data.rate("uncontended", &variant, 1) else {
            continue;
        };
        let versus = peer.map_or("–".to_owned(), |p| format!("{:.2}×", rate / p));
        writeln!(md, "| {variant} | {rate:.0} | {versus} |")?;
    }
    let foot = page.footer(figures);
    for tasks in data.process_counts() {
        writeln!(
            md,
            "\nContended: {tasks} tasks take turns on one lock, each with its own 3 \
             connections (as processes would be), holding it about 1 ms.\n"
        )?;
        for (what, title) in [("handover", "Hand-over"), ("wait", "Wait")] {
            let file = format!("redlock-{what}-cdf-{tasks}-tasks.svg");
            plot::cdf(&page.plot(&file), data, what, (tasks, "tasks"), &foot)?;
            writeln!(
                md,
                "![Redlock {title} CDF, {tasks} tasks](benchmarks/{file})\n"
            )?;
        }
        writeln!(
            md,
            "| variant | acquisitions/s | same task again | hand-over p50 / p99 | wait p50 / p99 / max |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|")?;
        for variant in data.variants_with_samples(tasks) {
            let value = |what: &str| data.value(what, &variant, tasks);
            let handover = data.samples("handover", &variant, tasks);
            let wait = data.samples("wait", &variant, tasks);
            writeln!(
                md,
                "| {variant} | {} | {} | {} / {} ms | {} / {} / {} ms |",
                value("per_second").map_or("–".into(), |v| format!("{v:.0}")),
                value("same_process").map_or("–".into(), |v| format!("{:.1}%", v * 100.0)),
                ms(data::percentile(handover, 0.50)),
                ms(data::percentile(handover, 0.99)),
                ms(data::percentile(wait, 0.50)),
                ms(data::percentile(wait, 0.99)),
                ms(data::percentile(wait, 1.0)),
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// The wait a waiter among `processes` should see at most (µs): `processes - 1` turns of hold
/// and hand-over ahead of it, plus 5 ms.
fn wait_target(processes: usize, hold_us: Option<f64>, handover_us: Option<u64>) -> Option<f64> {
    let turn = hold_us? + handover_us? as f64;
    Some(processes.saturating_sub(1) as f64 * turn + 5000.0)
}

fn ms(us: Option<u64>) -> String {
    us.map_or("–".to_owned(), |us| format!("{:.2}", us as f64 / 1000.0))
}

/// The CPU model and the number of cores, as Linux reports them.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cores} cores")
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole report from a small set of results: the page, and plots that carry the
    /// footer.
    #[test]
    fn writes_the_page_and_its_plots() {
        let dir = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        let (results, docs) = (dir.join("results"), dir.join("docs"));
        std::fs::create_dir_all(&results).unwrap();
        let mut redis =
            String::from("meta\tcommand\tcargo bench --bench redis\nmeta\tredis\t7.0.15\n");
        for (variant, base) in [("ProcessLock", 95.0), ("raw scripts", 100.0)] {
            for tasks in [1, 4, 16, 64] {
                let rate = base * f64::from(tasks);
                redis += &format!("rate\tfred\t{variant}\t{tasks}\t{rate}\n");
            }
        }
        std::fs::write(results.join("redis.tsv"), redis).unwrap();
        let mut processes = String::from("meta\tredis\t7.0.15\n");
        for p in [2, 8] {
            for variant in ["ours", "rslock"] {
                processes += &format!("samples\thandover\t{variant}\t{p}\t250 300 900 40000\n");
                processes += &format!("samples\twait\t{variant}\t{p}\t1000 1500 2000\n");
                processes += &format!("value\tcommands_per_acquisition\t{variant}\t{p}\t2.0\n");
            }
        }
        std::fs::write(results.join("processes.tsv"), processes).unwrap();
        let mut redlock = String::from("meta\tcommand\tBENCH_REDLOCK=1 cargo bench\n");
        redlock += "meta\tredis\t7.0.15\n";
        redlock += "rate\tuncontended\tQuorum of 3\t1\t1500\n";
        redlock += "rate\tuncontended\trslock Redlock\t1\t1000\n";
        redlock += "samples\twait\tQuorum of 3\t8\t1000 2000\n";
        redlock += "samples\thandover\tQuorum of 3\t8\t300 400\n";
        redlock += "value\tper_second\tQuorum of 3\t8\t150\n";
        std::fs::write(results.join("redlock.tsv"), redlock).unwrap();
        std::fs::write(
            results.join("cluster.tsv"),
            "rate\tfred cluster\tProcessLock\t1\t90\nrate\tfred cluster\traw scripts\t1\t100\n",
        )
        .unwrap();

        run(&results, &docs).unwrap();
        let page = std::fs::read_to_string(docs.join("benchmarks.md")).unwrap();
        assert!(page.contains("| fred | 64 | 0.95 |"), "{page}");
        assert!(page.contains("![Hand-over CDF, 8 processes]"), "{page}");
        assert!(page.contains("| fred cluster | 1 | 0.90 |"), "{page}");
        assert!(page.contains("| Quorum of 3 | 1500 | 1.50× |"), "{page}");
        assert!(
            page.contains("| Quorum of 3 | 150 | – | 0.40 / 0.40 ms |"),
            "{page}"
        );
        // The Redlock variants are not in the processes' plots.
        assert!(!page.contains("| Quorum of 3 | 8 |"), "{page}");
        for plot in [
            "uncontended-fred.svg",
            "uncontended-fred-cluster.svg",
            "redlock-wait-cdf-8-tasks.svg",
            "handover-cdf-2-processes.svg",
            "wait-cdf-8-processes.svg",
            "commands-per-acquisition.svg",
        ] {
            let svg = std::fs::read_to_string(docs.join("benchmarks").join(plot)).unwrap();
            assert!(svg.starts_with("<svg"), "{plot}");
            assert!(svg.contains("Redis 7.0.15"), "{plot} has no footer");
        }
        let handover =
            std::fs::read_to_string(docs.join("benchmarks/handover-cdf-2-processes.svg"));
        assert!(handover.unwrap().contains("(4 hand-overs)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
