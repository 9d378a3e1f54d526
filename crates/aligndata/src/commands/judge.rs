//! `aligndata judge`: flags → a rubric, resources and an optional LLM judge → the judge stage;
//! then the summary: mean scores per rubric item, pairs made, crisis protocol followed.

use anyhow::{Result, bail};
use serde_json::json;

use aligndata_stages::judge::{DEFAULT_RUBRIC, JudgeConfig, LlmJudge, Rubric, judge};

use crate::cli::{JudgeArgs, LlmBackend};
use crate::commands::ingest::dataset_format;
use crate::commands::respond::{load_llm, load_resources};
use crate::ui::{Outcome, Ui};

pub fn run(args: JudgeArgs, ui: &Ui) -> Result<Outcome> {
    let mut rubric = match &args.rubric {
        Some(p) => Rubric::load(p)?,
        None => Rubric::parse(DEFAULT_RUBRIC, "built-in rubric.yaml")?,
    };
    if let Some(m) = args.margin {
        if !(0.0..=1.0).contains(&m) {
            bail!("--margin must be in [0, 1], got {m}");
        }
        rubric.margin = m;
    }
    let resources = load_resources(args.resources.as_deref())?;
    let llm = if args.llm_judge {
        if args.model.is_none() {
            bail!(
                "--llm-judge needs --model (the served model's name)\nhint: a capable OpenAI-compatible server, e.g. vLLM"
            );
        }
        Some(load_llm(
            LlmBackend::Openai,
            args.model.as_deref(),
            &args.base_url,
            &args.api_key_env,
            args.no_cache,
            ui,
        )?)
    } else {
        None
    };
    let llm_judge = llm.as_ref().map(|l| LlmJudge {
        llm: l.as_ref(),
        max_tokens: 400,
    });
    let config = JudgeConfig {
        format: dataset_format(args.out.format),
        echo: json!({ "rubric": args.rubric, "llm_judge": args.llm_judge, "model": args.model }),
        ..JudgeConfig::default()
    };
    let total = aligndata_dataset::Dataset::open(&args.dataset)
        .map(|d| d.manifest.counts.total)
        .unwrap_or(0);
    let bar = ui.bar(Some(total.max(1)), "judge");
    let summary = judge(
        &args.dataset,
        &args.out.out,
        &rubric,
        &resources,
        llm_judge.as_ref(),
        &config,
        &|n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let s = summary?;
    let mut human = vec![format!(
        "judge: {} records → {}; {} judged ({} responses, rubric {}), {} preference pairs (margin ≥ {})",
        s.records,
        s.out.display(),
        s.judged,
        s.responses,
        s.rubric,
        s.pairs,
        rubric.margin
    )];
    human.push(format!(
        "  mean judge.total of chosen responses: {:.3}",
        s.mean_chosen_total
    ));
    for (item, mean) in &s.mean_by_item {
        human.push(format!("  {item:>22}: {mean:.3}"));
    }
    if s.crisis > 0 {
        human.push(format!(
            "  crisis inputs: {} judged, chosen response follows the safety protocol in {}",
            s.crisis, s.crisis_protocol_followed
        ));
    }
    if s.llm_failures > 0 {
        human.push(format!(
            "  LLM judge failures: {} (heuristic totals kept)",
            s.llm_failures
        ));
    }
    let produced = s.judged > 0;
    let mut outcome = Outcome::new(
        human,
        json!({ "ok": true, "judge": s, "llm": llm.as_ref().map(|l| l.stats()) }),
    );
    outcome.produced = produced;
    Ok(outcome)
}
