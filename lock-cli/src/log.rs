//! What process-lock logs on stderr: by default, warnings (the library's "failed, trying
//! again" while Redis is out of reach, a release that could not be confirmed) as plain
//! `process-lock: warning: ...` lines; with `-v`, `-vv`, `-vvv` everything from info, debug or
//! trace up, with timestamps; with `-q`, nothing.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Whether a status line (rewritten in place, without a newline) is on stderr now: a log line
/// then erases it first, instead of being appended to it.
pub(crate) static STATUS_LINE: AtomicBool = AtomicBool::new(false);

/// Sets up logging to stderr for `-q` (`quiet`) and `-v` (`verbose`).
pub(crate) fn init(quiet: bool, verbose: u8) {
    if quiet {
        return;
    }
    let level = match verbose {
        0 => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(LevelFilter::WARN)
                .with_ansi(false)
                .event_format(Plain)
                .init();
            return;
        }
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // The tracing layer's events (one per Redis operation, at DEBUG) show from -v on.
    let filter = Targets::new()
        .with_default(level)
        .with_target("lock_core::layers", level.max(LevelFilter::DEBUG));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    tracing_subscriber::registry().with(layer).init();
}

/// One line per event, as process-lock's own messages look: `process-lock: warning: MESSAGE
/// field=value ...`.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if STATUS_LINE.load(Ordering::Relaxed) {
            writer.write_str("\r\x1b[K")?;
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "process-lock: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The library's warnings while Redis is out of reach come out as one plain line each;
    /// information does not, by default.
    #[test]
    fn warnings_are_plain_lines_by_default() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(LevelFilter::WARN)
            .with_ansi(false)
            .event_format(Plain)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                target: "lock_core::lock",
                lock = %"job\n".escape_debug(),
                failures = 1,
                "acquiring failed, trying again: connection error: refused"
            );
            tracing::info!(target: "lock_core::lock", "acquired");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "process-lock: warning: acquiring failed, trying again: connection error: refused \
             lock=job\\n failures=1\n"
        );
    }
}
