//! "Did you mean": the closest valid names for a name that matched nothing.

/// Up to `max` candidates closest to `wanted`: names containing it (or contained in it) first,
/// then names by string similarity above a floor that keeps unrelated names out.
pub fn closest<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            let contains =
                !wanted.is_empty() && (lower.contains(&wanted) || wanted.contains(&lower));
            let similarity = strsim::jaro_winkler(&wanted, &lower);
            let score = if contains {
                1.0 + similarity
            } else {
                similarity
            };
            (score >= 0.75).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(max)
        .map(|(_, c)| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn typos_and_fragments_find_names() {
        let names = ["code-reviewer", "test-engineer", "kubernetes-expert"];
        assert_eq!(closest("code-reveiwer", names, 3), ["code-reviewer"]);
        assert_eq!(closest("kubernetes", names, 3), ["kubernetes-expert"]);
        assert!(closest("zzz", names, 3).is_empty());
    }
}
