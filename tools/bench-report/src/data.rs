//! The benches' results, as `benches/common/results.rs` writes them: one `<bench>.tsv` per
//! bench, tab-separated records.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Result;

/// The records of one bench's file.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    meta: BTreeMap<String, String>,
}

impl Figures {
    /// A `meta` record's value (`redis`: the server's version, `command`: how the bench ran).
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }
}

/// Every bench's results.
#[derive(Debug, Default)]
pub(crate) struct Data {
    benches: BTreeMap<String, Figures>,
    /// (client, variant, tasks) → cycles per second.
    rates: BTreeMap<(String, String, usize), f64>,
    /// Clients in the order the bench measured them.
    clients: Vec<String>,
    /// (client, variant) pairs in the order the bench measured them.
    rated: Vec<(String, String)>,
    /// (what, variant, processes) → samples in µs, sorted.
    samples: BTreeMap<(String, String, usize), Vec<u64>>,
    /// Variants in the order the bench measured them.
    variants: Vec<String>,
    /// (what, variant, processes) → a figure.
    values: BTreeMap<(String, String, usize), f64>,
}

impl Data {
    /// Reads every `*.tsv` in `dir` whose bench (the file's stem) `wanted` accepts.
    pub(crate) fn read(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<Self> {
        let mut data = Data::default();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e} (run scripts/bench-report first)", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|ext| ext != "tsv") {
                continue;
            }
            let Some(bench) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !wanted(bench) {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            data.add(bench, &text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if data.benches.is_empty() {
            return Err(format!("{}: no results (*.tsv)", dir.display()).into());
        }
        Ok(data)
    }

    fn add(&mut self, bench: &str, text: &str) -> Result<()> {
        let figures = self.benches.entry(bench.to_owned()).or_default();
        for (n, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            let bad = || format!("line {}: unexpected record {line:?}", n + 1);
            match fields[..] {
                ["meta", key, value] => {
                    figures.meta.insert(key.to_owned(), value.to_owned());
                }
                ["rate", client, variant, tasks, rate] => {
                    if !self.clients.iter().any(|c| c == client) {
                        self.clients.push(client.to_owned());
                    }
                    let pair = (client.to_owned(), variant.to_owned());
                    if !self.rated.contains(&pair) {
                        self.rated.push(pair);
                    }
                    let key = (client.to_owned(), variant.to_owned(), tasks.parse()?);
                    self.rates.insert(key, rate.parse()?);
                }
                ["samples", what, variant, processes, values] => {
                    if !self.variants.iter().any(|v| v == variant) {
                        self.variants.push(variant.to_owned());
                    }
                    let mut values = values
                        .split_whitespace()
                        .map(str::parse)
                        .collect::<std::result::Result<Vec<u64>, _>>()?;
                    values.sort_unstable();
                    let key = (what.to_owned(), variant.to_owned(), processes.parse()?);
                    self.samples.insert(key, values);
                }
                ["value", what, variant, processes, value] => {
                    let key = (what.to_owned(), variant.to_owned(), processes.parse()?);
                    self.values.insert(key, value.parse()?);
                }
                [""] => {}
                _ => return Err(bad().into()),
            }
        }
        Ok(())
    }

    /// The results of `bench`, if it ran.
    pub(crate) fn figures(&self, bench: &str) -> Option<&Figures> {
        self.benches.get(bench)
    }

    pub(crate) fn clients(&self) -> Vec<String> {
        self.clients.clone()
    }

    /// The variants measured for `client`, in the order first seen.
    pub(crate) fn variants_of(&self, client: &str) -> Vec<String> {
        self.rated
            .iter()
            .filter(|(c, _)| c == client)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn task_counts(&self, client: &str) -> Vec<usize> {
        let mut counts: Vec<usize> = self
            .rates
            .keys()
            .filter(|(c, _, _)| c == client)
            .map(|(_, _, t)| *t)
            .collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    pub(crate) fn rate(&self, client: &str, variant: &str, tasks: usize) -> Option<f64> {
        let key = (client.to_owned(), variant.to_owned(), tasks);
        self.rates.get(&key).copied()
    }

    pub(crate) fn process_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.samples.keys().map(|(_, _, p)| *p).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// The variants with samples at `processes`, in the order the bench measured them.
    pub(crate) fn variants_with_samples(&self, processes: usize) -> Vec<String> {
        self.variants
            .iter()
            .filter(|v| {
                self.samples
                    .keys()
                    .any(|(_, variant, p)| variant == *v && *p == processes)
            })
            .cloned()
            .collect()
    }

    /// The sorted samples (µs) of `what` for `variant` at `processes`; empty if none.
    pub(crate) fn samples(&self, what: &str, variant: &str, processes: usize) -> &[u64] {
        let key = (what.to_owned(), variant.to_owned(), processes);
        self.samples.get(&key).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn value(&self, what: &str, variant: &str, processes: usize) -> Option<f64> {
        let key = (what.to_owned(), variant.to_owned(), processes);
        self.values.get(&key).copied()
    }

    /// Every variant that has a `what` figure, with its (processes, value) points.
    pub(crate) fn series(&self, what: &str) -> Vec<(String, Vec<(usize, f64)>)> {
        self.variants
            .iter()
            .map(|variant| {
                let points = self
                    .values
                    .iter()
                    .filter(|((w, v, _), _)| w == what && v == variant)
                    .map(|((_, _, p), value)| (*p, *value))
                    .collect();
                (variant.clone(), points)
            })
            .filter(|(_, points): &(String, Vec<(usize, f64)>)| !points.is_empty())
            .collect()
    }
}

/// The `p` quantile (0 to 1) of sorted `samples`, nearest rank; `None` without samples.
pub(crate) fn percentile(samples: &[u64], p: f64) -> Option<u64> {
    let last = samples.len().checked_sub(1)?;
    let rank = ((last as f64) * p).round() as usize;
    samples.get(rank.min(last)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records() {
        let mut data = Data::default();
        data.add(
            "redis",
            "meta\tredis\t7.0.15\nrate\tfred\tLock guard\t64\t100.5\nrate\tfred\tLock guard\t1\t10\n",
        )
        .unwrap();
        data.add(
            "processes",
            "samples\thandover\tours\t8\t30 10 20\nvalue\tcommands_per_acquisition\tours\t8\t2.0\n",
        )
        .unwrap();
        assert_eq!(data.figures("redis").unwrap().meta("redis"), Some("7.0.15"));
        assert_eq!(data.task_counts("fred"), [1, 64]);
        assert_eq!(data.rate("fred", "Lock guard", 64), Some(100.5));
        assert_eq!(data.samples("handover", "ours", 8), [10, 20, 30]);
        assert_eq!(
            percentile(data.samples("handover", "ours", 8), 0.5),
            Some(20)
        );
        assert_eq!(
            data.series("commands_per_acquisition"),
            [("ours".to_owned(), vec![(8, 2.0)])]
        );
        assert!(data.add("x", "bogus\t1").is_err());
    }
}
