//! Finds where a field is written in YAML text, so errors found after parsing (a bad
//! duration, an unknown field) can still point at a line and column.
//!
//! This reads block-style YAML, as manifests are written; for flow style it returns the
//! nearest enclosing field it can find.

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// The location of `path` (such as `spec.token.accessTokenTTL` or
/// `spec.redirectUris.allowedHosts[1]`) in `text`, or of the deepest part of it found.
pub fn locate(text: &str, path: &str) -> Option<Location> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found: Option<Location> = None;
    // The block we search: lines [start, end) indented deeper than `parent_indent`.
    let (mut start, mut parent_indent) = (0usize, -1isize);
    for segment in path.split('.') {
        let (key, index) = split_index(segment);
        let Some((line_no, indent, column)) = find_key(&lines, start, parent_indent, key) else {
            break;
        };
        found = Some(Location {
            line: line_no + 1,
            column: column + 1,
        });
        start = line_no + 1;
        parent_indent = indent;
        if let Some(index) = index {
            let Some((item_line, item_indent, item_column)) =
                find_item(&lines, start, parent_indent, index)
            else {
                break;
            };
            found = Some(Location {
                line: item_line + 1,
                column: item_column + 1,
            });
            // The item's own keys sit after "- ", so they are deeper than the dash.
            start = item_line;
            parent_indent = item_indent;
        }
    }
    found
}

fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.split_once('[') {
        Some((key, rest)) => (key, rest.trim_end_matches(']').parse().ok()),
        None => (segment, None),
    }
}

fn indentation(line: &str) -> isize {
    isize::try_from(line.len() - line.trim_start().len()).unwrap_or(isize::MAX)
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The first line in the block after `start` that holds `key:` (possibly after `- `).
/// Returns the line index, the key's indentation and its column.
fn find_key(
    lines: &[&str],
    start: usize,
    parent_indent: isize,
    key: &str,
) -> Option<(usize, isize, usize)> {
    for (line_no, line) in lines.iter().enumerate().skip(start) {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indentation(line);
        if indent <= parent_indent && line_no > start || line.starts_with("---") {
            return None;
        }
        let mut content = line.trim_start();
        let mut column = line.len() - content.len();
        while let Some(rest) = content.strip_prefix("- ") {
            column += 2 + (rest.len() - rest.trim_start().len());
            content = rest.trim_start();
        }
        let unquoted = content.trim_start_matches(['"', '\'']);
        if unquoted.starts_with(key)
            && unquoted[key.len()..]
                .trim_start_matches(['"', '\''])
                .starts_with(':')
        {
            return Some((
                line_no,
                isize::try_from(column).unwrap_or(isize::MAX),
                column,
            ));
        }
    }
    None
}

/// The `index`-th `- ` item of the block after `start`.
fn find_item(
    lines: &[&str],
    start: usize,
    parent_indent: isize,
    index: usize,
) -> Option<(usize, isize, usize)> {
    let mut item_indent = None;
    let mut seen = 0;
    for (line_no, line) in lines.iter().enumerate().skip(start) {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indentation(line);
        if indent < parent_indent
            || (indent == parent_indent && !line.trim_start().starts_with("- "))
        {
            return None;
        }
        if line.trim_start().starts_with("- ") && item_indent.is_none_or(|i| i == indent) {
            item_indent = Some(indent);
            if seen == index {
                let column = usize::try_from(indent).unwrap_or_default();
                return Some((line_no, indent, column));
            }
            seen += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "\
apiVersion: auth.nauthera.io/v1alpha1
kind: AuthPolicy
metadata:
  name: web
spec:
  # lifetimes
  token:
    accessTokenTTL: \"15 m\"
    idTokenTTL: 5m
  redirectUris:
    allowedHosts:
      - \"*.example.com\"
      - bad host
  allowedScopes: [openid]
";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(
            locate(POLICY, "spec.token.accessTokenTTL"),
            Some(Location { line: 8, column: 5 })
        );
        assert_eq!(
            locate(POLICY, "spec.token.idTokenTTL"),
            Some(Location { line: 9, column: 5 })
        );
        assert_eq!(
            locate(POLICY, "spec.allowedScopes"),
            Some(Location {
                line: 14,
                column: 3
            })
        );
    }

    #[test]
    fn finds_list_items() {
        assert_eq!(
            locate(POLICY, "spec.redirectUris.allowedHosts[1]"),
            Some(Location {
                line: 13,
                column: 7
            })
        );
    }

    #[test]
    fn falls_back_to_the_deepest_known_part() {
        assert_eq!(
            locate(POLICY, "spec.token.refreshTokenTTL"),
            Some(Location { line: 7, column: 3 })
        );
        assert_eq!(locate(POLICY, "nothing"), None);
    }

    #[test]
    fn does_not_leave_the_parent_block() {
        let text = "spec:\n  a: 1\nother:\n  token: x\n";
        assert_eq!(
            locate(text, "spec.token"),
            Some(Location { line: 1, column: 1 })
        );
    }

    #[test]
    fn finds_keys_inside_list_items() {
        let text = "spec:\n  matchExpressions:\n    - key: tier\n      operator: In\n";
        assert_eq!(
            locate(text, "spec.matchExpressions[0].operator"),
            Some(Location { line: 4, column: 7 })
        );
    }
}
