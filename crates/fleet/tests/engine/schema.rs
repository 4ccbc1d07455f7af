//! A JSON schema pinned by a golden file and documented field by field: the report's
//! (`polyseal-report/1`) and the status's (`polyseal-status/1`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Every field's path and the types it takes anywhere in a JSON document, one a
/// line (`keys[].activated: null|string`): its shape. Arrays contribute every element,
/// and maps keyed by data (states, months, codes) one `<key>` field.
pub(crate) fn shape(value: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    let mut add = |kind| {
        out.entry(path.to_owned()).or_default().insert(kind);
    };
    match value {
        Value::Object(map) if map.is_empty() => add("empty object"),
        Value::Object(map) => {
            let keyed_by_data = [
                "by_state",
                "by_generation",
                "by_action",
                "by_code",
                "keys_per_state",
                "rotations_per_month",
            ]
            .iter()
            .any(|name| path.ends_with(name));
            for (key, value) in map {
                let child = match (keyed_by_data, path.is_empty()) {
                    (true, _) => format!("{path}.<key>"),
                    (false, true) => key.clone(),
                    (false, false) => format!("{path}.{key}"),
                };
                shape(value, &child, out);
            }
        }
        Value::Array(items) if items.is_empty() => {
            out.entry(format!("{path}[]")).or_default();
        }
        Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), out);
            }
        }
        Value::String(_) => add("string"),
        Value::Number(_) => add("number"),
        Value::Bool(_) => add("boolean"),
        Value::Null => add("null"),
    }
}

/// Checks `document`'s shape against `tests/fixtures/FIXTURE` (`POLYSEAL_BLESS=1` writes it)
/// and that `doc` (relative to the repository) names every field path in backquotes.
pub(crate) fn assert_schema_pinned(document: &Value, fixture: &str, doc: &str) {
    let mut fields = BTreeMap::new();
    shape(document, "", &mut fields);
    let actual: String = fields
        .iter()
        .map(|(path, kinds)| {
            let kinds: Vec<&str> = kinds.iter().copied().collect();
            format!("{path}: {}\n", kinds.join("|"))
        })
        .collect();
    let golden_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    if std::env::var_os("POLYSEAL_BLESS").is_some() {
        std::fs::write(&golden_path, &actual).expect("bless");
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|_| {
        panic!("tests/fixtures/{fixture} (POLYSEAL_BLESS=1 writes it from this test's document)")
    });
    assert_eq!(actual, golden, "the schema changed: that is a new schema");
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(doc),
    )
    .unwrap_or_else(|_| panic!("{doc}"));
    for line in golden.lines() {
        let path = line.split(':').next().expect("path");
        assert!(
            docs.contains(&format!("`{path}`")),
            "{doc} documents `{path}`"
        );
    }
}
