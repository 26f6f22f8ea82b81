//! `POOL[:COUNT][,KEY=VALUE...]`: how a command line writes one item of a lease request,
//! and how messages show it.

use summoner_client::Want;

/// Parses `POOL[:COUNT][,KEY=VALUE...]`, e.g. `ports:2` or `boards,arch=arm64`.
pub fn parse_want(text: &str) -> Result<Want, String> {
    const EXPECTED: &str =
        "expected POOL[:COUNT][,KEY=VALUE...], e.g. `ports:2` or `boards,arch=arm64`";
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or_default();
    let (pool, count) = match head.split_once(':') {
        Some((pool, count)) => {
            let count: u32 =
                count.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                    format!("count `{count}` is not a whole number of at least 1")
                })?;
            (pool, count)
        }
        None => (head, 1),
    };
    if pool.is_empty() {
        return Err(format!("no pool name; {EXPECTED}"));
    }
    let mut want = Want::new(pool);
    want.count = count;
    for label in parts {
        let (key, value) = label
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("label `{label}` is not KEY=VALUE; {EXPECTED}"))?;
        want.labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(want)
}

/// `POOL[:COUNT][,KEY=VALUE...]` again, for messages.
pub fn format_want(want: &Want) -> String {
    let mut out = want.pool.clone();
    if want.count != 1 {
        out.push_str(&format!(":{}", want.count));
    }
    for (k, v) in &want.labels {
        out.push_str(&format!(",{k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_parse_pool_count_and_labels() {
        let want = parse_want("boards:2,arch=arm64,lab=b2").unwrap();
        assert_eq!(want.pool, "boards");
        assert_eq!(want.count, 2);
        assert_eq!(want.labels["arch"], "arm64");
        assert_eq!(want.labels["lab"], "b2");
        assert_eq!(format_want(&want), "boards:2,arch=arm64,lab=b2");
        let want = parse_want("ports").unwrap();
        assert_eq!((want.pool.as_str(), want.count), ("ports", 1));
        assert!(want.labels.is_empty());
    }

    #[test]
    fn bad_wants_say_what_is_expected() {
        assert!(parse_want("").unwrap_err().contains("POOL[:COUNT]"));
        assert!(parse_want("ports:0").unwrap_err().contains("at least 1"));
        assert!(parse_want("ports:x").unwrap_err().contains("`x`"));
        assert!(parse_want("ports,arch").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_want("ports,=x").is_err());
    }
}
