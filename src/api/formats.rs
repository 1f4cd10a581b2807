//! Schema formats the API server does not know, taken out of the generated CRDs.
//!
//! schemars writes `format: uint32` / `uint64` (and `uint8`, `int16`, … for other widths) on
//! integers. kube-apiserver knows only `int32` and `int64` on integers and `float` and
//! `double` on numbers (k8s.io/apiextensions-apiserver `pkg/apiserver/validation/formats.go`),
//! and answers every apply of such a CRD with `Warning: unrecognized format "uint32"`. The
//! format changes nothing there; the `minimum: 0` schemars writes beside it is what keeps an
//! unsigned field unsigned, and it stays.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// `crd` without the integer and number formats the API server does not recognise.
pub fn without_unknown_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises to JSON");
    if let Some(versions) = value.pointer_mut("/spec/versions") {
        strip(versions);
    }
    serde_json::from_value(value).expect("a CRD with fewer formats is still a CRD")
}

/// Removes unknown formats from every schema under `value`.
fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let known = match (map.get("type").and_then(Value::as_str), map.get("format")) {
                (Some("integer"), Some(f)) => matches!(f.as_str(), Some("int32" | "int64")),
                (Some("number"), Some(f)) => matches!(f.as_str(), Some("float" | "double")),
                _ => true,
            };
            if !known {
                map.remove("format");
            }
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_formats_go_and_their_minimum_stays() {
        let mut schema = serde_json::json!({
            "properties": {
                "count": {"type": "integer", "format": "uint32", "minimum": 0.0},
                "repairs": {"type": "integer", "format": "uint64", "minimum": 0.0},
                "generation": {"type": "integer", "format": "int64"},
                "when": {"type": "string", "format": "date-time"},
                "ratio": {"type": "number", "format": "double"},
                "list": {"type": "array", "items": {"type": "integer", "format": "uint16"}},
            }
        });
        strip(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "properties": {
                    "count": {"type": "integer", "minimum": 0.0},
                    "repairs": {"type": "integer", "minimum": 0.0},
                    "generation": {"type": "integer", "format": "int64"},
                    "when": {"type": "string", "format": "date-time"},
                    "ratio": {"type": "number", "format": "double"},
                    "list": {"type": "array", "items": {"type": "integer"}},
                }
            })
        );
    }

    #[test]
    fn the_served_crds_carry_no_unsigned_format() {
        let yaml = crate::api::crds_yaml().expect("CRDs serialise");
        assert!(!yaml.contains("format: uint"), "{yaml}");
        assert!(yaml.contains("minimum: 0.0"));
    }
}
