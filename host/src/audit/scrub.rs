//! Scrubbing free text before it enters an audit event: URLs lose their
//! query string, fragment and userinfo; JWT-shaped strings and the value after
//! `Bearer ` are replaced. This is the second line of defence; the first is
//! that no event field has the type [`crate::secret::Secret`].

/// `text` with every credential-shaped part removed (see the module doc).
pub fn scrub(text: &str) -> String {
    redact_bearer(&redact_jwts(&strip_urls(text)))
}

/// Characters that end a URL embedded in prose or in a quoted value.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')' | ']' | '}' | ',' | ';')
}

/// Every `scheme://…` in `text` without `?query`, `#fragment` or `user:pass@`.
fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme is the run of scheme characters right before `://`; it stays as is.
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        out.push_str(&clean_url_body(url));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The part after `://`: authority (without userinfo) and path, nothing after `?` or `#`.
fn clean_url_body(body: &str) -> String {
    let cut = body.find(['?', '#']).unwrap_or(body.len());
    let body = &body[..cut];
    let authority_end = body.find('/').unwrap_or(body.len());
    let (authority, path) = body.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{host}{path}")
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '='
}

/// Replace `eyJ…​.…​.…` (a JWS compact serialization: a JSON header starts `{"` = `eyJ`).
fn redact_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        let (before, candidate) = rest.split_at(at);
        out.push_str(before);
        let len = candidate.find(|c: char| !(is_base64url(c) || c == '.')).unwrap_or(candidate.len());
        let token = &candidate[..len];
        if token.split('.').count() >= 3 {
            out.push_str("[redacted-jwt]");
        } else {
            out.push_str(token);
        }
        rest = &candidate[len..];
    }
    out.push_str(rest);
    out
}

/// `Bearer xyz` → `Bearer [redacted]` (case-insensitive), so opaque tokens go too.
fn redact_bearer(text: &str) -> String {
    const WORD: &str = "bearer ";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(WORD) {
        let value_start = search + found + WORD.len();
        let value_len = text[value_start..].find(ends_url).unwrap_or(text.len() - value_start);
        let value = &text[value_start..value_start + value_len];
        out.push_str(&text[last..value_start]);
        if value.is_empty() || value.starts_with('[') {
            out.push_str(value);
        } else {
            out.push_str("[redacted]");
        }
        last = value_start + value_len;
        search = last;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_query_fragment_and_userinfo() {
        assert_eq!(scrub("GET https://x/?token=SECRET failed"), "GET https://x/ failed");
        assert_eq!(scrub("https://u:pw@vault.example:8200/v1/a#frag"), "https://vault.example:8200/v1/a");
        assert_eq!(scrub("`http://h/p?q=1`, then"), "`http://h/p`, then");
        assert_eq!(scrub("no url here?x=1"), "no url here?x=1");
    }

    #[test]
    fn jwts_and_bearer_values_are_replaced() {
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJtaS0xIn0.c2lnbmF0dXJl";
        assert_eq!(scrub(&format!("token {jwt} rejected")), "token [redacted-jwt] rejected");
        assert_eq!(scrub("Authorization: Bearer opaque-123 sent"), "Authorization: Bearer [redacted] sent");
        assert_eq!(scrub("eyJ alone"), "eyJ alone");
    }
}
