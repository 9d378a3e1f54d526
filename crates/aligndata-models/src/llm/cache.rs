//! A content-addressed, crash-safe completion cache in front of any [`Llm`].
//!
//! Key: sha256 of (format version, model id, the whole request including the seed), so a rerun
//! reuses every completion whose inputs are unchanged, and changing one parameter of some requests
//! recomputes only those.
//!
//! Store: **append-only JSONL segments** in the cache directory, one segment per writing process
//! (`<millis>-<pid>.jsonl`), one line per completion: `{"k": key, "c": completion}`.
//! Why a log rather than one file per entry written atomically (temp file + rename):
//! - each completion costs one `write(2)` of one line instead of create + write + fsync + rename +
//!   directory fsync, and a million entries are a few files instead of a million inodes that
//!   every run must list;
//! - crash safety is as good: an entry is written to the segment (`O_APPEND`, one `write_all`) the
//!   moment its completion arrives, *before* the caller hears about it, so `kill -9` loses only
//!   requests still in flight (written data lives in the kernel's page cache and survives the
//!   process). `fsync` is batched (at most every [`SYNC_INTERVAL`] and at the end of each batch),
//!   which bounds what a power loss can take to that interval;
//! - a torn last line (the process died mid-write) is skipped when reading, and a writer that
//!   finds a segment not ending in a newline never appends to it (it starts a new segment);
//! - separate segments per process let shards share a cache directory without locks.
//!
//! Reading builds an in-memory index key → (segment, offset, length) — 48 bytes or so per entry —
//! and reads an entry only when it is hit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Completion, CompletionRequest, Llm, Stats};

/// Longest time between fsyncs of the segment being written.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);

const KEY_VERSION: &str = "aligndata-llm-cache-v1";

/// The default cache directory: `$ALIGNDATA_HOME/cache/llm`, else the platform cache directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ALIGNDATA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join("cache").join("llm");
    }
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("aligndata")
        .join("llm")
}

/// The cache key of a request for a model: hex sha256.
pub fn cache_key(model_id: &str, req: &CompletionRequest) -> String {
    let mut h = Sha256::new();
    h.update(KEY_VERSION.as_bytes());
    h.update([0]);
    h.update(model_id.as_bytes());
    h.update([0]);
    // Serialising a struct with serde_json is deterministic (fixed field order, shortest floats).
    h.update(serde_json::to_vec(req).unwrap_or_default());
    hex::encode(h.finalize())
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    k: std::borrow::Cow<'a, str>,
    c: Completion,
}

#[derive(Deserialize)]
struct KeyOnly {
    k: String,
}

#[derive(Clone, Copy)]
struct Loc {
    seg: u32,
    offset: u64,
    len: u32,
}

struct Writer {
    file: File,
    seg: u32,
    offset: u64,
    last_sync: Instant,
    dirty: bool,
}

/// The on-disk store (usable without the wrapper, e.g. to inspect a cache).
pub struct CacheStore {
    dir: PathBuf,
    segments: Mutex<Vec<(PathBuf, Option<File>)>>,
    index: Mutex<HashMap<[u8; 32], Loc>>,
    writer: Mutex<Option<Writer>>,
}

fn key_bytes(key: &str) -> Option<[u8; 32]> {
    let v = hex::decode(key).ok()?;
    v.try_into().ok()
}

impl CacheStore {
    /// Opens (creating if needed) a cache directory and indexes every segment in it.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating cache dir {}", dir.display()))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing cache dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        names.sort();
        let mut index = HashMap::new();
        let mut segments = Vec::new();
        for path in names {
            let seg = segments.len() as u32;
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let mut r = BufReader::new(file);
            let mut offset = 0u64;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = r
                    .read_until(b'\n', &mut line)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                // A line without its newline is a torn write: skip it.
                if line.last() == Some(&b'\n')
                    && let Ok(e) = serde_json::from_slice::<KeyOnly>(&line)
                    && let Some(k) = key_bytes(&e.k)
                {
                    index.insert(
                        k,
                        Loc {
                            seg,
                            offset,
                            len: n as u32,
                        },
                    );
                }
                offset += n as u64;
            }
            segments.push((path, None));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            segments: Mutex::new(segments),
            index: Mutex::new(index),
            writer: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.index.lock().map(|i| i.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks a key up; a read error counts as a miss.
    pub fn get(&self, key: &str) -> Option<Completion> {
        let loc = *self.index.lock().ok()?.get(&key_bytes(key)?)?;
        let mut segs = self.segments.lock().ok()?;
        let (path, handle) = segs.get_mut(loc.seg as usize)?;
        if handle.is_none() {
            *handle = Some(File::open(&*path).ok()?);
        }
        let f = handle.as_mut()?;
        f.seek(SeekFrom::Start(loc.offset)).ok()?;
        let mut buf = vec![0u8; loc.len as usize];
        f.read_exact(&mut buf).ok()?;
        let e: Entry = serde_json::from_slice(&buf).ok()?;
        (e.k == key).then_some(e.c)
    }

    /// Appends an entry (one write) and indexes it; fsyncs at most every [`SYNC_INTERVAL`].
    pub fn put(&self, key: &str, c: &Completion) -> Result<()> {
        let kb = key_bytes(key).ok_or_else(|| anyhow!("bad cache key {key:?}"))?;
        let mut c = c.clone();
        c.cached = false;
        let mut line = serde_json::to_vec(&Entry { k: key.into(), c })?;
        line.push(b'\n');
        let mut w = self
            .writer
            .lock()
            .map_err(|_| anyhow!("cache writer poisoned"))?;
        if w.is_none() {
            *w = Some(self.new_segment()?);
        }
        let Some(wr) = w.as_mut() else {
            return Err(anyhow!("no cache writer"));
        };
        wr.file
            .write_all(&line)
            .context("appending to the LLM cache")?;
        let loc = Loc {
            seg: wr.seg,
            offset: wr.offset,
            len: line.len() as u32,
        };
        wr.offset += line.len() as u64;
        wr.dirty = true;
        if wr.last_sync.elapsed() >= SYNC_INTERVAL {
            wr.file.sync_data().context("syncing the LLM cache")?;
            wr.last_sync = Instant::now();
            wr.dirty = false;
        }
        drop(w);
        if let Ok(mut idx) = self.index.lock() {
            idx.insert(kb, loc);
        }
        Ok(())
    }

    /// Forces written entries to disk.
    pub fn sync(&self) -> Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| anyhow!("cache writer poisoned"))?;
        if let Some(wr) = w.as_mut()
            && wr.dirty
        {
            wr.file.sync_data().context("syncing the LLM cache")?;
            wr.dirty = false;
            wr.last_sync = Instant::now();
        }
        Ok(())
    }

    fn new_segment(&self) -> Result<Writer> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut segs = self
            .segments
            .lock()
            .map_err(|_| anyhow!("cache poisoned"))?;
        for attempt in 0..1000u32 {
            let path = self.dir.join(format!(
                "{millis:016}-{}-{attempt}.jsonl",
                std::process::id()
            ));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    // Make the new name durable before entries are acknowledged.
                    if let Ok(d) = File::open(&self.dir) {
                        let _ = d.sync_all();
                    }
                    let seg = segs.len() as u32;
                    segs.push((path, None));
                    return Ok(Writer {
                        file,
                        seg,
                        offset: 0,
                        last_sync: Instant::now(),
                        dirty: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(anyhow!(
            "could not create a cache segment in {}",
            self.dir.display()
        ))
    }
}

impl Drop for CacheStore {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// An [`Llm`] that answers from the cache when it can and stores every new completion the moment
/// it arrives. Errors are not cached. Identical requests in one batch are computed once.
pub struct CachedLlm<L: Llm> {
    inner: L,
    store: CacheStore,
    hits: AtomicU64,
    misses: AtomicU64,
    write_errors: AtomicU64,
}

impl<L: Llm> CachedLlm<L> {
    pub fn new(inner: L, dir: &Path) -> Result<Self> {
        Ok(Self {
            inner,
            store: CacheStore::open(dir)?,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        })
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn store(&self) -> &CacheStore {
        &self.store
    }

    /// Cache writes that failed (the completion was still returned).
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

impl<L: Llm> Llm for CachedLlm<L> {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn stats(&self) -> Stats {
        let mut s = self.inner.stats();
        s.cache_hits = self.hits.load(Ordering::Relaxed);
        s.cache_misses = self.misses.load(Ordering::Relaxed);
        s
    }

    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &Result<Completion>),
    ) -> Vec<Result<Completion>> {
        let model_id = self.inner.model_id().to_string();
        let mut results: Vec<Option<Result<Completion>>> =
            (0..requests.len()).map(|_| None).collect();
        let mut miss_reqs = Vec::new();
        let mut miss_keys = Vec::new();
        let mut miss_targets: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, req) in requests.iter().enumerate() {
            let key = cache_key(&model_id, req);
            if let Some(&m) = seen.get(&key) {
                miss_targets[m].push(i);
            } else if let Some(mut c) = self.store.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                c.cached = true;
                let r = Ok(c);
                on_result(i, &r);
                results[i] = Some(r);
            } else {
                self.misses.fetch_add(1, Ordering::Relaxed);
                seen.insert(key.clone(), miss_reqs.len());
                miss_reqs.push(req.clone());
                miss_keys.push(key);
                miss_targets.push(vec![i]);
            }
        }
        if !miss_reqs.is_empty() {
            let inner_results = self.inner.complete_each(&miss_reqs, &mut |m, r| {
                // Persist before anyone is told: an acknowledged completion is never recomputed.
                if let Ok(c) = r
                    && self.store.put(&miss_keys[m], c).is_err()
                {
                    self.write_errors.fetch_add(1, Ordering::Relaxed);
                }
                for &i in &miss_targets[m] {
                    match r {
                        Ok(c) => on_result(i, &Ok(c.clone())),
                        Err(e) => on_result(i, &Err(anyhow!("{e:#}"))),
                    }
                }
            });
            if self.store.sync().is_err() {
                self.write_errors.fetch_add(1, Ordering::Relaxed);
            }
            for (m, r) in inner_results.into_iter().enumerate() {
                let targets = &miss_targets[m];
                for &i in &targets[1..] {
                    results[i] = Some(match &r {
                        Ok(c) => Ok(c.clone()),
                        Err(e) => Err(anyhow!("{e:#}")),
                    });
                }
                results[targets[0]] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("internal: missing result"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{FinishReason, Usage};

    fn comp(t: &str) -> Completion {
        Completion {
            text: t.into(),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
            cached: false,
        }
    }

    #[test]
    fn store_roundtrip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = cache_key("m", &CompletionRequest::raw("a"));
        let k2 = cache_key("m", &CompletionRequest::raw("b"));
        assert_ne!(k1, k2);
        {
            let s = CacheStore::open(dir.path()).unwrap();
            s.put(&k1, &comp("one")).unwrap();
            s.put(&k2, &comp("two")).unwrap();
            assert_eq!(s.get(&k1).unwrap().text, "one");
        }
        // Simulate a write torn by a crash.
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"k\":\"abc").unwrap();
        let s = CacheStore::open(dir.path()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&k2).unwrap().text, "two");
        let k3 = cache_key("m", &CompletionRequest::raw("c"));
        s.put(&k3, &comp("three")).unwrap();
        drop(s);
        let s = CacheStore::open(dir.path()).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(&k3).unwrap().text, "three");
    }
}
