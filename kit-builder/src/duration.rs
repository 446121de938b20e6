//! Parsing of `--expires` durations (`30d`, `12h`, `2w`) and absolute RFC 3339 instants.

/// Parses `N[s|m|h|d|w]`.
pub fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: missing unit (s, m, h, d or w)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by s, m, h, d or w"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (s, m, h, d or w)"
            ));
        }
    };
    if number <= 0 {
        return Err(format!("{text:?}: must be positive"));
    }
    Ok(time::Duration::seconds(number.saturating_mul(seconds)))
}

/// `--expires` accepts a duration after `created` or an absolute RFC 3339 time.
pub fn parse_expiry(
    text: &str,
    created: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, String> {
    if let Ok(at) = stella_importer::manifest::parse_time(text) {
        return Ok(at);
    }
    Ok(created + parse_duration(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), time::Duration::days(30));
        assert_eq!(parse_duration("2w").unwrap(), time::Duration::days(14));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("3y").is_err());
    }
}
