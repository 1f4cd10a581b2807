//! CMDB GET query features (facts page §5): `filter` (`==` `!=` `=@` `!@` `<=` `<` `>=` `>`;
//! comma = OR inside one filter, repeated filters = AND), `format` (fields joined by `|`),
//! `start` / `count` paging.

use serde_json::Value;

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    key: String,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Le,
    Lt,
    Ge,
    Gt,
}

/// A parsed GET query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// AND of ORs.
    filters: Vec<Vec<Clause>>,
    /// Fields to keep, empty = all.
    format: Vec<String>,
    start: usize,
    count: Option<usize>,
}

impl Query {
    /// Parses the query pairs of a CMDB GET; an unparsable filter is an error (the device
    /// answers 400 / -651 for those).
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut query = Query::default();
        for (key, value) in pairs {
            match key.as_str() {
                "filter" => query.filters.push(
                    value
                        .split(',')
                        .map(parse_clause)
                        .collect::<Result<_, _>>()?,
                ),
                "format" => {
                    query.format = value
                        .split('|')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "start" => {
                    query.start = value.parse().map_err(|_| format!("bad start {value:?}"))?
                }
                "count" => {
                    query.count = Some(value.parse().map_err(|_| format!("bad count {value:?}"))?)
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// Whether `object` passes every filter.
    pub fn matches(&self, object: &Value) -> bool {
        self.filters
            .iter()
            .all(|any| any.iter().any(|c| c.matches(object)))
    }

    /// Applies filters, paging and `format` to a table listing.
    pub fn apply(&self, objects: impl Iterator<Item = Value>) -> Vec<Value> {
        let filtered = objects.filter(|o| self.matches(o)).skip(self.start);
        let limited: Vec<Value> = match self.count {
            Some(n) => filtered.take(n).collect(),
            None => filtered.collect(),
        };
        limited.into_iter().map(|o| self.project(o)).collect()
    }

    /// Keeps only the `format` fields (plus `q_origin_key`, which devices always return).
    pub fn project(&self, object: Value) -> Value {
        if self.format.is_empty() {
            return object;
        }
        match object {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| k == "q_origin_key" || self.format.iter().any(|f| f == k))
                    .collect(),
            ),
            other => other,
        }
    }
}

fn parse_clause(text: &str) -> Result<Clause, String> {
    // Longest operators first so `<=` is not read as `<`.
    const OPS: [(&str, Op); 8] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("=@", Op::Contains),
        ("!@", Op::NotContains),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    for (token, op) in OPS {
        if let Some(at) = text.find(token) {
            let key = text[..at].trim();
            if key.is_empty() {
                break;
            }
            return Ok(Clause {
                key: key.to_string(),
                op,
                value: text[at + token.len()..].to_string(),
            });
        }
    }
    Err(format!("invalid filter {text:?}"))
}

impl Clause {
    fn matches(&self, object: &Value) -> bool {
        let Some(field) = object.get(&self.key) else {
            return matches!(self.op, Op::Ne | Op::NotContains);
        };
        let text = match field {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        let (lhs, rhs) = (text.to_lowercase(), self.value.to_lowercase());
        match self.op {
            Op::Eq => lhs == rhs,
            Op::Ne => lhs != rhs,
            Op::Contains => lhs.contains(&rhs),
            Op::NotContains => !lhs.contains(&rhs),
            Op::Le | Op::Lt | Op::Ge | Op::Gt => {
                let ordering = match (text.parse::<f64>(), self.value.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(lhs.cmp(&rhs)),
                };
                match (self.op, ordering) {
                    (Op::Le, Some(o)) => o.is_le(),
                    (Op::Lt, Some(o)) => o.is_lt(),
                    (Op::Ge, Some(o)) => o.is_ge(),
                    (Op::Gt, Some(o)) => o.is_gt(),
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .expect("query")
    }

    fn table() -> Vec<Value> {
        vec![
            json!({"name": "fs_10.0.0.1", "color": 3, "comment": "managed-by fortisync a/b"}),
            json!({"name": "FS_10.0.0.2", "color": 5}),
            json!({"name": "admin-pc", "color": 0}),
        ]
    }

    fn names(values: Vec<Value>) -> Vec<String> {
        values
            .into_iter()
            .map(|v| v["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn contains_is_case_insensitive() {
        assert_eq!(
            names(q(&[("filter", "name=@fs_")]).apply(table().into_iter())),
            ["fs_10.0.0.1", "FS_10.0.0.2"]
        );
    }

    #[test]
    fn comma_is_or_and_repeated_filters_are_and() {
        let or = q(&[("filter", "name==admin-pc,color==5")]);
        assert_eq!(
            names(or.apply(table().into_iter())),
            ["FS_10.0.0.2", "admin-pc"]
        );
        let and = q(&[("filter", "name=@fs_"), ("filter", "color>4")]);
        assert_eq!(names(and.apply(table().into_iter())), ["FS_10.0.0.2"]);
    }

    #[test]
    fn not_operators_and_missing_fields() {
        assert_eq!(
            names(q(&[("filter", "comment!@fortisync")]).apply(table().into_iter())),
            ["FS_10.0.0.2", "admin-pc"]
        );
        assert_eq!(
            names(q(&[("filter", "color<=3")]).apply(table().into_iter())),
            ["fs_10.0.0.1", "admin-pc"]
        );
    }

    #[test]
    fn format_keeps_listed_fields_and_paging_slices() {
        let out =
            q(&[("format", "name"), ("start", "1"), ("count", "1")]).apply(table().into_iter());
        assert_eq!(out, vec![json!({"name": "FS_10.0.0.2"})]);
    }

    #[test]
    fn a_filter_without_operator_is_refused() {
        assert!(Query::parse(&[("filter".into(), "name".into())]).is_err());
        assert!(Query::parse(&[("count".into(), "x".into())]).is_err());
    }
}
