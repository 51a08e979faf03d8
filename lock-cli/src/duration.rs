//! Durations in human form: `250ms`, `30s`, `5m`, `1h`, `2d`, and sums such as `1m30s`.

use std::fmt;
use std::time::Duration;

/// Parses a duration: one or more `NUMBER UNIT` parts, `UNIT` one of `ms`, `s`, `m`, `h`, `d`
/// (also spelled out: `sec`, `min`, `hours`, ...), `NUMBER` a whole or decimal number (`1.5s`).
/// Parts add up: `1m30s` is 90 seconds. Spaces between parts, and between a number and its
/// unit, are allowed.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!("invalid duration {text:?}: {why} (examples: 250ms, 30s, 5m, 1h, 1m30s)")
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() {
            return Err(bad("expected a number"));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ms" | "msec" | "millis" | "millisecond" | "milliseconds" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "" => return Err(bad("a number needs a unit, such as 30s")),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| bad(&format!("{number:?} is not a number")))?;
        let part = Duration::try_from_secs_f64(value * seconds_per_unit)
            .map_err(|_| bad("it is too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| bad("it is too large"))?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// A duration for people: `250ms`, `1.5s`, `2m05s`, `1h02m`.
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis < 1_000 {
            write!(f, "{millis}ms")
        } else if millis < 60_000 {
            write!(f, "{:.1}s", self.0.as_secs_f64())
        } else {
            let secs = self.0.as_secs();
            if secs < 3_600 {
                write!(f, "{}m{:02}s", secs / 60, secs % 60)
            } else {
                write!(f, "{}h{:02}m", secs / 3_600, secs % 3_600 / 60)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_durations() {
        let ms = Duration::from_millis;
        let cases = [
            ("250ms", ms(250)),
            ("30s", ms(30_000)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("1m30s", ms(90_000)),
            ("1m 30s", ms(90_000)),
            ("1.5s", ms(1_500)),
            ("2d", ms(172_800_000)),
            ("10 seconds", ms(10_000)),
            (" 0s ", ms(0)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_the_rest_with_a_reason() {
        for (text, says) in [
            ("", "empty"),
            ("30", "needs a unit"),
            ("s", "expected a number"),
            ("3x", "unknown unit \"x\""),
            ("1..2s", "not a number"),
            ("-1s", "expected a number"),
            ("99999999999999999999d", "too large"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.contains("examples"), "{err}");
        }
    }

    #[test]
    fn shows_durations_for_people() {
        let shown = |ms| Human(Duration::from_millis(ms)).to_string();
        assert_eq!(shown(250), "250ms");
        assert_eq!(shown(1_500), "1.5s");
        assert_eq!(shown(125_000), "2m05s");
        assert_eq!(shown(3_720_000), "1h02m");
    }
}
