//! Progress bars for long commands (`dump`, `load`, `bench`), after indicatif's and
//! hyperfine's conventions: on stderr only, so stdout keeps nothing but data; drawn only
//! when stderr is a terminal, `TERM` is not `dumb` and `--quiet` was not given. The bars use
//! no colour, so `NO_COLOR` has nothing to turn off.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Whether a progress bar would be seen by anyone.
pub fn wanted(quiet: bool) -> bool {
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    !quiet && !dumb && std::io::stderr().is_terminal()
}

/// What a bar counts.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Operations or entries: `12,345/1,000,000 98765 ops/s`.
    Items(&'static str),
    /// Bytes of input: `12.00 MiB/1.00 GiB 80.00 MiB/s`.
    Bytes,
}

/// A bar towards `total`, or a spinner when the total is unknown; hidden unless `show`.
pub fn bar(show: bool, name: &str, total: Option<u64>, unit: Unit) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(style(total.is_some(), unit).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_message(name.to_string());
    bar
}

/// The template of UX.md: name, elapsed time, bar, count, rate and ETA.
fn style(known_total: bool, unit: Unit) -> Result<ProgressStyle, indicatif::style::TemplateError> {
    let (count, total, rate, noun) = match unit {
        Unit::Items(noun) => ("{human_pos}", "/{human_len}", "{items_per_sec}", noun),
        Unit::Bytes => (
            "{binary_bytes}",
            "/{binary_total_bytes}",
            "{binary_bytes_per_sec}",
            "",
        ),
    };
    let head = "{spinner} {msg:<12} [{elapsed_precise}]";
    let template = if known_total {
        format!("{head} {{wide_bar}} {count}{total} {rate} ETA {{eta}}")
    } else {
        format!("{head} {count} {rate}")
    };
    Ok(ProgressStyle::with_template(&template)?
        // indicatif's {per_sec} prints four decimals; whole items read better.
        .with_key(
            "items_per_sec",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} {noun}/s", state.per_sec());
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for unit in [Unit::Items("entries"), Unit::Bytes] {
            for known_total in [true, false] {
                assert!(style(known_total, unit).is_ok());
            }
        }
    }
}
