//! The resume log of a `generate` run: every judged attempt, appended batch by batch.
//!
//! Why a log of its own rather than the LLM completion cache alone: the cache saves the model
//! calls, but a rerun would still redo every other step (parsing, duplicate checks, the
//! labeller) and, worse, the template backend and any uncached server have no cache at all. The
//! log holds the *decisions*: each attempt's final record (accepted or flagged) with what the
//! labeller detected and which repairs the parser made, so a rerun with the same settings
//! replays them as they were and generates only the remainder.
//!
//! Format: `checkpoint.jsonl` in a work directory beside the output (`.<name>.generate-work/`);
//! the first line is a header with the run's fingerprint, then one line per attempt. A batch is
//! appended with one `write_all` and `fsync`ed before the next batch starts, so `kill -9` loses at
//! most the batch in flight. A torn last line (the process died mid-write) is dropped on reading,
//! and the file is cut back to the last whole line before appending. A header whose fingerprint
//! differs (other settings, plan or taxonomy) means the log belongs to another run: it is
//! discarded and the run starts afresh. The work directory is removed once the dataset is in
//! place.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use aligndata_core::Record;

use super::Detected;

/// File name of the log inside the work directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.jsonl";

/// The work directory `generate` keeps beside `out` while it runs: `.<name>.generate-work`.
pub fn work_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.generate-work"))
}

#[derive(Serialize, Deserialize)]
struct Header {
    fingerprint: String,
}

/// One judged attempt as logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The final record (flags included).
    pub r: Record,
    /// What the labeller detected, for accepted inputs it checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Detected>,
    /// Parser repairs applied to this attempt's output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fx: Vec<String>,
}

/// What was found on opening.
pub struct Opened {
    /// The log, ready to append to.
    pub log: Checkpoint,
    /// Entries of the earlier run, in the order they were judged.
    pub entries: Vec<Entry>,
    /// A log was there but belonged to other settings and was discarded.
    pub discarded: bool,
}

/// The append side of the log.
pub struct Checkpoint {
    file: File,
    path: PathBuf,
}

impl Checkpoint {
    /// Opens the log in `dir` for a run with `fingerprint`: reads what an earlier run with the
    /// same fingerprint left, or starts a new log.
    pub fn open(dir: &Path, fingerprint: &str) -> Result<Opened> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the work directory {}", dir.display()))?;
        let path = dir.join(CHECKPOINT_FILE);
        let mut entries = Vec::new();
        let mut discarded = false;
        let mut good_len = 0u64;
        if path.exists() {
            let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let mut r = BufReader::new(f);
            let mut line = Vec::new();
            let mut first = true;
            loop {
                line.clear();
                let n = r
                    .read_until(b'\n', &mut line)
                    .with_context(|| format!("reading {}", path.display()))?;
                // A line without its newline is a torn write: it and anything after it go.
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                if first {
                    first = false;
                    match serde_json::from_slice::<Header>(&line) {
                        Ok(h) if h.fingerprint == fingerprint => {}
                        _ => {
                            discarded = true;
                            break;
                        }
                    }
                } else {
                    match serde_json::from_slice::<Entry>(&line) {
                        Ok(e) => entries.push(e),
                        // Whole but unreadable: nothing after it can be trusted either.
                        Err(_) => break,
                    }
                }
                good_len += n as u64;
            }
        }
        if discarded {
            entries.clear();
            good_len = 0;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Cut a torn tail (or a discarded log) before appending.
        file.set_len(good_len)
            .with_context(|| format!("truncating {}", path.display()))?;
        let mut log = Checkpoint { file, path };
        use std::io::Seek;
        log.file.seek(std::io::SeekFrom::End(0))?;
        if good_len == 0 {
            let mut line = serde_json::to_vec(&Header {
                fingerprint: fingerprint.to_string(),
            })?;
            line.push(b'\n');
            log.write_synced(&line)?;
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(Opened {
            log,
            entries,
            discarded,
        })
    }

    fn write_synced(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.file
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Appends one batch (one write) and syncs it.
    pub fn append(&mut self, batch: &[Entry]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in batch {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        self.write_synced(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aligndata_core::SourceKind;

    fn entry(t: &str) -> Entry {
        Entry {
            r: Record::new(SourceKind::Synthetic, t.to_string()),
            d: None,
            fx: vec!["quotes".into()],
        }
    }

    #[test]
    fn torn_tail_is_dropped_and_other_settings_discard() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = work_dir(&tmp.path().join("out"));
        assert!(dir.ends_with(".out.generate-work"));
        let mut o = Checkpoint::open(&dir, "a").expect("open");
        assert!(o.entries.is_empty() && !o.discarded);
        o.log.append(&[entry("one"), entry("two")]).expect("append");
        drop(o);
        // A torn write after the second entry.
        let path = dir.join(CHECKPOINT_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).expect("f");
        f.write_all(b"{\"r\":{\"id\":").expect("w");
        drop(f);
        let mut o = Checkpoint::open(&dir, "a").expect("reopen");
        assert_eq!(o.entries.len(), 2);
        assert_eq!(o.entries[1].r.text, "two");
        assert_eq!(o.entries[0].fx, vec!["quotes".to_string()]);
        o.log.append(&[entry("three")]).expect("append");
        drop(o);
        let o = Checkpoint::open(&dir, "a").expect("reopen");
        let texts: Vec<&str> = o.entries.iter().map(|e| e.r.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        drop(o);
        let o = Checkpoint::open(&dir, "b").expect("other settings");
        assert!(o.discarded && o.entries.is_empty());
        drop(o);
        let o = Checkpoint::open(&dir, "b").expect("again");
        assert!(!o.discarded && o.entries.is_empty());
    }
}
