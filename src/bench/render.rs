//! The human-readable report of `orchestr8 bench` (`--json` prints the `Report` itself).

use super::Report;

/// The human-readable report: one compact block per size.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "orchestr8 bench: seed {}, {} queries per class, {} threads, vocabulary {} words ({} tokens)",
        report.seed,
        report.queries_per_class,
        report.threads,
        report.vocabulary_words,
        report.vocabulary_tokens
    );
    let _ = writeln!(
        out,
        "{}",
        match report.model {
            true => format!(
                "embedding model installed: sizes up to {} measured with semantic fusion on too",
                report.semantic_max
            ),
            false => "no embedding model (or --no-semantic): BM25 alone".to_string(),
        }
    );
    // Seconds a definition took to embed at the last size measured with semantic fusion on.
    let mut per_definition_s: Option<f64> = None;
    for s in &report.sizes {
        let _ = writeln!(
            out,
            "\n== {} files ({:.1} MB): {} definitions served, {} diagnostics ({} copies, {} broken)",
            s.count,
            s.synth.bytes as f64 / 1e6,
            s.definitions,
            s.diagnostics,
            s.synth.copies,
            s.synth.expected_diagnostics()
        );
        let rss = match (s.peak_rss_build_mb, s.peak_rss_serve_mb) {
            (Some(build), Some(serve)) => format!(
                "{:.0} MB{} (build {build:.0}, serve {serve:.0})",
                build.max(serve),
                if s.peak_rss_reset { "" } else { "*" }
            ),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "build {:.2} s ({:.0} files/s)   reopen to first answer {:.1} ms{}   index {:.1} MB   peak RSS {rss}",
            s.build_s,
            s.files_per_s,
            s.reopen_ms,
            if s.reopen_parsed > 0 {
                format!(" (re-read {} files!)", s.reopen_parsed)
            } else {
                String::new()
            },
            s.index_mb,
        );
        if let (Some(ms), Some(parsed)) = (s.refresh_ms, s.refresh_parsed) {
            let _ = writeln!(
                out,
                "refresh after one edit {ms:.1} ms{}",
                match parsed {
                    1 => String::new(),
                    n => format!(" (re-read {n} files!)"),
                },
            );
        }
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>8} {:>8} {:>8}   {:>8} {:>8}",
            "query ms", "p50", "p95", "p99", "max", "idle p50", "idle p99"
        );
        for c in &s.queries_ms {
            let _ = writeln!(
                out,
                "{:<16} {:>8.3} {:>8.3} {:>8.3} {:>8.3}   {:>8.3} {:>8.3}{}",
                c.class.name(),
                c.ms.p50,
                c.ms.p95,
                c.ms.p99,
                c.ms.max,
                c.after_idle_ms.p50,
                c.after_idle_ms.p99,
                if c.empty > 0 {
                    format!("  ({} of {} empty)", c.empty, c.ms.n)
                } else {
                    String::new()
                }
            );
        }
        for (label, l) in [
            ("load us cold", &s.load_cold_us),
            ("load us cached", &s.load_cached_us),
        ] {
            let _ = writeln!(
                out,
                "{label:<16} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                l.p50, l.p95, l.p99, l.max
            );
        }
        let _ = writeln!(
            out,
            "naive scan of descriptions, sentence p50 {:.3} ms: the engine is {:.1}x faster",
            s.naive_sentence_ms.p50, s.speedup_sentence
        );
        if s.semantic.is_none() && report.model {
            let _ = writeln!(
                out,
                "semantic on: not measured above --semantic-max {}{}",
                report.semantic_max,
                match per_definition_s {
                    Some(each) => {
                        let total = each * s.definitions as f64;
                        format!(
                            " (embedding every definition would take about {} at the {:.0} ms a definition measured below it)",
                            match total < 90.0 {
                                true => format!("{total:.0} s"),
                                false => format!("{:.0} min", total / 60.0),
                            },
                            each * 1e3
                        )
                    }
                    None => String::new(),
                }
            );
        }
        if let Some(sem) = &s.semantic {
            per_definition_s = Some(sem.embed_build_s / s.definitions.max(1) as f64);
            let _ = writeln!(
                out,
                "semantic on: model loaded in {:.0} ms, embedding every definition {:.1} s; query ms (p50 off -> on, then on p95 p99 max, idle p50)",
                sem.model_load_ms, sem.embed_build_s
            );
            for c in &sem.queries_ms {
                let off = s
                    .queries_ms
                    .iter()
                    .find(|o| o.class == c.class)
                    .map_or(f64::NAN, |o| o.ms.p50);
                let _ = writeln!(
                    out,
                    "{:<16} {:>8.3} -> {:>8.3} {:>8.3} {:>8.3} {:>8.3}   {:>8.3}",
                    c.class.name(),
                    off,
                    c.ms.p50,
                    c.ms.p95,
                    c.ms.p99,
                    c.ms.max,
                    c.after_idle_ms.p50
                );
            }
        }
        if let Some(m) = &s.mcp_round_trip_ms {
            let _ = writeln!(
                out,
                "MCP discover_agents round trip ({} calls): p50 {:.3} ms, p95 {:.3} ms; after idle p50 {}; server peak RSS {}",
                m.n,
                m.p50,
                m.p95,
                s.mcp_round_trip_after_idle_ms
                    .as_ref()
                    .map_or("n/a".into(), |i| format!("{:.3} ms", i.p50)),
                s.mcp_server_peak_rss_mb
                    .map_or("n/a".into(), |r| format!("{r:.0} MB"))
            );
        }
    }
    if report.sizes.iter().any(|s| !s.peak_rss_reset) {
        let _ = writeln!(
            out,
            "\n* the peak could not be reset between sizes: it includes earlier sizes and synth"
        );
    }
    out
}
