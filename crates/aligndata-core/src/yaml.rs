//! Typed YAML config files (pipelines, policies) with errors located by file, line and field.
//!
//! The YAML is parsed with its positions, converted to JSON values, and deserialised with serde;
//! when serde rejects a field, its path is looked up in the position map, so the error says
//! `pipeline.yaml:12:7: steps[1].ingest.txt_field: unknown field ...`.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A config file that could not be read into its type.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}{sep}{message}", sep = if field.is_empty() { "" } else { ": " })]
pub struct ConfigError {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted field path (`steps[1].ingest`), empty for syntax errors.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Parses `source` (the text of `file`) as YAML into `T`.
pub fn from_yaml_str<T: DeserializeOwned>(source: &str, file: &str) -> Result<T, ConfigError> {
    let docs = MarkedYaml::load_from_str(source).map_err(|err| ConfigError {
        file: file.to_string(),
        line: err.marker().line(),
        column: err.marker().col() + 1,
        field: String::new(),
        message: err.info().to_string(),
    })?;
    let mut positions = HashMap::new();
    let value = match docs.first() {
        Some(doc) => to_json(doc, String::new(), &mut positions),
        None => Value::Null,
    };
    serde_path_to_error::deserialize(value).map_err(|err| {
        let field = err.path().to_string();
        let field = if field == "." { String::new() } else { field };
        // Serde names the innermost path it reached; fall back to its parents for a position.
        let mut probe = field.clone();
        let (line, column) = loop {
            if let Some(pos) = positions.get(&probe) {
                break *pos;
            }
            match probe.rfind(['.', '[']) {
                Some(idx) => probe.truncate(idx),
                None => break positions.get("").copied().unwrap_or((1, 1)),
            }
        };
        ConfigError {
            file: file.to_string(),
            line,
            column,
            field,
            message: err.into_inner().to_string(),
        }
    })
}

fn to_json(
    node: &MarkedYaml<'_>,
    path: String,
    positions: &mut HashMap<String, (usize, usize)>,
) -> Value {
    positions.insert(
        path.clone(),
        (node.span.start.line(), node.span.start.col() + 1),
    );
    match &node.data {
        YamlData::Value(scalar) => scalar_to_json(scalar),
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(idx, item)| to_json(item, format!("{path}[{idx}]"), positions))
                .collect(),
        ),
        YamlData::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map.iter() {
                let key = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(other) => scalar_to_json(other).to_string(),
                    _ => String::from("?"),
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                positions.insert(
                    child.clone(),
                    (value.span.start.line(), value.span.start.col() + 1),
                );
                out.insert(key, to_json(value, child, positions));
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => to_json(inner, path, positions),
        YamlData::Alias(_) | YamlData::BadValue => Value::Null,
    }
}

fn scalar_to_json(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => Value::from(f.into_inner()),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        steps: Vec<Step>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Step {
        #[allow(dead_code)]
        count: u32,
    }

    #[test]
    fn unknown_field_is_located() {
        let src = "name: x\nsteps:\n  - count: 3\n  - cuont: 4\n";
        let err = from_yaml_str::<Config>(src, "p.yaml").unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(err.to_string().starts_with("p.yaml:4:"), "{err}");
        assert!(err.message.contains("cuont"), "{err}");
    }

    #[test]
    fn wrong_type_is_located() {
        let src = "name: x\nsteps:\n  - count: many\n";
        let err = from_yaml_str::<Config>(src, "p.yaml").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_str()),
            (3, "steps[0].count"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let err = from_yaml_str::<Config>("name: [x\n", "p.yaml").unwrap_err();
        assert!(err.line >= 1 && err.field.is_empty(), "{err}");
    }
}
