//! Everything the user sees: progress on stderr, the human summary on stderr, the `--json`
//! summary (and data) on stdout. One place, so streams never mix.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::GlobalArgs;

/// What a command produced: a human summary, the same figures as JSON, and whether anything
/// was produced at all (exit code 1 when not).
pub struct Outcome {
    /// Short lines for people.
    pub human: Vec<String>,
    /// One machine-readable object.
    pub json: serde_json::Value,
    /// False when the command ran fine but produced nothing.
    pub produced: bool,
}

impl Outcome {
    /// An outcome that produced something.
    pub fn new(human: Vec<String>, json: serde_json::Value) -> Outcome {
        Outcome {
            human,
            json,
            produced: true,
        }
    }
}

/// Terminal output settings for one run.
pub struct Ui {
    json: bool,
    quiet: bool,
    pub offline: bool,
    started: Instant,
}

impl Ui {
    pub fn new(global: &GlobalArgs) -> Ui {
        Ui {
            json: global.json,
            quiet: global.quiet,
            offline: global.offline,
            started: Instant::now(),
        }
    }

    /// A line of progress narration on stderr ("fetching model X because …").
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A progress bar with rate and ETA; hidden when quiet or when stderr is not a terminal.
    pub fn bar(&self, len: Option<u64>, what: &str) -> ProgressBar {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if self.quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = if len.is_some() {
            "{prefix:>10} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta} {msg}"
        } else {
            "{prefix:>10} {spinner} {human_pos} {per_sec} {elapsed} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// Prints data on stdout (for `inspect`): data only, never logs.
    pub fn data_line(&self, line: &str) -> bool {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is a normal way to stop reading: report "stop", not an error.
        writeln!(out, "{line}").is_ok()
    }

    pub fn finish(&self, mut outcome: Outcome) -> ExitCode {
        let elapsed = self.started.elapsed().as_secs_f64();
        if let serde_json::Value::Object(map) = &mut outcome.json {
            map.insert(
                "seconds".into(),
                serde_json::json!((elapsed * 1000.0).round() / 1000.0),
            );
        }
        if !self.quiet {
            for line in &outcome.human {
                eprintln!("{line}");
            }
        }
        if self.json {
            println!("{}", outcome.json);
        }
        if outcome.produced {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    pub fn fail(&self, err: &anyhow::Error) -> ExitCode {
        eprintln!("error: {err:#}");
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "ok": false, "error": format!("{err:#}") })
            );
        }
        ExitCode::from(2)
    }
}
