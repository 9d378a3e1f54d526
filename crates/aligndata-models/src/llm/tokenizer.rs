//! A `tokenizers::Tokenizer` built from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Why: a GGUF carries its tokenizer, so a user needs only the one file, and nothing has to be
//! fetched from a model hub. We support the "gpt2" tokenizer model (byte-level BPE: SmolLM2,
//! Llama 3, Qwen2, ...): vocabulary from `tokens`, merges from `merges`, control tokens
//! (`token_type == 3`) and user-defined ones (4) registered as added tokens so that chat-template
//! markers such as `<|im_start|>` encode to their single ids. The pre-tokenizer follows
//! `tokenizer.ggml.pre` the way llama.cpp does for the common cases (SmolLM2 splits digits one
//! by one; Llama 3 and Qwen2 use their own split regexes).

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The tokenizer plus the special ids generation needs.
pub(crate) struct GgufTokenizer {
    pub tokenizer: Tokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Tokens that end generation: EOS, EOT and the control tokens that close a turn.
    pub end_of_generation: Vec<u32>,
    pub add_bos: bool,
    pub tokens: Vec<String>,
}

fn md<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a gguf_file::Value> {
    ct.metadata.get(key)
}

fn md_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    md(ct, key).and_then(|v| {
        v.to_u32()
            .ok()
            .or_else(|| v.to_i32().ok().map(|x| x as u32))
    })
}

impl GgufTokenizer {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let model = md(ct, "tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if model != "gpt2" {
            bail!(
                "GGUF tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\": \
                 SmolLM2, Llama 3, Qwen2); use an OpenAI-compatible server for this model"
            );
        }
        let tokens: Vec<String> = md(ct, "tokenizer.ggml.tokens")
            .context("GGUF has no tokenizer.ggml.tokens")?
            .to_vec()?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<_>>()?;
        let merges: Vec<(String, String)> = match md(ct, "tokenizer.ggml.merges") {
            Some(v) => v
                .to_vec()?
                .iter()
                .map(|m| {
                    let m = m.to_string()?;
                    let (a, b) = m
                        .split_once(' ')
                        .ok_or_else(|| candle_core::Error::Msg(format!("bad merge {m:?}")))?;
                    Ok((a.to_string(), b.to_string()))
                })
                .collect::<candle_core::Result<_>>()?,
            None => Vec::new(),
        };
        let types: Vec<i32> = match md(ct, "tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| anyhow!("building BPE from GGUF: {e}"))?;
        let mut tokenizer = Tokenizer::new(bpe);

        let pre = md(ct, "tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let byte_level = ByteLevel::new(false, false, true);
        let split = |pat: &str| -> Result<PreTokenizerWrapper> {
            let s = Split::new(
                SplitPattern::Regex(pat.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| anyhow!("split regex: {e}"))?;
            Ok(s.into())
        };
        let pre_tok: PreTokenizerWrapper = match pre.as_deref() {
            Some("smollm") | Some("starcoder") | Some("refact") => {
                Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            }
            Some("llama-bpe") | Some("llama3") | Some("smaug-bpe") => Sequence::new(vec![
                split(LLAMA3_PATTERN)?,
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
            Some("qwen2") | Some("deepseek-r1-qwen") => Sequence::new(vec![
                split(QWEN2_PATTERN)?,
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
            _ => byte_level.into(),
        };
        tokenizer.with_pre_tokenizer(Some(pre_tok));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

        let mut specials = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let ty = types.get(i).copied().unwrap_or(1);
            if ty == 3 || ty == 4 {
                specials.push(AddedToken::from(t.clone(), ty == 3).normalized(false));
            }
        }
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| anyhow!("adding special tokens: {e}"))?;

        let bos = md_u32(ct, "tokenizer.ggml.bos_token_id");
        let eos = md_u32(ct, "tokenizer.ggml.eos_token_id");
        let eot = md_u32(ct, "tokenizer.ggml.eot_token_id");
        let add_bos = md(ct, "tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let mut end_of_generation: Vec<u32> = [eos, eot].into_iter().flatten().collect();
        for (i, t) in tokens.iter().enumerate() {
            let control = types.get(i).copied() == Some(3);
            let ends_turn = matches!(
                t.as_str(),
                "<|im_end|>"
                    | "<|eot_id|>"
                    | "<|endoftext|>"
                    | "<|end_of_text|>"
                    | "<end_of_turn>"
                    | "<|end|>"
                    | "</s>"
            );
            if control && ends_turn && !end_of_generation.contains(&(i as u32)) {
                end_of_generation.push(i as u32);
            }
        }
        Ok(Self {
            tokenizer,
            bos,
            eos,
            end_of_generation,
            add_bos,
            tokens,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| anyhow!("detokenize: {e}"))
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|s| s.as_str())
    }
}
