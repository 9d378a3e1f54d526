//! Embedders: text to L2-normalised vectors, behind one trait.
//!
//! Three kinds, from instant to accurate:
//! - [`EmbedderKind::Hashed`] ([`hashed`]): feature-hashed character n-grams and word n-grams.
//!   No model, no install; lexical similarity only.
//! - [`EmbedderKind::Static`] ([`static_vectors`]): WordLlama static token vectors, averaged
//!   (default model `wordllama-256`). Cheap and somewhat semantic.
//! - [`EmbedderKind::MiniLm`] ([`minilm`]): all-MiniLM-L6-v2, a 6-layer BERT run with candle
//!   (default model `minilm-l6-v2`). The semantic one, and the slowest.
//!
//! Every [`Embedder::embed`] returns one unit-length row per text (an empty or all-unknown text
//! gets the zero vector, the only exception), batches internally and uses all cores (rayon's
//! global pool; set `RAYON_NUM_THREADS` to limit it), so the cosine of two rows is their dot
//! product ([`dot`]).

pub mod hashed;
pub mod lora;
pub mod minilm;
pub mod static_vectors;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Result, bail};

use crate::registry;

pub use hashed::HashedEmbedder;
pub use minilm::MiniLmEmbedder;
pub use static_vectors::StaticEmbedder;

/// Something that turns texts into L2-normalised vectors of a fixed dimension.
pub trait Embedder: Send + Sync {
    /// A short name for logs and metadata, e.g. `minilm-l6-v2`.
    fn name(&self) -> &str;
    /// The length of every row [`Embedder::embed`] returns.
    fn dim(&self) -> usize;
    /// One L2-normalised row per text, in order. Batched internally; uses all cores.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// Which embedder to load; parses from and prints as `hashed`, `static`, `minilm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EmbedderKind {
    /// Hashed character and word n-grams, no model.
    Hashed,
    /// WordLlama static token vectors (`wordllama-256`).
    Static,
    /// all-MiniLM-L6-v2 (`minilm-l6-v2`).
    #[default]
    MiniLm,
}

impl EmbedderKind {
    /// All kinds, fastest first.
    pub const ALL: [EmbedderKind; 3] = [
        EmbedderKind::Hashed,
        EmbedderKind::Static,
        EmbedderKind::MiniLm,
    ];

    /// The default model this kind needs, if any.
    pub fn model_name(self) -> Option<&'static str> {
        match self {
            EmbedderKind::Hashed => None,
            EmbedderKind::Static => Some(static_vectors::MODEL_NAME),
            EmbedderKind::MiniLm => Some(minilm::MODEL_NAME),
        }
    }
}

impl fmt::Display for EmbedderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbedderKind::Hashed => "hashed",
            EmbedderKind::Static => "static",
            EmbedderKind::MiniLm => "minilm",
        })
    }
}

impl FromStr for EmbedderKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hashed" | "hash" => Ok(EmbedderKind::Hashed),
            "static" | "wordllama" | "wordllama-256" => Ok(EmbedderKind::Static),
            "minilm" | "minilm-l6-v2" | "all-minilm-l6-v2" => Ok(EmbedderKind::MiniLm),
            other => {
                bail!("unknown embedder `{other}`\nhint: choose one of: hashed, static, minilm")
            }
        }
    }
}

/// Loads an embedder of `kind`, installing its default model first if needed (unless
/// `offline`, in which case a missing model is an error with the command that installs it).
pub fn load_embedder(
    kind: EmbedderKind,
    offline: bool,
    progress: &dyn Fn(&str),
) -> Result<Box<dyn Embedder>> {
    load_embedder_in(&registry::models_dir(), kind, offline, progress)
}

/// [`load_embedder`] with an explicit models directory.
pub fn load_embedder_in(
    models_dir: &Path,
    kind: EmbedderKind,
    offline: bool,
    progress: &dyn Fn(&str),
) -> Result<Box<dyn Embedder>> {
    Ok(match kind {
        EmbedderKind::Hashed => Box::new(HashedEmbedder::default()),
        EmbedderKind::Static => {
            let dir =
                registry::ensure_in(models_dir, static_vectors::MODEL_NAME, offline, progress)?;
            Box::new(StaticEmbedder::load(&dir)?)
        }
        EmbedderKind::MiniLm => {
            let dir = registry::ensure_in(models_dir, minilm::MODEL_NAME, offline, progress)?;
            Box::new(MiniLmEmbedder::load(&dir)?)
        }
    })
}

/// Several embedders side by side: each text's rows joined and renormalised, so the cosine of
/// two joined rows is the mean of the parts' cosines. An ensemble of fine-tuned encoders
/// ([`lora`]) is one.
pub struct ConcatEmbedder {
    name: String,
    parts: Vec<Box<dyn Embedder>>,
}

impl ConcatEmbedder {
    /// `parts` under `name`; errors when there are none.
    pub fn new(name: impl Into<String>, parts: Vec<Box<dyn Embedder>>) -> Result<Self> {
        if parts.is_empty() {
            bail!("a joined embedder needs at least one part");
        }
        Ok(ConcatEmbedder {
            name: name.into(),
            parts,
        })
    }
}

impl Embedder for ConcatEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.parts.iter().map(|p| p.dim()).sum()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut rows: Vec<Vec<f32>> = vec![Vec::with_capacity(self.dim()); texts.len()];
        for part in &self.parts {
            for (row, piece) in rows.iter_mut().zip(part.embed(texts)?) {
                row.extend(piece);
            }
        }
        rows.iter_mut().for_each(|r| l2_normalize(r));
        Ok(rows)
    }
}

/// Dot product; the cosine for rows an [`Embedder`] returned.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length in place (leaves an all-zero vector alone).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_rows_are_unit_length_and_average_the_cosines() {
        let e = ConcatEmbedder::new(
            "two",
            vec![
                Box::new(HashedEmbedder::new(64)),
                Box::new(HashedEmbedder::new(128)),
            ],
        )
        .unwrap();
        assert_eq!(e.dim(), 192);
        let texts = ["my cat sleeps all day", "my cat sleeps all night"];
        let rows = e.embed(&texts).unwrap();
        assert!((dot(&rows[0], &rows[0]) - 1.0).abs() < 1e-5);
        let a = HashedEmbedder::new(64).embed(&texts).unwrap();
        let b = HashedEmbedder::new(128).embed(&texts).unwrap();
        let mean = (dot(&a[0], &a[1]) + dot(&b[0], &b[1])) / 2.0;
        assert!((dot(&rows[0], &rows[1]) - mean).abs() < 1e-5);
        assert!(ConcatEmbedder::new("none", Vec::new()).is_err());
    }

    #[test]
    fn kind_round_trips() {
        for k in EmbedderKind::ALL {
            assert_eq!(k.to_string().parse::<EmbedderKind>().unwrap(), k);
        }
        let e = "bert".parse::<EmbedderKind>().unwrap_err();
        assert!(format!("{e}").contains("hint:"));
    }

    #[test]
    fn normalize_handles_zero() {
        let mut z = vec![0.0f32; 4];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0; 4]);
        let mut v = vec![3.0f32, 4.0];
        l2_normalize(&mut v);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
    }
}
