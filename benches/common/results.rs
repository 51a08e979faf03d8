//! What a bench writes for `scripts/bench-report`: with `BENCH_OUT` set, each bench appends
//! tab-separated records to `$BENCH_OUT/<bench>.tsv` (`tools/bench-report` reads them and
//! draws the plots of `docs/benchmarks.md`). Without it, nothing is written.
//!
//! A record is a kind, then its fields: `meta <key> <value>`, `rate <client> <variant> <tasks>
//! <per second>`, `samples <what> <variant> <processes> <µs...>` (space-separated), `value
//! <what> <variant> <processes> <number>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

/// The results file of bench `bench`, if `BENCH_OUT` is set.
pub(crate) struct Results(Option<PathBuf>);

impl Results {
    /// Results of `bench`, started afresh (a previous run's file is replaced).
    pub(crate) fn new(bench: &str) -> Self {
        let path = std::env::var_os("BENCH_OUT")
            .filter(|dir| !dir.is_empty())
            .map(|dir| {
                let dir = PathBuf::from(dir);
                std::fs::create_dir_all(&dir)
                    .unwrap_or_else(|e| panic!("BENCH_OUT {}: {e}", dir.display()));
                dir.join(format!("{bench}.tsv"))
            });
        if let Some(path) = &path {
            std::fs::write(path, "").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let results = Results(path);
        results.record(&["meta", "command", &command_line()]);
        results
    }

    /// Appends one record.
    pub(crate) fn record(&self, fields: &[&str]) {
        let Some(path) = &self.0 else {
            return;
        };
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for field in fields {
            assert!(
                !field.contains(['\t', '\n']),
                "a field of a result has a tab or a newline: {field:?}"
            );
        }
        writeln!(file, "{}", fields.join("\t"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// The Redis server's version, from `INFO server`'s text.
    pub(crate) fn redis_version(&self, info: &str) {
        if let Some(version) = info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
        {
            self.record(&["meta", "redis", version.trim()]);
        }
    }
}

/// The comma-separated counts (of tasks, of processes) in environment variable `var`, or
/// `default`.
///
/// # Panics
///
/// On a count that is not a positive number: a bench run with settings it cannot honour
/// would measure something else.
pub(crate) fn counts_from_env(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.split(',')
                .map(|n| match n.trim().parse() {
                    Ok(n) if n > 0 => n,
                    _ => panic!("{var}: {n:?} is not a positive count"),
                })
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

/// How this bench was run, as a person would type it.
fn command_line() -> String {
    let bench = std::env::args()
        .next()
        .and_then(|exe| {
            let name = std::path::Path::new(&exe).file_stem()?.to_str()?.to_owned();
            // Cargo names a bench binary `<bench>-<hash>`.
            Some(
                name.rsplit_once('-')
                    .map_or(name.clone(), |(b, _)| b.to_owned()),
            )
        })
        .unwrap_or_default();
    let env: Vec<String> = [
        "BENCH_SECONDS",
        "BENCH_TASKS",
        "BENCH_PROCESSES",
        "BENCH_CLUSTER",
        "BENCH_REDLOCK",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
    .collect();
    let mut line = env.join(" ");
    if !line.is_empty() {
        line.push(' ');
    }
    line + &format!("cargo bench --bench {bench} --features redis-rs,fred")
}
