//! Models for aligndata, offline first.
//!
//! - [`registry`]: the default models, fetched from registry packages and verified by sha256.
//! - [`embed`]: embedders behind one trait: hashed n-grams, static token vectors, MiniLM.
//! - [`llm`]: language models behind one trait: in-process GGUF, OpenAI-compatible servers, and a
//!   content-addressed completion cache in front of either.

pub mod embed;
pub mod llm;
pub mod registry;
