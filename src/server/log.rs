//! The server's log on stderr: one line per event, `<time> <LEVEL> <message>`, filtered by the
//! level in env `LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR; INFO when unset), as the seed did.
//! [`start`](super::start) turns it on: a request line per request at INFO, failures at
//! WARNING and ERROR. A program embedding the server gets these lines on its own stderr; it
//! sets `LOG_LEVEL` (say to ERROR) before `start` to have fewer. `lsmdb serve` writes its own
//! start and stop lines through [`log`] too, so that they come out in order with the rest.
//!
//! Lines go into one buffer shared by every thread, each stamped with the time under the
//! buffer's lock, so they come out in time order. Once the server has started, lines below
//! WARNING wait there until a thread writes them out every 50 ms, or until 16 KiB have
//! gathered: a `write` per request line cost about a fifth of the GET throughput. A line at
//! WARNING or above writes out the buffer at once, and [`flush_buffered`] writes out what
//! waits. (Each worker once kept a buffer of its own, and their lines came out of order.)

use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }

    /// Parses a `LOG_LEVEL` value, case-insensitively; `WARN` is taken for `WARNING`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARNING" | "WARN" => Some(Level::Warning),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }
}

static THRESHOLD: OnceLock<Level> = OnceLock::new();

const BUFFER_BYTES: usize = 16 * 1024;

/// Lines not written yet.
static BUFFER: Mutex<String> = Mutex::new(String::new());

/// Whether lines may wait in the buffer: a thread writes them out regularly.
static FLUSHED_REGULARLY: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Where this thread formats a message before taking the buffer's lock.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Reads `LOG_LEVEL`, the first time only; an unknown value is reported and INFO used, so a
/// typo never stops the server from starting. `start` calls it; call it sooner to hear of a
/// bad value sooner.
pub fn init() {
    let mut unknown = None;
    THRESHOLD.get_or_init(|| {
        let raw = std::env::var("LOG_LEVEL").ok();
        match raw.as_deref().map_or(Some(Level::Info), Level::parse) {
            Some(level) => level,
            None => {
                unknown = raw;
                Level::Info
            }
        }
    });
    if let Some(raw) = unknown {
        log(
            Level::Warning,
            format_args!(
                "unknown LOG_LEVEL {raw:?} (expected DEBUG, INFO, WARNING or ERROR); using INFO"
            ),
        );
    }
}

/// Sends the library's own lines (`log` records of target `lsmdb`: a background compaction
/// out of space and its recovery, writes stopped) into this log, by installing it as the
/// process's `log` logger, unless one is installed already. For a program whose stderr is
/// the server's log, as `lsmdb serve`'s is; `start` leaves the program's logger alone.
pub fn forward_library_log() {
    if ::log::set_logger(&LIBRARY).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Debug);
    }
}

/// Forwards the library's `log` records (target `lsmdb`) to this log, in its format.
struct LibraryLog;

static LIBRARY: LibraryLog = LibraryLog;

impl LibraryLog {
    fn level(level: ::log::Level) -> Level {
        match level {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warning,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug | ::log::Level::Trace => Level::Debug,
        }
    }
}

impl ::log::Log for LibraryLog {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        metadata.target().starts_with("lsmdb") && enabled(Self::level(metadata.level()))
    }

    fn log(&self, record: &::log::Record<'_>) {
        if self.enabled(record.metadata()) {
            log(Self::level(record.level()), *record.args());
        }
    }

    fn flush(&self) {}
}

/// Whether lines at `level` are written (before [`init`], those at INFO and above).
pub fn enabled(level: Level) -> bool {
    level >= *THRESHOLD.get().unwrap_or(&Level::Info)
}

/// Starts the thread that writes the buffered lines out every 50 ms (once per process);
/// from then on lines below WARNING wait for it. Without it, every line is written at once.
pub(super) fn start_flusher() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let flusher = std::thread::Builder::new()
            .name("lsmdb-log".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(50));
                    flush_buffered();
                }
            });
        FLUSHED_REGULARLY.store(flusher.is_ok(), Ordering::Release);
    });
}

fn buffer() -> MutexGuard<'static, String> {
    BUFFER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the lines waiting in the buffer, if any.
pub fn flush_buffered() {
    let mut buf = buffer();
    if !buf.is_empty() {
        write_out(&mut buf);
    }
}

/// Logs one line. A failed write to stderr is ignored: logging never fails a request.
pub fn log(level: Level, message: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.clear();
        // Writing to a String cannot fail.
        let _ = scratch.write_fmt(message);
        let mut buf = buffer();
        let _ = writeln!(
            buf,
            "{} {} {}",
            Timestamp(SystemTime::now()),
            level.name(),
            scratch
        );
        let waits = FLUSHED_REGULARLY.load(Ordering::Acquire);
        if level >= Level::Warning || !waits || buf.len() >= BUFFER_BYTES {
            write_out(&mut buf);
        }
    });
}

/// One `write_all`, under the buffer's lock, so lines never interleave or change order.
fn write_out(buf: &mut String) {
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
    buf.clear();
}

macro_rules! info { ($($t:tt)*) => { $crate::server::log::log($crate::server::log::Level::Info, format_args!($($t)*)) } }
macro_rules! warning { ($($t:tt)*) => { $crate::server::log::log($crate::server::log::Level::Warning, format_args!($($t)*)) } }
macro_rules! error { ($($t:tt)*) => { $crate::server::log::log($crate::server::log::Level::Error, format_args!($($t)*)) } }
pub(crate) use {error, info, warning};

/// Text a client chose (a request's URL), kept to one log line: backslash, tab, newline,
/// carriage return and other control characters escaped.
pub(super) struct OneLine<'a>(pub &'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\t' => f.write_str("\\t")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// RFC 3339 UTC time with milliseconds, e.g. `2026-01-31T23:59:59.123Z`.
/// An RFC 3339 UTC timestamp with milliseconds, formatted where it is written.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(
            Timestamp(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_000 + 86_399_123);
        assert_eq!(Timestamp(t).to_string(), "2000-02-29T23:59:59.123Z");
    }

    #[test]
    fn client_text_stays_on_one_line() {
        let shown = OneLine("/keys?key=a\tb\nc\\d\u{0}ü").to_string();
        assert_eq!(shown, "/keys?key=a\\tb\\nc\\\\d\\u{0}ü");
    }

    #[test]
    fn levels_parse_like_the_seed() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("WARNING"), Some(Level::Warning));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Error > Level::Info);
    }
}
