//! `report html`: one self-contained page. Styles are inline, figures are inline SVG, overlays
//! are PNG data URIs; the page loads nothing and runs no script, so it opens the same from a
//! cluster's scratch folder, an e-mail or an archive years later.
//!
//! Every figure is followed by a table of the numbers it draws, for readers who need the values
//! (and for screen readers); `report json` carries the same numbers.

use super::number_format::{metric, optional_metric, percent, seconds, weights};
use super::plots::{Line, LinePlot, Marker, Point, YScale};
use super::run_context::RunContext;
use crate::compare::format::{ClassConcepts, ClassRound, Compare, Concepts, Faithfulness, Intervals, Role, Saliency, Series};
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};

/// Every PNG file starts with these bytes; anything else is not embedded as one.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// The page may load nothing and run nothing: a browser then refuses, and says so in its console,
/// whatever a future change or an unescaped name might try.
pub const CONTENT_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

/// Characters of a cache key shown in the table; the full key is in the cell's title.
const KEY_SHOWN: usize = 12;

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1140px; margin: 0 auto; padding: 24px 28px 64px; background: #fff; }
h1 { font-size: 1.8em; margin: 0.2em 0; }
h2 { border-bottom: 2px solid #e3e3e3; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-top: 1.5em; }
nav a { margin-right: 1.2em; }
.meta { color: #555; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ol.concepts { margin: 0; padding-left: 1.3em; }
.weight { color: #555; font-variant-numeric: tabular-nums; }
.against { color: #555; font-size: 0.9em; margin-top: 4px; }
mark.changed { background: #ffd36b; padding: 0 2px; border-radius: 2px; }
img.overlay { width: 112px; height: auto; image-rendering: pixelated; display: block; }
.missing { color: #a33; font-size: 0.9em; }
p.smoke { background: #fff3cd; border: 1px solid #e0c36b; padding: 8px 12px; }
code.key { font-size: 0.9em; }
pre.source { background: #f5f5f5; padding: 12px; overflow-x: auto; font-size: 0.88em; border: 1px solid #e3e3e3; }
details { margin: 0.6em 0; }
"#;

/// The whole page. `overlay` returns the bytes of an explainer node's overlay file, or `None`
/// when it cannot be read; a missing overlay leaves a note in its cell, not a broken image.
pub fn render_html(compare: &Compare, context: &RunContext, overlay: &dyn Fn(&str, &str) -> Option<Vec<u8>>) -> String {
    let heading = escape(context.heading());
    let mut body = String::new();
    body += &format!("<h1>{heading}</h1>\n");
    if let Some(n) = context.smoke {
        body += &format!(
            "<p class=\"smoke\"><strong>Smoke run</strong>: every training, embedding and explainer loop stopped after {n} batch{}. The numbers below check that the experiment runs; they are not its results.</p>\n",
            if n == 1 { "" } else { "es" }
        );
    }
    body += &format!(
        "<p class=\"meta\">Experiment <strong>{}</strong> · comparison <strong>{}</strong> · source <code>{}</code> · device {}</p>\n",
        escape(&context.experiment),
        escape(&compare.stage),
        escape(&context.source_name),
        escape(context.device.as_deref().unwrap_or("none (every node came from the cache)")),
    );
    body += &navigation(compare);
    // Every figure spans every round, so that their x axes line up down the page.
    let axis_shares: Vec<f64> = compare.weights_of_rounds().into_values().collect();
    body += &accuracy_section(compare, &axis_shares);
    if let Some(concepts) = &compare.concepts {
        body += &concepts_section(concepts, compare.reference_round, &axis_shares);
    }
    if let Some(saliency) = &compare.saliency {
        body += &saliency_section(saliency, compare, overlay, &axis_shares);
    }
    if let Some(faithfulness) = &compare.faithfulness {
        body += &faithfulness_section(faithfulness, &axis_shares);
    }
    body += &run_section(context);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_POLICY}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{heading}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )
}

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn navigation(compare: &Compare) -> String {
    let mut links = vec![("accuracy", "Accuracy")];
    if compare.concepts.is_some() {
        links.push(("concepts", "Concepts"));
    }
    if compare.saliency.is_some() {
        links.push(("saliency", "Saliency"));
    }
    if compare.faithfulness.is_some() {
        links.push(("faithfulness", "Faithfulness"));
    }
    links.push(("run", "Run"));
    let anchors: Vec<String> = links.iter().map(|(id, name)| format!("<a href=\"#{id}\">{name}</a>")).collect();
    format!("<nav>{}</nav>\n", anchors.join(""))
}

fn round_heading(round: u32, share: Option<f64>) -> String {
    match share {
        Some(share) => format!("round {round} · {}", weights(share)),
        None => format!("round {round}"),
    }
}

fn figure(plot: &LinePlot, caption: &str) -> String {
    if !plot.has_points() {
        return String::new();
    }
    match plot.to_svg() {
        Ok(svg) => {
            let labelled = svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(&plot.title)), 1);
            format!("<figure>\n{labelled}\n<figcaption>{}</figcaption>\n</figure>\n", escape(caption))
        }
        Err(message) => format!("<p class=\"missing\">figure not drawn: {}</p>\n", escape(&message)),
    }
}

/// A table whose first two columns are the round and its weights remaining; `cells` are already HTML.
fn rounds_table(columns: &[&str], rows: impl IntoIterator<Item = (u32, f64, Vec<String>)>) -> String {
    let mut html = String::from("<table>\n<tr><th>round</th><th>weights remaining</th>");
    for column in columns {
        html += &format!("<th>{}</th>", escape(column));
    }
    html += "</tr>\n";
    for (round, share, cells) in rows {
        html += &format!("<tr><td class=\"number\">{round}</td><td class=\"number\">{}</td>", weights(share));
        for cell in cells {
            html += &format!("<td class=\"number\">{cell}</td>");
        }
        html += "</tr>\n";
    }
    html + "</table>\n"
}

fn series_label(series: &Series, concept_model: bool) -> String {
    let what = match (concept_model, series.method.as_str()) {
        (true, _) => "PCBM".to_string(),
        (false, "imp") => "IMP".to_string(),
        (false, "random") => "random pruning".to_string(),
        (false, other) => other.to_string(),
    };
    let role = if series.role == Role::Baseline { ", baseline" } else { "" };
    format!("{} ({what}{role})", series.name)
}

fn accuracy_section(compare: &Compare, axis_shares: &[f64]) -> String {
    let mut html = String::from("<section id=\"accuracy\">\n<h2>Accuracy against weights remaining</h2>\n");
    let all: Vec<(&Series, bool)> = compare.networks.iter().map(|s| (s, false)).chain(compare.pcbms.iter().map(|s| (s, true))).collect();
    let lines = all
        .iter()
        .enumerate()
        .map(|(colour, &(series, concept_model))| {
            let baseline = series.role == Role::Baseline;
            let marker = match (concept_model, baseline) {
                (false, false) => Marker::Circle,
                (false, true) => Marker::Triangle,
                (true, false) => Marker::Square,
                (true, true) => Marker::Cross,
            };
            Line {
                label: series_label(series, concept_model),
                colour,
                dashed: baseline,
                marker,
                points: series
                    .rounds
                    .iter()
                    .map(|p| Point { weights_remaining: p.weights_remaining, value: p.accuracy, interval: p.interval })
                    .collect(),
            }
        })
        .collect();
    let plot = LinePlot {
        axis_shares: axis_shares.to_vec(),
        title: "Test accuracy of the networks and their PCBMs".into(),
        y_label: "test accuracy".into(),
        y_scale: YScale::Percent,
        lines,
    };
    html += &figure(&plot, "Solid lines: the pruned networks and PCBMs studied; dashed: baselines (random pruning, random concepts). Bars: 95% interval over seeds.");

    if !compare.rounds.is_empty() {
        html += &format!("<h3>At the compared rounds ({})</h3>\n", compare.at.iter().map(|&a| weights(a)).collect::<Vec<_>>().join(", "));
        // A binary task (HAM10000: 16% malignant) also gets the scores accuracy alone would hide.
        let binary = compare.rounds.iter().any(|row| row.auroc.is_some() || row.pcbm_auroc.is_some());
        let mut columns = vec!["network accuracy", "PCBM accuracy"];
        if binary {
            columns.extend(["network balanced accuracy", "PCBM balanced accuracy", "network AUROC", "PCBM AUROC"]);
        }
        html += &rounds_table(
            &columns,
            compare.rounds.iter().map(|row| {
                let mut cells = vec![optional_percent(row.accuracy), optional_percent(row.pcbm_accuracy)];
                if binary {
                    cells.extend([
                        optional_percent(row.balanced_accuracy),
                        optional_percent(row.pcbm_balanced_accuracy),
                        optional_metric(row.auroc),
                        optional_metric(row.pcbm_auroc),
                    ]);
                }
                (row.round, row.weights_remaining, cells)
            }),
        );
    }

    if !all.is_empty() {
        // One row per round any series has, one column per series.
        let mut by_round: BTreeMap<u32, (f64, Vec<String>)> = BTreeMap::new();
        for (column, (series, _)) in all.iter().enumerate() {
            for point in &series.rounds {
                let row = by_round.entry(point.round).or_insert_with(|| (point.weights_remaining, vec!["–".to_string(); all.len()]));
                row.1[column] = match point.interval {
                    Some([low, high]) => format!("{} [{}, {}]", percent(point.accuracy), percent(low), percent(high)),
                    None => percent(point.accuracy),
                };
            }
        }
        let columns: Vec<String> = all.iter().map(|&(s, pcbm)| series_label(s, pcbm)).collect();
        let column_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        html += "<details open>\n<summary>Every round of every series (accuracy, 95% interval)</summary>\n";
        html += &rounds_table(&column_refs, by_round.into_iter().map(|(round, (share, cells))| (round, share, cells)));
        html += "</details>\n";
    }
    html + "</section>\n"
}

fn optional_percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), percent)
}

/// A line of one metric over rows of a table: (weights remaining, value); undefined values are
/// skipped. The metric's name finds its 95% interval over seeds, drawn as error bars.
fn metric_line<T: Intervals>(
    label: &str,
    colour: usize,
    marker: Marker,
    dashed: bool,
    rows: &[T],
    metric: &str,
    value: impl Fn(&T) -> (f64, Option<f64>),
) -> Line {
    let points = rows
        .iter()
        .filter_map(|row| {
            let (share, value) = value(row);
            value.map(|value| Point { weights_remaining: share, value, interval: row.interval(metric) })
        })
        .collect();
    Line { label: label.into(), colour, dashed, marker, points }
}

fn concepts_section(concepts: &Concepts, reference_round: u32, axis_shares: &[f64]) -> String {
    let scale = if concepts.scale.is_empty() { "PCBM weight".to_owned() } else { concepts.scale.clone() };
    let mut html = format!(
        "<section id=\"concepts\">\n<h2>Concepts of <code>{}</code></h2>\n<p>The top {} concepts of each class by importance, and the strongest negative ones; <mark class=\"changed\">marked</mark> concepts are not among the class's top {} at round {reference_round} (the reference). Importance is the {}. A concept is listed only when its importance is non-zero and at least {} of the row's largest |importance|, so a list may be shorter than {}; concepts tied exactly at the last place are all listed.</p>\n",
        escape(&concepts.stage),
        concepts.top,
        concepts.top,
        escape(&scale),
        percent(concepts.listed_share),
        concepts.top,
    );
    html += &fits_table(concepts);
    for class in &concepts.classes {
        html += &class_table(class, reference_round);
    }

    let rows = &concepts.consistency;
    if !rows.is_empty() {
        html += &format!("<h3>Consistency with round {reference_round}</h3>\n");
        let plot = LinePlot {
            axis_shares: axis_shares.to_vec(),
            title: format!("Concept consistency with round {reference_round}"),
            y_label: "similarity".into(),
            y_scale: YScale::Plain { min: -1.0, max: 1.0 },
            lines: vec![
                metric_line(&format!("top-{} Jaccard", concepts.top), 0, Marker::Circle, false, rows, "jaccard", |r| {
                    (r.weights_remaining, r.jaccard)
                }),
                metric_line("Kendall τ-b", 1, Marker::Square, false, rows, "kendall_tau", |r| (r.weights_remaining, r.kendall_tau)),
                metric_line("cosine", 2, Marker::Triangle, false, rows, "cosine", |r| (r.weights_remaining, r.cosine)),
            ],
        };
        html += &figure(&plot, "Per class against the reference round's weights, averaged over classes.");
        html += &rounds_table(
            &["Jaccard", "Kendall τ-b", "cosine"],
            rows.iter().map(|r| {
                (r.round, r.weights_remaining, vec![optional_metric(r.jaccard), optional_metric(r.kendall_tau), optional_metric(r.cosine)])
            }),
        );
    }

    if let Some(fidelity) = &concepts.fidelity {
        let random = concepts.random_fidelity.as_deref().unwrap_or(&[]);
        html += "<h3>Against the true concepts</h3>\n";
        let mut lines = vec![
            metric_line("recall@k", 0, Marker::Circle, false, fidelity, "recall_at_k", |r| (r.weights_remaining, r.recall_at_k)),
            metric_line("classes fully recovered", 1, Marker::Square, false, fidelity, "fully_recovered", |r| {
                (r.weights_remaining, r.fully_recovered)
            }),
            metric_line("ranking AUC", 2, Marker::Triangle, false, fidelity, "ranking_auc", |r| (r.weights_remaining, r.ranking_auc)),
        ];
        if !random.is_empty() {
            lines.extend([
                metric_line("recall@k, random concepts", 0, Marker::Circle, true, random, "recall_at_k", |r| {
                    (r.weights_remaining, r.recall_at_k)
                }),
                metric_line("fully recovered, random concepts", 1, Marker::Square, true, random, "fully_recovered", |r| {
                    (r.weights_remaining, r.fully_recovered)
                }),
                metric_line("ranking AUC, random concepts", 2, Marker::Triangle, true, random, "ranking_auc", |r| {
                    (r.weights_remaining, r.ranking_auc)
                }),
            ]);
        }
        let plot = LinePlot {
            axis_shares: axis_shares.to_vec(),
            title: "Concept fidelity to the classes' defining values".into(),
            y_label: "score".into(),
            y_scale: YScale::Plain { min: 0.0, max: 1.0 },
            lines,
        };
        html += &figure(&plot, "Concepts ranked by contrast weight within their group; dashed: the PCBM on random concepts.");
        let random_by_round: BTreeMap<u32, _> = random.iter().map(|r| (r.round, r)).collect();
        let ceiling = concepts.ceiling_fidelity.as_deref().unwrap_or(&[]);
        let ceiling_by_round: BTreeMap<u32, _> = ceiling.iter().map(|r| (r.round, r)).collect();
        let mut columns = vec!["recall@k", "fully recovered", "ranking AUC", "AUC at chance"];
        if !ceiling.is_empty() {
            columns.extend(["recall@k (true concepts)", "ranking AUC (true concepts)"]);
        }
        if !random.is_empty() {
            columns.extend(["recall@k (random)", "fully recovered (random)", "ranking AUC (random)"]);
        }
        html += &rounds_table(
            &columns,
            fidelity.iter().map(|r| {
                let mut cells = vec![
                    optional_metric(r.recall_at_k),
                    optional_metric(r.fully_recovered),
                    optional_metric(r.ranking_auc),
                    r.chance_auc.map_or_else(|| "–".to_owned(), |[low, high]| format!("{}–{}", metric(low), metric(high))),
                ];
                if !ceiling.is_empty() {
                    let best = ceiling_by_round.get(&r.round);
                    cells.extend([optional_metric(best.and_then(|o| o.recall_at_k)), optional_metric(best.and_then(|o| o.ranking_auc))]);
                }
                if !random.is_empty() {
                    let other = random_by_round.get(&r.round);
                    cells.extend([
                        optional_metric(other.and_then(|o| o.recall_at_k)),
                        optional_metric(other.and_then(|o| o.fully_recovered)),
                        optional_metric(other.and_then(|o| o.ranking_auc)),
                    ]);
                }
                (r.round, r.weights_remaining, cells)
            }),
        );
        html += "<p>AUC at chance: the middle 95% of ranking AUC when the same PCBMs' concept columns are relabelled at random (1,000 draws). True concepts: the same PCBM fitted on the dataset's concept labels, the ceiling.</p>\n";
        // Random rounds the real table has no row for would otherwise go unshown.
        let unmatched: Vec<_> = random.iter().filter(|r| !fidelity.iter().any(|f| f.round == r.round)).collect();
        if !unmatched.is_empty() {
            html += "<p>Random concepts only:</p>\n";
            html += &rounds_table(
                &["recall@k", "fully recovered", "ranking AUC"],
                unmatched.iter().map(|r| {
                    (
                        r.round,
                        r.weights_remaining,
                        vec![optional_metric(r.recall_at_k), optional_metric(r.fully_recovered), optional_metric(r.ranking_auc)],
                    )
                }),
            );
        }
    }
    html + "</section>\n"
}

/// How each round's PCBM fit ended; a fit stopped by its budget short of the optimality
/// tolerance is marked, since its weights and lists may still change.
fn fits_table(concepts: &Concepts) -> String {
    if concepts.fits.is_empty() {
        return String::new();
    }
    let stopped = concepts.fits.iter().any(|f| !f.converged);
    let mut html = if stopped {
        "<p class=\"missing\"><mark class=\"changed\">Some PCBM fits stopped short of the optimality tolerance</mark> (marked below): their weights and lists may change with a larger budget (`epochs`).</p>\n".to_owned()
    } else {
        "<p>Every PCBM fit converged to the optimality tolerance.</p>\n".to_owned()
    };
    html += "<table class=\"fits\">\n<tr><th>round</th><th>exact zeros</th><th>fit</th></tr>\n";
    for fit in &concepts.fits {
        let status = if fit.converged { "converged".to_owned() } else { "<mark class=\"changed\">not converged</mark>".to_owned() };
        html += &format!(
            "<tr><td class=\"number\">{}</td><td class=\"number\">{} of {}</td><td>{status}</td></tr>\n",
            fit.round, fit.zeros, fit.weights
        );
    }
    html + "</table>\n"
}

/// One class: a column per round, its top concepts in each, changes against the reference marked.
fn class_table(class: &ClassConcepts, reference_round: u32) -> String {
    let mut rounds: Vec<&ClassRound> = class.rounds.iter().collect();
    rounds.sort_by_key(|r| r.round);
    let reference = rounds.iter().find(|r| r.round == reference_round);
    let reference_names = |list: fn(&ClassRound) -> &Vec<(String, f64)>| -> Option<BTreeSet<&str>> {
        reference.map(|r| list(r).iter().map(|(name, _)| name.as_str()).collect())
    };
    let positive_reference = reference_names(|r| &r.positive);
    let negative_reference = reference_names(|r| &r.negative);

    let mut html = format!("<h3>Class <q>{}</q></h3>\n", escape(&class.class));
    if reference.is_none() {
        html += &format!("<p class=\"missing\">round {reference_round} is missing for this class, so nothing is marked.</p>\n");
    }
    html += "<table class=\"concepts\">\n<tr>";
    for round in &rounds {
        html += &format!("<th>{}</th>", round_heading(round.round, Some(round.weights_remaining)));
    }
    html += "</tr>\n<tr>";
    for round in &rounds {
        html += "<td>";
        html += &concept_list(&round.positive, positive_reference.as_ref(), reference_round);
        if !round.negative.is_empty() {
            html += "<div class=\"against\">against:";
            html += &concept_list(&round.negative, negative_reference.as_ref(), reference_round);
            html += "</div>";
        }
        html += "</td>";
    }
    html + "</tr>\n</table>\n"
}

fn concept_list(concepts: &[(String, f64)], reference: Option<&BTreeSet<&str>>, reference_round: u32) -> String {
    let mut html = String::from("<ol class=\"concepts\">");
    // Lists hold at most `top` concepts, more only through exact ties, which are all shown.
    for (name, weight) in concepts {
        let shown = escape(name);
        let changed = reference.is_some_and(|names| !names.contains(name.as_str()));
        let label =
            if changed { format!("<mark class=\"changed\" title=\"not in round {reference_round}'s list\">{shown}</mark>") } else { shown };
        html += &format!("<li>{label} <span class=\"weight\">{}</span></li>", metric(*weight));
    }
    html + "</ol>"
}

fn saliency_section(
    saliency: &Saliency,
    compare: &Compare,
    overlay: &dyn Fn(&str, &str) -> Option<Vec<u8>>,
    axis_shares: &[f64],
) -> String {
    let reference_round = compare.reference_round;
    let shares = compare.weights_of_rounds();
    let mut html =
        format!("<section id=\"saliency\">\n<h2>Saliency: <code>{}</code> ({})</h2>\n", escape(&saliency.stage), escape(&saliency.method));

    if !saliency.images.is_empty() {
        let rounds: BTreeSet<u32> = saliency.images.iter().flat_map(|i| &i.overlays).map(|o| o.round).collect();
        html += "<table class=\"grid\">\n<tr><th>image</th>";
        for &round in &rounds {
            html += &format!("<th>{}</th>", round_heading(round, shares.get(&round).copied()));
        }
        html += "</tr>\n";
        for image in &saliency.images {
            html += &format!("<tr><th>#{} <br>{}</th>", image.index, escape(&image.label));
            for &round in &rounds {
                html += "<td>";
                html += &match image.overlays.iter().find(|o| o.round == round) {
                    None => "<span class=\"missing\">–</span>".to_string(),
                    Some(o) => match overlay(&o.node, &o.file).as_deref().map(png_data_uri) {
                        Some(Some(uri)) => format!(
                            "<img class=\"overlay\" src=\"{uri}\" alt=\"{} overlay of image {} ({}) at round {round}\">",
                            escape(&saliency.method),
                            image.index,
                            escape(&image.label)
                        ),
                        Some(None) => format!("<span class=\"missing\">{} is not a PNG</span>", escape(&o.file)),
                        None => format!("<span class=\"missing\">overlay missing: {} of {}</span>", escape(&o.file), escape(&o.node)),
                    },
                };
                html += "</td>";
            }
            html += "</tr>\n";
        }
        html += "</table>\n";
    }

    let rows = &saliency.consistency;
    if !rows.is_empty() {
        html += &format!("<h3>Consistency with round {reference_round}</h3>\n");
        let plot = LinePlot {
            axis_shares: axis_shares.to_vec(),
            title: format!("Saliency consistency with round {reference_round}"),
            y_label: "similarity".into(),
            y_scale: YScale::Plain { min: -1.0, max: 1.0 },
            lines: vec![
                metric_line("Spearman", 0, Marker::Circle, false, rows, "spearman", |r| (r.weights_remaining, r.spearman)),
                metric_line("SSIM", 1, Marker::Square, false, rows, "ssim", |r| (r.weights_remaining, r.ssim)),
                metric_line("top-pixel IoU", 2, Marker::Triangle, false, rows, "top_iou", |r| (r.weights_remaining, r.top_iou)),
            ],
        };
        html += &figure(&plot, "Each image's map against its map at the reference round, averaged over images.");
        html += &rounds_table(
            &["Spearman", "SSIM", "top-pixel IoU"],
            rows.iter().map(|r| {
                (r.round, r.weights_remaining, vec![optional_metric(r.spearman), optional_metric(r.ssim), optional_metric(r.top_iou)])
            }),
        );
    }

    if let Some(rows) = &saliency.localisation {
        html += "<h3>Against the object masks</h3>\n";
        let plot = LinePlot {
            axis_shares: axis_shares.to_vec(),
            title: "Localisation of the maps".into(),
            y_label: "share".into(),
            y_scale: YScale::Plain { min: 0.0, max: 1.0 },
            lines: vec![
                metric_line("mass inside the object", 0, Marker::Circle, false, rows, "mass_inside", |r| {
                    (r.weights_remaining, r.mass_inside)
                }),
                metric_line("uniform map (baseline)", 6, Marker::Cross, true, rows, "uniform", |r| (r.weights_remaining, r.uniform)),
                metric_line("resolution ceiling", 4, Marker::Cross, true, rows, "ceiling", |r| (r.weights_remaining, r.ceiling)),
                metric_line("pointing game", 1, Marker::Square, false, rows, "pointing", |r| (r.weights_remaining, r.pointing)),
                metric_line("rank accuracy", 2, Marker::Triangle, false, rows, "rank_accuracy", |r| (r.weights_remaining, r.rank_accuracy)),
            ],
        };
        html += &figure(&plot, "Mass inside the object beside a uniform map and the best any map at the layer's resolution can do.");
        html += &rounds_table(
            &["mass inside", "uniform", "ceiling", "pointing", "rank accuracy"],
            rows.iter().map(|r| {
                (
                    r.round,
                    r.weights_remaining,
                    [r.mass_inside, r.uniform, r.ceiling, r.pointing, r.rank_accuracy].into_iter().map(optional_metric).collect(),
                )
            }),
        );
    }
    html + "</section>\n"
}

fn png_data_uri(bytes: &[u8]) -> Option<String> {
    bytes.starts_with(&PNG_SIGNATURE).then(|| format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

fn faithfulness_section(rows: &[Faithfulness], axis_shares: &[f64]) -> String {
    let mut html = String::from("<section id=\"faithfulness\">\n<h2>Faithfulness of the maps</h2>\n");
    let plot = LinePlot {
        axis_shares: axis_shares.to_vec(),
        title: "Deletion and insertion".into(),
        y_label: "area under the curve".into(),
        y_scale: YScale::Plain { min: 0.0, max: 1.0 },
        lines: vec![
            metric_line("insertion AUC (higher is better)", 0, Marker::Circle, false, rows, "insertion_auc", |r| {
                (r.weights_remaining, r.insertion_auc)
            }),
            metric_line("deletion AUC (lower is better)", 1, Marker::Square, false, rows, "deletion_auc", |r| {
                (r.weights_remaining, r.deletion_auc)
            }),
        ],
    };
    html += &figure(&plot, "Class score as the most salient pixels are removed (deletion) or revealed (insertion).");
    html += &rounds_table(
        &["deletion AUC", "insertion AUC"],
        rows.iter().map(|r| (r.round, r.weights_remaining, vec![optional_metric(r.deletion_auc), optional_metric(r.insertion_auc)])),
    );
    html + "</section>\n"
}

fn run_section(context: &RunContext) -> String {
    let mut html = String::from("<section id=\"run\">\n<h2>The run</h2>\n");
    html += &format!(
        "<p>Device: {}. Time over the nodes run this time: {}.</p>\n",
        escape(context.device.as_deref().unwrap_or("none")),
        seconds(context.total_seconds())
    );
    for skipped in &context.skipped_images {
        const LISTED: usize = 10;
        let mut files: Vec<String> = skipped.files.iter().take(LISTED).map(|f| format!("<code>{}</code>", escape(f))).collect();
        if skipped.count > files.len() {
            files.push(format!("and {} more (all in its metrics)", skipped.count - files.len()));
        }
        html += &format!(
            "<p class=\"missing\">Dataset <code>{}</code> left out {} unreadable image{} (<code>skip_corrupt = true</code>): {}.</p>\n",
            escape(&skipped.dataset),
            skipped.count,
            if skipped.count == 1 { "" } else { "s" },
            files.join(", ")
        );
    }
    for warning in &context.warnings {
        html += &format!("<p class=\"missing\">Warning from <code>{}</code>: {}</p>\n", escape(&warning.node), escape(&warning.message));
    }
    html += "<table>\n<tr><th>node</th><th>stage</th><th>kind</th><th>method</th><th>cache key</th><th>time</th></tr>\n";
    for node in &context.nodes {
        let shown: String = node.key.chars().take(KEY_SHOWN).collect();
        let ellipsis = if node.key.chars().count() > KEY_SHOWN { "…" } else { "" };
        html += &format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code class=\"key\" title=\"{}\">{}{ellipsis}</code></td><td class=\"number\">{}</td></tr>\n",
            escape(&node.id),
            escape(&node.stage),
            escape(&node.kind),
            escape(&node.method),
            escape(&node.key),
            escape(&shown),
            node.seconds.map_or_else(|| "–".to_string(), seconds),
        );
    }
    html += "</table>\n";
    html += &format!(
        "<h3>Source: <code>{}</code></h3>\n<pre class=\"source\"><code>{}</code></pre>\n",
        escape(&context.source_name),
        escape(&context.source_text)
    );
    html + "</section>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::example;
    use crate::report::json::render_json;

    /// An 8×8 PNG whose colour depends on the node and file, so every overlay differs.
    fn png(node: &str, file: &str) -> Vec<u8> {
        let shade = (node.len() * 31 + file.len() * 17) as u8;
        let image = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([shade, (x * 30) as u8, (y * 30) as u8]));
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        bytes
    }

    fn every_overlay(node: &str, file: &str) -> Option<Vec<u8>> {
        Some(png(node, file))
    }

    fn example_page() -> String {
        render_html(&example::compare(), &example::context(), &every_overlay)
    }

    fn data_uris(page: &str) -> Vec<&str> {
        page.match_indices("data:image/png;base64,")
            .map(|(at, prefix)| {
                let rest = &page[at + prefix.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    #[test]
    fn shows_the_numbers_of_every_part() {
        let page = example_page();
        for shown in [
            "<td class=\"number\">97.4%</td>",         // tickets at round 0, in the table at the compared rounds
            "97.1% [95.8%, 98.4%]",                    // 0.971 ± 0.013
            "<td class=\"number\">61.2%</td>",         // the random-concept PCBM, dense
            "<td class=\"number\">21.6%</td>",         // 0.6³ remaining
            "red <span class=\"weight\">1.234</span>", // a concept weight
            "blue <span class=\"weight\">-0.733</span>",
            "<td class=\"number\">0.912</td>",  // Kendall τ at round 1
            "<td class=\"number\">0.553</td>",  // ranking AUC on random concepts, round 0
            "<td class=\"number\">0.402</td>",  // top-pixel IoU at round 4
            "<td class=\"number\">0.196</td>",  // uniform-map baseline
            "<td class=\"number\">0.298</td>",  // deletion AUC at round 4
            "<td class=\"number\">39.5 s</td>", // tickets[1]
            "round 2 · 36%",
        ] {
            assert!(page.contains(shown), "missing {shown}");
        }
        // Six figures: accuracy, concept consistency, fidelity, saliency consistency, localisation, faithfulness.
        assert_eq!(page.matches("<svg ").count(), 6);
        assert!(page.contains("<svg role=\"img\" aria-label=\"Test accuracy of the networks and their PCBMs\""));
    }

    #[test]
    fn marks_exactly_the_concepts_missing_from_the_reference_round() {
        let page = example_page();
        let marked: Vec<&str> = page
            .match_indices("<mark class=\"changed\" title=")
            .map(|(at, _)| {
                let rest = &page[at..];
                let start = rest.find('>').unwrap() + 1;
                &rest[start..start + rest[start..].find('<').unwrap()]
            })
            .collect();
        // Red large: `noise` enters at round 1 and `striped` at round 2 among the positive, `yellow`
        // among the negative at round 1; blue small striped: `circle` at round 2. Reordering
        // (blue and small swap at round 2) is not a change.
        assert_eq!(marked, ["noise", "yellow", "striped", "circle"]);
    }

    #[test]
    fn without_the_reference_round_nothing_is_marked_and_the_page_says_why() {
        let mut compare = example::compare();
        compare.reference_round = 7;
        let page = render_html(&compare, &example::context(), &every_overlay);
        assert_eq!(page.matches("<mark class=\"changed\" title=").count(), 0);
        assert_eq!(page.matches("round 7 is missing for this class").count(), 2);
    }

    #[test]
    fn every_overlay_is_embedded_as_a_png_that_decodes() {
        let page = example_page();
        let uris = data_uris(&page);
        assert_eq!(uris.len(), 6, "two images by three rounds");
        for uri in uris {
            let bytes = base64::engine::general_purpose::STANDARD.decode(uri).unwrap();
            let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
            assert_eq!((image.width(), image.height()), (8, 8));
        }
        // Each cell holds its own node's file: the first row's round 1 is cam[1]'s overlays/12.png.
        let expected = base64::engine::general_purpose::STANDARD.encode(png("cam[1]", "overlays/12.png"));
        assert_eq!(data_uris(&page)[1], expected);
    }

    #[test]
    fn a_missing_or_foreign_overlay_leaves_a_note_not_a_broken_image() {
        let overlay = |node: &str, file: &str| match (node, file) {
            ("cam[2]", "overlays/40.png") => None,
            ("cam[1]", "overlays/40.png") => Some(b"GIF89a not a png".to_vec()),
            _ => Some(png(node, file)),
        };
        let page = render_html(&example::compare(), &example::context(), &overlay);
        assert_eq!(data_uris(&page).len(), 4);
        assert!(page.contains("overlay missing: overlays/40.png of cam[2]"));
        assert!(page.contains("overlays/40.png is not a PNG"));
    }

    #[test]
    fn text_from_the_experiment_is_escaped() {
        let page = example_page();
        assert!(page.contains("<title>&lt;Tickets&gt; &amp; &quot;drift&quot;</title>"));
        assert!(page.contains("<h1>&lt;Tickets&gt; &amp; &quot;drift&quot;</h1>"));
        assert!(page.contains("&lt;/pre&gt;&lt;script&gt;console.error(&quot;the source was not escaped&quot;)&lt;/script&gt;"));
        assert!(page.contains("blue &lt;small&gt; striped"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("<Tickets>") && !page.contains("<small>") && !page.contains("<b>"));
        // The source closes its <pre> only once, at its end.
        assert_eq!(page.matches("</pre>").count(), 1);
    }

    #[test]
    fn loads_nothing_from_anywhere() {
        let page = example_page();
        // Any scheme at all (http, https, file, ftp…), with what stands before and after it.
        let urls: Vec<&str> = page
            .match_indices("://")
            .map(|(at, _)| {
                let start = page[..at].rfind(|c: char| c == '"' || c.is_whitespace()).map_or(0, |q| q + 1);
                let end = at + page[at..].find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(page.len() - at);
                &page[start..end]
            })
            .collect();
        assert!(urls.iter().all(|u| *u == "http://www.w3.org/2000/svg"), "{urls:?}");
        assert_eq!(urls.len(), 6, "one namespace per figure");
        assert!(page.match_indices("xmlns=\"http://www.w3.org/2000/svg\"").count() == 6);
        // Every src is a data URI and every link an anchor in the page.
        assert_eq!(page.matches("src=\"").count(), page.matches("src=\"data:image/png;base64,").count());
        assert_eq!(page.matches("href=\"").count(), page.matches("href=\"#").count());
        assert!(!page.contains("url(") && !page.contains("@import"));
    }

    #[test]
    fn keys_are_shortened_with_the_whole_key_in_the_title() {
        let context = example::context();
        let page = render_html(&example::compare(), &context, &every_overlay);
        let key = &context.nodes.iter().find(|n| n.id == "dense").unwrap().key;
        assert_eq!(key.len(), 64);
        assert!(page.contains(&format!("<code class=\"key\" title=\"{key}\">{}…</code>", &key[..12])));
        // The compare node was not timed this run.
        assert!(page.contains("<td><code>lth</code></td><td>lth</td><td>compare</td><td>compare</td>"));
        let lth_row = page.lines().find(|l| l.starts_with("<tr><td><code>lth</code>")).unwrap();
        assert!(lth_row.ends_with("<td class=\"number\">–</td></tr>"), "{lth_row}");
    }

    #[test]
    fn only_the_parts_a_comparison_has_are_shown() {
        let mut compare = example::compare();
        compare.concepts = None;
        compare.saliency = None;
        compare.faithfulness = None;
        let page = render_html(&compare, &example::context(), &every_overlay);
        assert_eq!(page.matches("<svg ").count(), 1);
        assert!(page.contains("id=\"accuracy\"") && page.contains("id=\"run\""));
        for absent in ["id=\"concepts\"", "id=\"saliency\"", "id=\"faithfulness\"", "href=\"#concepts\"", "<img"] {
            assert!(!page.contains(absent), "{absent}");
        }
    }

    #[test]
    fn a_binary_task_adds_balanced_accuracy_and_auroc_to_the_compared_rounds() {
        let plain = example_page();
        assert!(!plain.contains("AUROC") && !plain.contains("balanced accuracy"), "a multi-class task shows accuracy only");
        let mut compare = example::compare();
        for row in &mut compare.rounds {
            row.balanced_accuracy = Some(0.6875);
            row.auroc = Some(0.8125);
        }
        let page = render_html(&compare, &example::context(), &every_overlay);
        for shown in [
            "<th>network balanced accuracy</th>",
            "<th>PCBM AUROC</th>",
            "<td class=\"number\">68.8%</td>",
            "<td class=\"number\">0.812</td>",
        ] {
            assert!(page.contains(shown), "missing {shown}");
        }
    }

    /// A number as shown: its value, how many decimals, and whether it is a percentage.
    fn shown_numbers(text: &str) -> Vec<(f64, i32, bool)> {
        let chars: Vec<char> = text.chars().collect();
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
        let mut numbers = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let negative = chars[i] == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            let starts = (chars[i].is_ascii_digit() || negative) && (i == 0 || !word(chars[i - 1]));
            if !starts {
                i += 1;
                continue;
            }
            let mut end = i + usize::from(negative);
            while end < chars.len()
                && (chars[end].is_ascii_digit() || (chars[end] == '.' && chars.get(end + 1).is_some_and(char::is_ascii_digit)))
            {
                end += 1;
            }
            let token: String = chars[i..end].iter().collect();
            if end < chars.len() && word(chars[end]) {
                // Part of a name (`a3f`, `12ab…`): not a number.
                i = end;
                continue;
            }
            let decimals = token.split_once('.').map_or(0, |(_, d)| d.len() as i32);
            numbers.push((token.parse().unwrap(), decimals, chars.get(end) == Some(&'%')));
            i = end;
        }
        numbers
    }

    fn json_numbers(value: &serde_json::Value, into: &mut Vec<f64>) {
        match value {
            serde_json::Value::Number(n) => into.push(n.as_f64().unwrap()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| json_numbers(v, into)),
            serde_json::Value::Object(map) => map.values().for_each(|v| json_numbers(v, into)),
            _ => {}
        }
    }

    /// The text of every table cell, paragraph and heading: what the page states as data. Figure
    /// captions and the source are left out: they describe, or are the experiment's own text.
    fn stated_texts(page: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for tag in ["td", "th", "p", "h1", "h2", "h3"] {
            let close = format!("</{tag}>");
            for (at, _) in page.match_indices(&format!("<{tag}")) {
                let rest = &page[at..];
                if !rest[tag.len() + 1..].starts_with(['>', ' ']) {
                    continue;
                }
                let inner = &rest[rest.find('>').unwrap() + 1..rest.find(&close).unwrap()];
                let mut text = String::new();
                let mut in_tag = false;
                for c in inner.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => {
                            in_tag = false;
                            text.push(' ');
                        }
                        _ if !in_tag => text.push(c),
                        _ => {}
                    }
                }
                texts.push(
                    text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'"),
                );
            }
        }
        texts
    }

    #[test]
    fn every_number_the_page_states_is_in_the_json() {
        let (compare, context) = (example::compare(), example::context());
        let page = render_html(&compare, &context, &every_overlay);
        let mut known = Vec::new();
        json_numbers(&render_json(&compare, &context), &mut known);
        let cells = stated_texts(&page);
        assert!(cells.len() > 200, "{} cells", cells.len());
        assert!(cells.iter().any(|c| c.contains("216.6 s")), "the total time is among the texts checked");
        let mut checked = 0;
        for cell in &cells {
            for (value, decimals, is_percent) in shown_numbers(cell) {
                let tolerance = 0.5 * 10f64.powi(-decimals) + 1e-9;
                let scale = if is_percent { 100.0 } else { 1.0 };
                assert!(known.iter().any(|v| (v * scale - value).abs() <= tolerance), "`{value}` (in `{cell}`) is not in report.json");
                checked += 1;
            }
        }
        assert!(checked > 280, "only {checked} numbers checked");
    }

    #[test]
    fn the_number_scanner_reads_what_the_tables_write() {
        assert_eq!(shown_numbers("97.1% [95.8%, 98.4%]"), [(97.1, 1, true), (95.8, 1, true), (98.4, 1, true)]);
        assert_eq!(shown_numbers("round 2 · 36% -0.733 39.5 s"), [(2.0, 0, false), (36.0, 0, true), (-0.733, 3, false), (39.5, 1, false)]);
        assert_eq!(shown_numbers("a3f9 12ab… cam[4] τ-b"), [(4.0, 0, false)]);
    }
}
