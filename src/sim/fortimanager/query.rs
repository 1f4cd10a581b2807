//! The read options of a `get`: `filter`, `fields`, `range` and `option: count` (§1.2).

use serde_json::{Map, Value};

use super::status::Status;

/// A parsed `get` query.
#[derive(Debug, Clone, Default)]
pub struct Query {
    filter: Option<Value>,
    fields: Option<Vec<String>>,
    range: Option<(usize, usize)>,
    sortings: Vec<(String, bool)>,
    /// `option: "count"` / `["count"]`: `data` is the number of matches.
    pub count: bool,
}

impl Query {
    /// Reads the query keys of one param; -8 on malformed ones.
    pub fn from_param(param: &Map<String, Value>) -> Result<Self, Status> {
        let fields = match param.get("fields") {
            None => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|f| f.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(Status::invalid_parameter)?,
            ),
            Some(_) => return Err(Status::invalid_parameter()),
        };
        let range = match param.get("range") {
            None => None,
            Some(Value::Array(a)) if a.len() == 2 => {
                let n = |v: &Value| {
                    v.as_u64()
                        .map(|n| n as usize)
                        .ok_or_else(Status::invalid_parameter)
                };
                Some((n(&a[0])?, n(&a[1])?))
            }
            Some(_) => return Err(Status::invalid_parameter()),
        };
        let count = match param.get("option") {
            Some(Value::String(s)) => s == "count",
            Some(Value::Array(a)) => a.iter().any(|o| o == "count"),
            _ => false,
        };
        // `sortings: [{attr: 1 | -1}, ...]`, applied in order.
        let sortings = match param.get("sortings") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .flat_map(|s| s.as_object().into_iter().flatten())
                .map(|(attr, dir)| (attr.clone(), dir.as_i64() != Some(-1)))
                .collect(),
            Some(_) => return Err(Status::invalid_parameter()),
        };
        let filter = param.get("filter").cloned();
        if let Some(f) = &filter {
            validate(f)?;
        }
        Ok(Self {
            filter,
            fields,
            range,
            sortings,
            count,
        })
    }

    /// Applies the query to a table's rows (already in reply form).
    pub fn apply(&self, rows: Vec<Map<String, Value>>, mkey: &str) -> Value {
        let matched: Vec<_> = rows
            .into_iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| matches(f, r)))
            .collect();
        if self.count {
            return Value::from(matched.len());
        }
        let mut matched = matched;
        for (attr, ascending) in self.sortings.iter().rev() {
            // Stable sorts from the last key to the first give a multi-key order.
            matched.sort_by(|a, b| {
                let (a, b) = (sort_key(a.get(attr)), sort_key(b.get(attr)));
                if *ascending { a.cmp(&b) } else { b.cmp(&a) }
            });
        }
        let (offset, count) = self.range.unwrap_or((0, usize::MAX));
        matched
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|r| Value::Object(self.project(r, mkey)))
            .collect()
    }

    /// Keeps only the requested `fields` (the key is always kept).
    pub fn project(&self, row: Map<String, Value>, mkey: &str) -> Map<String, Value> {
        match &self.fields {
            None => row,
            Some(fields) => row
                .into_iter()
                .filter(|(k, _)| k == mkey || fields.contains(k))
                .collect(),
        }
    }
}

fn validate(f: &Value) -> Result<(), Status> {
    match f.as_array().map(Vec::as_slice) {
        Some([Value::String(_), Value::String(_), ..]) => Ok(()),
        Some(parts) if parts.iter().any(Value::is_array) => {
            parts.iter().filter(|p| p.is_array()).try_for_each(validate)
        }
        _ => Err(Status::invalid_parameter()),
    }
}

/// Evaluates `[attr, op, value...]` or a compound `[[..], "&&"|"||", [..], ...]`.
fn matches(f: &Value, row: &Map<String, Value>) -> bool {
    let Some(parts) = f.as_array() else {
        return false;
    };
    if parts.first().is_some_and(Value::is_array) {
        let mut result = matches(&parts[0], row);
        for pair in parts[1..].chunks(2) {
            if let [Value::String(op), rhs] = pair {
                let r = matches(rhs, row);
                result = if op == "||" { result || r } else { result && r };
            }
        }
        return result;
    }
    let (Some(attr), Some(op)) = (
        parts.first().and_then(Value::as_str),
        parts.get(1).and_then(Value::as_str),
    ) else {
        return false;
    };
    let values = &parts[2..];
    let field = row.get(attr).unwrap_or(&Value::Null);
    let (negate, op) = match op.strip_prefix('!') {
        Some(rest) if !rest.is_empty() && op != "!=" => (true, rest),
        _ => (false, op),
    };
    let hit = match op {
        "==" => values.first().is_some_and(|v| equal(field, v)),
        "!=" => values.first().is_some_and(|v| !equal(field, v)),
        "in" => values
            .iter()
            .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
            .any(|v| equal(field, &v)),
        "like" => values
            .first()
            .and_then(Value::as_str)
            .is_some_and(|p| like(&text(field), p)),
        "contain" => values.first().is_some_and(|v| match field {
            Value::Array(items) => items.iter().any(|i| equal(i, v)),
            other => v.as_str().is_some_and(|s| text(other).contains(s)),
        }),
        "&" => values
            .first()
            .and_then(Value::as_u64)
            .is_some_and(|m| field.as_u64().is_some_and(|f| f & m != 0)),
        _ => false,
    };
    hit != negate
}

/// Numbers sort numerically, everything else by its text.
fn sort_key(v: Option<&Value>) -> (Option<i64>, String) {
    match v {
        Some(v) => (v.as_i64(), text(v)),
        None => (None, String::new()),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn equal(field: &Value, v: &Value) -> bool {
    field == v || text(field) == text(v)
}

/// SQL `LIKE` with `%` (any run) and `_` (one character).
fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn go(s: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(&s[i..], rest)),
            Some(('_', rest)) => !s.is_empty() && go(&s[1..], rest),
            Some((c, rest)) => s.first() == Some(c) && go(&s[1..], rest),
        }
    }
    go(&s, &p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Map<String, Value>> {
        ["web1", "web2", "db1"]
            .iter()
            .map(|n| {
                json!({"name": n, "comment": format!("{n} host"), "color": 3})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    fn query(param: Value) -> Query {
        Query::from_param(param.as_object().unwrap()).unwrap()
    }

    #[test]
    fn like_filter_and_fields() {
        let out = query(json!({"filter": ["name", "like", "web%"], "fields": ["color"]}))
            .apply(rows(), "name");
        assert_eq!(
            out,
            json!([{"name": "web1", "color": 3}, {"name": "web2", "color": 3}])
        );
    }

    #[test]
    fn compound_filter_and_range() {
        let q = query(
            json!({"filter": [["name", "in", "web1", "db1"], "&&", ["color", "==", 3]], "range": [1, 5]}),
        );
        assert_eq!(
            q.apply(rows(), "name"),
            json!([{"name": "db1", "comment": "db1 host", "color": 3}])
        );
    }

    #[test]
    fn sortings_order_before_range() {
        let q = query(json!({"sortings": [{"name": -1}], "range": [0, 2], "fields": ["name"]}));
        assert_eq!(
            q.apply(rows(), "name"),
            json!([{"name": "web2"}, {"name": "web1"}])
        );
    }

    #[test]
    fn count_option_returns_an_integer() {
        assert_eq!(
            query(json!({"option": ["count"], "filter": ["name", "==", "db1"]}))
                .apply(rows(), "name"),
            json!(1)
        );
    }

    #[test]
    fn malformed_range_is_invalid_parameter() {
        assert_eq!(
            Query::from_param(json!({"range": "x"}).as_object().unwrap()).unwrap_err(),
            Status::invalid_parameter()
        );
    }
}
