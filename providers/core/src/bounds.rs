//! Bounds on every API call and every file a plan refers to: how long a call may wait,
//! how large an answer may be, and how a file must look before wid reads it.
//!
//! The engine builds one [`Bounds`] per run (from `--call-timeout`) and hands it to every
//! provider when it connects. A provider applies it to its HTTP client: connect and read
//! timeouts in the client's own settings, the per-call deadline over the whole exchange
//! (request, headers and body), and [`Bounds::max_response_bytes`] as a cap on each
//! response body, cut while reading, never after buffering it. `docs/engine.md` says what
//! each provider must set.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ErrorKind, ProviderError};

/// The longest `Retry-After` wid honours; longer asks are cut to this (the run's
/// `--timeout` still bounds the whole run).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The largest file a plan may refer to (a policy document, a kubeconfig).
pub const MAX_REFERENCED_FILE_BYTES: u64 = 1024 * 1024;

/// How long and how much one API call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The longest silence while a response is expected: no byte for this long fails the
    /// call.
    pub read_timeout: Duration,
    /// One call from the first byte sent to the last byte received (`--call-timeout`). A
    /// call that runs out of it is transient: it is retried like a 5xx.
    pub call_timeout: Duration,
    /// The largest response body accepted; a longer one is cut at this size and the call
    /// fails (not retried).
    pub max_response_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(60),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Bounds {
    /// Bounds with this per-call deadline; the connect and read timeouts never exceed it.
    pub fn with_call_timeout(call_timeout: Duration) -> Self {
        let d = Self::default();
        Self {
            connect_timeout: d.connect_timeout.min(call_timeout),
            read_timeout: d.read_timeout.min(call_timeout),
            call_timeout,
            max_response_bytes: d.max_response_bytes,
        }
    }

    /// The error of a call that got no complete answer within [`Self::call_timeout`]:
    /// transient, so it is retried. `waiting` names what waited ("the Kubernetes API of
    /// cluster eks-prod", "AWS IAM").
    pub fn timed_out(&self, waiting: &str) -> ProviderError {
        ProviderError::new(
            ErrorKind::Transient,
            format!(
                "no complete answer from {waiting} within {} (the per-call deadline)",
                human_duration(self.call_timeout)
            ),
        )
        .with_hint(
            "the endpoint accepted the call but stalled; check it is reachable and healthy, or raise --call-timeout",
        )
    }

    /// The error of a response cut at [`Self::max_response_bytes`]: invalid, not retried
    /// (the same call would get the same answer).
    pub fn too_large(&self, waiting: &str) -> ProviderError {
        ProviderError::new(
            ErrorKind::Invalid,
            format!(
                "the response from {waiting} was cut at {} bytes, the most wid accepts for one call",
                self.max_response_bytes
            ),
        )
        .with_hint(
            "no API wid calls answers this much; check the endpoint (a proxy, a wrong URL, a misbehaving server)",
        )
    }
}

/// A duration as people write it: `1h30m`, `90s`, `1.5s`, `250ms`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 {
        out.push_str(&format!("{secs}s"));
    }
    out
}

/// Parses a duration written like `30s`, `5m`, `1h30m`, `250ms` or `1.5s` (a bare number
/// is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration; write it like 30s, 5m, 1h30m or 250ms");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| bad())?;
    }
    Ok(total)
}

/// The wait a `Retry-After` header value asks for: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 9110 §10.2.3), capped at [`MAX_RETRY_AFTER`].
/// `None` when the value is neither.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = UNIX_EPOCH + Duration::from_secs(parse_http_date(value)?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// date form servers may send.
fn parse_http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Reads a file a plan refers to (a policy document, a kubeconfig) only when it is a
/// regular file of at most `max` bytes, so `/dev/zero`, a FIFO or a directory is an
/// error instead of a hang or an endless read. The error is a sentence fragment naming
/// the path, for the caller to locate.
pub fn read_referenced_file(path: &Path, max: u64) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file (a device, a FIFO or a socket)"
        };
        return Err(format!("{shown} is {what}; wid reads only regular files"));
    }
    if meta.len() > max {
        return Err(format!(
            "{shown} is {} bytes; wid reads files of at most {max} bytes",
            meta.len()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    // The file may grow between the check and the read: never read more than allowed.
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{shown} is larger than {max} bytes; wid reads files of at most {max} bytes"
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_people_write_them() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("30s"), Ok(s(30)));
        assert_eq!(parse_duration("5m"), Ok(s(300)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("45"), Ok(s(45)));
        for bad in ["", "s", "5x", "1h30", "-1s", "m5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(human_duration(s(5400)), "1h30m");
        assert_eq!(human_duration(s(30)), "30s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 GMT
        assert_eq!(parse_retry_after_at("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after_at("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after_at("soon", now), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("wid-bounds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("p.json");
        std::fs::write(&ok, "{}").unwrap();
        assert_eq!(read_referenced_file(&ok, 10).unwrap(), "{}");
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; 11]).unwrap();
        let e = read_referenced_file(&big, 10).unwrap_err();
        assert!(e.contains("11 bytes") && e.contains("at most 10"), "{e}");
        let e = read_referenced_file(&dir, 10).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        #[cfg(unix)]
        {
            let e = read_referenced_file(Path::new("/dev/zero"), 10).unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let e = read_referenced_file(&dir.join("missing"), 10).unwrap_err();
        assert!(e.starts_with("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_connect_and_read_timeouts_never_exceed_the_call_deadline() {
        let b = Bounds::with_call_timeout(Duration::from_secs(2));
        assert_eq!(b.connect_timeout, Duration::from_secs(2));
        assert_eq!(b.read_timeout, Duration::from_secs(2));
        let e = b.timed_out("the Kubernetes API of cluster c");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(e.to_string().contains("within 2s"), "{e}");
        assert!(e.hint.unwrap().contains("--call-timeout"));
    }
}
