//! `aligndata respond` then `aligndata judge` through the binary, on a tiny ingested dataset,
//! with the real default model (SmolLM2-135M).

use crate::util::TestContext;

fn records(ctx: &TestContext, dir: &str) -> Vec<serde_json::Value> {
    let run = ctx.run(&["inspect", dir, "-n", "0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("record json"))
        .collect()
}

#[test]
fn respond_then_judge_on_an_ingested_dataset() {
    let ctx = TestContext::new();
    let input = ctx.write(
        "in.jsonl",
        concat!(
            r#"{"text": "I froze during my team presentation and now I feel like a total fraud at work."}"#,
            "\n",
            r#"{"text": "This deadline is killing me, I have three reports due and no time to do them well."}"#,
            "\n",
            r#"{"text": "I've been giving my things away. Everyone would be better off without me."}"#,
            "\n",
        )
        .as_bytes(),
    );
    let input = input.display().to_string();
    let run = ctx.run(&["ingest", &input, "--out", "ds", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let args = [
        "respond",
        "ds",
        "--n",
        "2",
        "--max-tokens",
        "40",
        "--locale",
        "US",
        "--out",
        "resp",
        "--json",
    ];
    let run = ctx.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["respond"]["records"], 3);
    assert_eq!(j["respond"]["crisis"], 1);
    assert_eq!(j["respond"]["model_candidates"], 4);
    // The manifest says which crisis classifier decided, with its three thresholds.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.path("resp/manifest.json")).expect("manifest"))
            .expect("manifest json");
    let safety = &manifest["config"]["respond"]["echo"]["safety_classifier"];
    assert_eq!(safety["embedder"], "minilm-l6-v2+crisis-lora", "{manifest}");
    for t in ["threshold", "weak_threshold", "strong_threshold"] {
        assert!(safety[t].as_f64().is_some(), "{t} missing: {safety}");
    }

    let recs = records(&ctx, "resp");
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let responses = r["responses"].as_array().expect("responses");
        assert_eq!(responses.len(), 2, "{r}");
        assert!(
            responses
                .iter()
                .all(|x| !x["text"].as_str().unwrap_or("").trim().is_empty())
        );
        let crisis = r["labels"].as_array().is_some_and(|ls| {
            ls.iter()
                .any(|l| l["value"] == "crisis" && l["method"] == "safety")
        });
        let is_crisis_input = r["text"]
            .as_str()
            .unwrap_or("")
            .contains("better off without me");
        assert_eq!(
            crisis, is_crisis_input,
            "only the crisis input is labelled crisis (the look-alike is not): {r}"
        );
        if is_crisis_input {
            for x in responses {
                assert_eq!(x["strategy"], "safety.crisis");
                assert!(x["text"].as_str().unwrap_or("").contains("988"), "{x}");
            }
            let score = r["scores"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "safety.crisis"))
                .expect("score");
            assert!(
                score["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("indirect.giving_away"),
                "{score}"
            );
        }
    }

    // A rerun repeats no finished request: every model candidate comes from the cache.
    let run = ctx.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["llm"]["cache_hits"], 4, "{}", run.stdout);

    let run = ctx.run(&["judge", "resp", "--out", "judged", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["judge"]["judged"], 3);
    assert_eq!(j["judge"]["crisis"], 1);
    assert_eq!(j["judge"]["crisis_protocol_followed"], 1);
    for r in records(&ctx, "judged") {
        let chosen = r["scores"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "judge.chosen"))
            .expect("chosen");
        assert!(
            chosen["value"]
                .as_f64()
                .is_some_and(|v| v == 0.0 || v == 1.0)
        );
        for x in r["responses"].as_array().expect("responses") {
            let total = x["scores"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "judge.total"))
                .expect("total");
            assert!(
                total["value"]
                    .as_f64()
                    .is_some_and(|v| (0.0..=1.0).contains(&v))
            );
            assert!(!total["reason"].as_str().unwrap_or("").is_empty());
        }
    }

    let bad = ctx.run(&["judge", "resp", "--rubric", "nope.yaml", "--out", "j2"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("nope.yaml"), "{}", bad.stderr);
}
