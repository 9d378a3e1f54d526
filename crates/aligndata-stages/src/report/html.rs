//! The report page: one HTML string with inline CSS, a few lines of inline JS (source tabs) and
//! SVG drawn here in Rust, so the page needs no network, no library and no build step, and
//! renders even with scripts off (every heatmap is drawn; the tabs only hide the others).

use std::fmt::Write;

use super::{Heatmap, ReportData};

const PALETTE: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(source: &str, sources: &[String]) -> &'static str {
    let i = sources.iter().position(|s| s == source).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.3}"))
}

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d9dde3;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px;color:#444}
.muted{color:#68717c}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;background:#fff;margin:6px 0}td,th{border:1px solid #e1e4e8;padding:4px 10px;text-align:right}
th{background:#f0f2f5}td:first-child,th:first-child{text-align:left}
.tabs button{border:1px solid #c8cdd3;background:#fff;padding:4px 12px;border-radius:14px;margin-right:6px;cursor:pointer}
.tabs button.on{background:#1f77b4;color:#fff;border-color:#1f77b4}
.hm{display:none}.hm.on{display:block}svg{background:#fff;border:1px solid #e1e4e8;border-radius:6px}
.grid{display:flex;flex-wrap:wrap;gap:14px}details{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:4px 0;padding:4px 10px}
summary{cursor:pointer}.ex{margin:4px 0 4px 8px;padding-left:8px;border-left:3px solid #ccc}
.big{font-size:30px;font-weight:600}
";

const JS: &str = "
(function(){
  var tabs=document.querySelectorAll('.tabs button');
  function show(src){
    document.querySelectorAll('.hm').forEach(function(el){el.classList.toggle('on',el.getAttribute('data-source')===src);});
    tabs.forEach(function(b){b.classList.toggle('on',b.getAttribute('data-source')===src);});
  }
  tabs.forEach(function(b){b.addEventListener('click',function(){show(b.getAttribute('data-source'));});});
  show('all');
  document.body.setAttribute('data-ready','yes');
  document.body.setAttribute('data-render-ms',String(Math.round(performance.now())));
})();
";

/// Renders the whole page.
pub fn render(d: &ReportData) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let sources: Vec<String> = d.by_source.keys().cloned().collect();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{CSS}</style></head><body><main>",
        esc(&d.title)
    );
    let _ = write!(
        s,
        "<h1>{}</h1><div class=\"muted\">{} · embeddings: {}</div>",
        esc(&d.title),
        esc(&d.datasets.join(", ")),
        esc(&d.embedder)
    );
    s.push_str("<div class=\"cards\">");
    let _ = write!(
        s,
        "<div class=\"card\"><b id=\"n-records\">{}</b>records</div>",
        d.records
    );
    let _ = write!(
        s,
        "<div class=\"card\"><b>{}</b>kept (no flag)</div>",
        d.kept
    );
    for (src, n) in &d.by_source {
        let _ = write!(
            s,
            "<div class=\"card\"><b style=\"color:{}\">{n}</b>{}</div>",
            colour(src, &sources),
            esc(src)
        );
    }
    let _ = write!(
        s,
        "<div class=\"card\"><b>{}</b>synthetic-vs-real AUC</div>",
        fmt_opt(d.gap.auc)
    );
    s.push_str("</div>");

    // Counts by source and flag.
    s.push_str("<h2>Counts by source and flag</h2><table><tr><th>source</th><th>records</th>");
    for flag in d.by_flag.keys() {
        let _ = write!(s, "<th>{}</th>", esc(flag));
    }
    s.push_str("</tr>");
    for (src, n) in &d.by_source {
        let _ = write!(s, "<tr><td>{}</td><td>{n}</td>", esc(src));
        for flag in d.by_flag.keys() {
            let v = d
                .by_source_flag
                .get(src)
                .and_then(|m| m.get(flag))
                .copied()
                .unwrap_or(0);
            let _ = write!(s, "<td>{v}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");

    // Coverage.
    s.push_str("<h2>Coverage</h2>");
    if d.heatmaps.is_empty() {
        s.push_str("<p class=\"muted\">Fewer than two labelled dimensions: no heatmap.</p>");
    } else {
        s.push_str("<p class=\"muted\">Kept records per cell (top label, else the intended value; <code>?</code> = none). Empty cells are outlined in red.</p><div class=\"tabs\">");
        let mut tab_sources = vec!["all".to_string()];
        tab_sources.extend(sources.iter().cloned());
        for src in &tab_sources {
            let _ = write!(
                s,
                "<button type=\"button\" data-source=\"{0}\">{0}</button>",
                esc(src)
            );
        }
        s.push_str("</div>");
        for src in &tab_sources {
            let _ = write!(
                s,
                "<div class=\"hm\" data-source=\"{}\"><div class=\"grid\">",
                esc(src)
            );
            for h in &d.heatmaps {
                heatmap_svg(&mut s, h, src);
            }
            s.push_str("</div></div>");
        }
    }

    // Diversity.
    s.push_str("<h2>Diversity</h2><p class=\"muted\">On a deterministic sample per source. Higher distinct-n and lower mean cosine mean more varied text.</p>");
    s.push_str("<table><tr><th>source</th><th>kept</th><th>sample</th><th>distinct-1</th><th>distinct-2</th><th>mean pairwise cosine</th></tr>");
    for (src, v) in &d.diversity {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            esc(src),
            v.records,
            v.sample,
            v.distinct_1,
            v.distinct_2,
            fmt_opt(v.mean_pairwise_cosine)
        );
    }
    s.push_str("</table>");

    // Gap.
    s.push_str("<h2>Synthetic vs real</h2>");
    let _ = write!(
        s,
        "<p><span class=\"big\" id=\"gap-auc\">{}</span> <span class=\"muted\">AUC over {} synthetic and {} real records, {}-fold cross-validation.</span></p><p class=\"muted\">{}</p>",
        fmt_opt(d.gap.auc),
        d.gap.synthetic,
        d.gap.real,
        d.gap.folds,
        esc(&d.gap.note)
    );
    if !d.gap.per_cell.is_empty() {
        let row_h = 20;
        let h = d.gap.per_cell.len() * row_h + 30;
        let _ = write!(
            s,
            "<h3>Per {}</h3><svg width=\"620\" height=\"{h}\" role=\"img\">",
            esc(&d.gap.cell_dim)
        );
        for (i, (cell, auc, n)) in d.gap.per_cell.iter().enumerate() {
            let y = 10 + i * row_h;
            let w = (auc.clamp(0.0, 1.0) * 360.0) as usize;
            let fill = if *auc > 0.8 {
                "#d62728"
            } else if *auc > 0.65 {
                "#ff9f40"
            } else {
                "#2ca02c"
            };
            let _ = write!(
                s,
                "<text x=\"190\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text><rect x=\"200\" y=\"{y}\" width=\"{w}\" height=\"14\" fill=\"{fill}\"><title>{}: AUC {auc:.3} over {n} records</title></rect><text x=\"{}\" y=\"{}\" font-size=\"11\">{auc:.2}</text>",
                y + 11,
                esc(cell),
                esc(cell),
                205 + w,
                y + 11
            );
        }
        let _ = write!(
            s,
            "<line x1=\"380\" x2=\"380\" y1=\"5\" y2=\"{}\" stroke=\"#888\" stroke-dasharray=\"3,3\"/></svg>",
            h - 5
        );
    }

    // Judge.
    s.push_str("<h2>Judge scores</h2>");
    if d.judge.is_empty() {
        s.push_str("<p class=\"muted\">No judge scores in these datasets.</p>");
    } else {
        s.push_str("<div class=\"grid\">");
        for hist in &d.judge {
            let max = hist.bins.iter().copied().max().unwrap_or(1).max(1) as f64;
            let _ = write!(
                s,
                "<svg width=\"260\" height=\"150\" role=\"img\"><text x=\"8\" y=\"16\" font-size=\"12\" font-weight=\"600\">{}</text>",
                esc(&hist.name)
            );
            for (i, b) in hist.bins.iter().enumerate() {
                let bh = (*b as f64 / max * 90.0) as usize;
                let _ = write!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"{bh}\" fill=\"#1f77b4\"><title>{b}</title></rect>",
                    20 + i * 22,
                    120 - bh
                );
            }
            let _ = write!(
                s,
                "<text x=\"20\" y=\"138\" font-size=\"10\">{:.2}</text><text x=\"238\" y=\"138\" font-size=\"10\" text-anchor=\"end\">{:.2}</text><text x=\"250\" y=\"16\" font-size=\"10\" text-anchor=\"end\">n={} mean={:.2}</text></svg>",
                hist.min, hist.max, hist.count, hist.mean
            );
        }
        s.push_str("</div>");
    }

    // Map.
    s.push_str("<h2>Map of the inputs</h2>");
    let _ = write!(
        s,
        "<p class=\"muted\">{}; the axes explain {:.0}% and {:.0}% of the variance. {} points.</p>",
        esc(&d.map.method),
        d.map.explained[0] * 100.0,
        d.map.explained[1] * 100.0,
        d.map.points.len()
    );
    map_svg(&mut s, d, &sources);

    // Examples.
    s.push_str(
        "<h2>Examples per cell</h2><p class=\"muted\">The largest cells, a few records each.</p>",
    );
    for cell in &d.examples {
        let _ = write!(
            s,
            "<details><summary>{} <span class=\"muted\">({} records)</span></summary>",
            esc(&cell.cell),
            cell.records
        );
        for (src, text) in &cell.examples {
            let _ = write!(
                s,
                "<div class=\"ex\" style=\"border-color:{}\"><span class=\"muted\">{}</span> {}</div>",
                colour(src, &sources),
                esc(src),
                esc(text)
            );
        }
        s.push_str("</details>");
    }
    let _ = write!(s, "</main><script>{JS}</script></body></html>");
    s
}

fn heatmap_svg(s: &mut String, h: &Heatmap, source: &str) {
    let cell = 26usize;
    let left = 10
        + 7 * h
            .rows
            .iter()
            .map(|r| r.chars().count())
            .max()
            .unwrap_or(4)
            .min(28);
    let top = 10
        + 6 * h
            .cols
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(4)
            .min(28);
    // Column labels lean right: leave room for the last one.
    let width = left + cell * h.cols.len() + (top - 10) * 4 / 10 + 12;
    let height = top + cell * h.rows.len() + 24;
    let empty = vec![vec![0u64; h.cols.len()]; h.rows.len()];
    let counts = h.counts.get(source).unwrap_or(&empty);
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let _ = write!(
        s,
        "<svg width=\"{width}\" height=\"{height}\" role=\"img\" class=\"heatmap\">"
    );
    let _ = write!(
        s,
        "<text x=\"6\" y=\"{}\" font-size=\"11\" fill=\"#68717c\">{} × {} ({})</text>",
        height - 6,
        esc(&h.row_dim),
        esc(&h.col_dim),
        esc(source)
    );
    for (ci, c) in h.cols.iter().enumerate() {
        let x = left + ci * cell + cell / 2;
        let _ = write!(
            s,
            "<text transform=\"translate({x},{}) rotate(-55)\" font-size=\"11\">{}</text>",
            top - 4,
            esc(&truncate(c, 28))
        );
    }
    for (ri, r) in h.rows.iter().enumerate() {
        let y = top + ri * cell;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            left - 4,
            y + cell / 2 + 4,
            esc(&truncate(r, 28))
        );
        for (ci, c) in h.cols.iter().enumerate() {
            let n = counts
                .get(ri)
                .and_then(|row| row.get(ci))
                .copied()
                .unwrap_or(0);
            let t = (n as f64 / max).sqrt();
            let (fill, stroke) = if n == 0 {
                ("#fff".to_string(), "#e8a3a3")
            } else {
                let l = 95.0 - 60.0 * t;
                (format!("hsl(210,70%,{l:.0}%)"), "#fff")
            };
            let x = left + ci * cell;
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\"><title>{} × {}: {n}</title></rect>",
                cell - 1,
                cell - 1,
                esc(r),
                esc(c)
            );
            if n > 0 {
                let colour = if t > 0.6 { "#fff" } else { "#1d2329" };
                let _ = write!(
                    s,
                    "<text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\" fill=\"{colour}\" pointer-events=\"none\">{n}</text>",
                    x + cell / 2,
                    y + cell / 2 + 3
                );
            }
        }
    }
    s.push_str("</svg>");
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

fn map_svg(s: &mut String, d: &ReportData, sources: &[String]) {
    let (w, h, pad) = (720.0f64, 480.0f64, 24.0f64);
    let _ = write!(
        s,
        "<svg width=\"{w}\" height=\"{h}\" role=\"img\" id=\"map\">"
    );
    if d.map.points.is_empty() {
        s.push_str("<text x=\"20\" y=\"30\">No records to draw.</text></svg>");
        return;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
    );
    for (x, y, _) in &d.map.points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let sx = if x1 > x0 {
        (w - 2.0 * pad) / (x1 - x0) as f64
    } else {
        1.0
    };
    let sy = if y1 > y0 {
        (h - 2.0 * pad - 20.0) / (y1 - y0) as f64
    } else {
        1.0
    };
    for (x, y, src) in &d.map.points {
        let px = pad + (*x - x0) as f64 * sx;
        let py = h - pad - (*y - y0) as f64 * sy;
        let _ = write!(
            s,
            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.55\"/>",
            colour(src, sources)
        );
    }
    for (i, src) in sources.iter().enumerate() {
        let x = pad + i as f64 * 110.0;
        let _ = write!(
            s,
            "<circle cx=\"{x:.0}\" cy=\"14\" r=\"5\" fill=\"{}\"/><text x=\"{:.0}\" y=\"18\" font-size=\"12\">{}</text>",
            colour(src, sources),
            x + 9.0,
            esc(src)
        );
    }
    s.push_str("</svg>");
}
