//! `--shard I/N`: which part of a stage's input one job handles.
//!
//! A record belongs to shard `xxh3_64(id) mod N`: the same on every machine and every run, so
//! N jobs (a Kubernetes indexed job, a Slurm array) each take their part with no coordination,
//! and their outputs concatenated in shard order hold exactly the records of a single run.
//! Raw input rows (before a record and its id exist) belong by their file and line instead.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ShardSpec {
    /// This job's shard, `0 ≤ index < count`.
    pub index: u64,
    /// Shards in all.
    pub count: u64,
}

impl ShardSpec {
    /// True when the record with this id belongs to this shard.
    pub fn contains_id(&self, id: &str) -> bool {
        self.contains_hash(xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
    }

    /// True when raw row `line` of `file` (as given on the command line) belongs to this shard.
    pub fn contains_row(&self, file: &str, line: u64) -> bool {
        let mut key = Vec::with_capacity(file.len() + 9);
        key.extend_from_slice(file.as_bytes());
        key.push(0);
        key.extend_from_slice(&line.to_le_bytes());
        self.contains_hash(xxhash_rust::xxh3::xxh3_64(&key))
    }

    fn contains_hash(&self, hash: u64) -> bool {
        self.count <= 1 || hash % self.count == self.index
    }
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_every_id_exactly_once() {
        assert_eq!(
            "2/5".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 5 })
        );
        for bad in ["5/5", "1/0", "a/3", "3", "-1/3"] {
            let err = bad.parse::<ShardSpec>().unwrap_err();
            assert!(err.contains("I/N"), "{bad}: {err}");
        }
        let shards: Vec<ShardSpec> = (0..4).map(|i| ShardSpec { index: i, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for n in 0..4000 {
            let id = format!("r-{n}");
            let owners: Vec<usize> = (0..4).filter(|&s| shards[s].contains_id(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0]] += 1;
            let rows = (0..4)
                .filter(|&s| shards[s].contains_row("a.csv", n))
                .count();
            assert_eq!(rows, 1);
        }
        assert!(sizes.iter().all(|&s| s > 800), "{sizes:?}");
    }
}
