//! Fuzzy matching of a query against symbol names (subsequence match with bonuses), for workspace/symbol.

/// Scores `candidate` against `query`; `None` when the query is not a (case-insensitive)
/// subsequence. Higher is better: exact > prefix > word-start matches > scattered matches.
pub fn fuzzy_score(query: &str, candidate: &str) -> Option<i64> {
    if query.is_empty() {
        return Some(0);
    }
    if candidate == query {
        return Some(10_000);
    }
    if candidate.eq_ignore_ascii_case(query) {
        return Some(9_000);
    }
    let mut score: i64 = 0;
    let mut q = query.chars().flat_map(char::to_lowercase).peekable();
    let mut prev: Option<char> = None;
    let mut consecutive = 0i64;
    let mut first_match: Option<usize> = None;
    for (i, c) in candidate.chars().enumerate() {
        let Some(&want) = q.peek() else { break };
        let lc = c.to_lowercase().next().unwrap_or(c);
        if lc == want {
            q.next();
            first_match.get_or_insert(i);
            let word_start = match prev {
                None => true,
                Some(p) => {
                    (p == '_' || p == ':' || p == '.' || p == '-')
                        || (p.is_lowercase() && c.is_uppercase())
                }
            };
            consecutive += 1;
            score += 10 + consecutive * 5 + if word_start { 30 } else { 0 };
            if c == want {
                score += 1;
            }
        } else {
            consecutive = 0;
        }
        prev = Some(c);
    }
    if q.peek().is_some() {
        return None;
    }
    if first_match == Some(0) {
        score += 100;
    }
    score -= candidate.chars().count() as i64;
    Some(score)
}

#[cfg(test)]
mod tests {
    use super::fuzzy_score;

    #[test]
    fn ranks_exact_prefix_and_word_starts() {
        let exact = fuzzy_score("parse", "parse").unwrap_or(i64::MIN);
        let prefix = fuzzy_score("parse", "parse_file").unwrap_or(i64::MIN);
        let camel = fuzzy_score("pf", "parseFile").unwrap_or(i64::MIN);
        let scattered = fuzzy_score("pf", "copy_buffer").unwrap_or(i64::MIN);
        assert!(exact > prefix);
        assert!(camel > scattered);
        assert_eq!(fuzzy_score("xyz", "parse"), None);
        assert_eq!(fuzzy_score("PARSE", "parse"), Some(9_000));
    }
}
