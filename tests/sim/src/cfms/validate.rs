//! Request schemas and the 400 answers the real server's JSON-schema
//! validator gives (`'x' is a required property`, `Additional properties are
//! not allowed ('y' was unexpected)`, `1 is not of type 'string'`).

use serde_json::{Map, Value, json};

/// A JSON type a property may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    /// A string of at least one character (`"minLength": 1`).
    NonEmptyStr,
    StrOrNull,
    Bool,
    Int,
    Array,
    Object,
    Any,
}

/// The schema of one action's `data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    pub required: &'static [&'static str],
    pub properties: &'static [(&'static str, Ty)],
    /// Unknown keys allowed?
    pub open: bool,
}

/// A validator's refusal: the 400 message and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub message: String,
    pub data: Value,
}

impl Schema {
    /// Check `data` (an absent `data` is checked as `{}`).
    pub fn check(&self, data: &Value) -> Result<(), Refusal> {
        let empty = Map::new();
        let object = match data {
            Value::Object(o) => o,
            Value::Null => &empty,
            other => return Err(type_refusal(other, "object")),
        };
        if let Some(missing) = self.required.iter().find(|k| !object.contains_key(**k)) {
            return Err(Refusal {
                message: format!("'{missing}' is a required property"),
                data: json!({"validator": "required", "validator_value": self.required}),
            });
        }
        if !self.open {
            let extra: Vec<String> = object
                .keys()
                .filter(|k| !self.properties.iter().any(|(p, _)| p == k))
                .map(|k| format!("'{k}'"))
                .collect();
            if !extra.is_empty() {
                let verb = if extra.len() == 1 { "was" } else { "were" };
                return Err(Refusal {
                    message: format!(
                        "Additional properties are not allowed ({} {verb} unexpected)",
                        extra.join(", ")
                    ),
                    data: json!({"validator": "additionalProperties", "validator_value": false}),
                });
            }
        }
        for (name, ty) in self.properties {
            if let Some(value) = object.get(*name) {
                check_type(value, *ty)?;
            }
        }
        Ok(())
    }
}

fn check_type(value: &Value, ty: Ty) -> Result<(), Refusal> {
    let ok = match ty {
        Ty::Str | Ty::NonEmptyStr => value.is_string(),
        Ty::StrOrNull => value.is_string() || value.is_null(),
        Ty::Bool => value.is_boolean(),
        Ty::Int => value.is_i64() || value.is_u64(),
        Ty::Array => value.is_array(),
        Ty::Object => value.is_object(),
        Ty::Any => true,
    };
    if ty == Ty::NonEmptyStr && value.as_str() == Some("") {
        // jsonschema 4.26's wording (the version the real server installs).
        return Err(Refusal {
            message: "'' should be non-empty".into(),
            data: json!({"validator": "minLength", "validator_value": 1}),
        });
    }
    if ok {
        return Ok(());
    }
    Err(match ty {
        Ty::StrOrNull => Refusal {
            message: format!("{} is not of type 'string', 'null'", py_repr(value)),
            data: json!({"validator": "type", "validator_value": ["string", "null"]}),
        },
        Ty::Str | Ty::NonEmptyStr => type_refusal(value, "string"),
        Ty::Bool => type_refusal(value, "boolean"),
        Ty::Int => type_refusal(value, "integer"),
        Ty::Array => type_refusal(value, "array"),
        Ty::Object | Ty::Any => type_refusal(value, "object"),
    })
}

fn type_refusal(value: &Value, name: &str) -> Refusal {
    Refusal {
        message: format!("{} is not of type '{name}'", py_repr(value)),
        data: json!({"validator": "type", "validator_value": name}),
    }
}

/// How Python prints a decoded JSON value (the validator's messages use it).
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: Schema = Schema {
        required: &["username", "password"],
        properties: &[("username", Ty::Str), ("password", Ty::Str)],
        open: false,
    };

    #[test]
    fn missing_property_names_the_first_missing_and_lists_all_required() {
        let refusal = LOGIN.check(&json!({"username": "admin"})).unwrap_err();
        assert_eq!(refusal.message, "'password' is a required property");
        assert_eq!(
            refusal.data,
            json!({"validator": "required", "validator_value": ["username", "password"]})
        );
    }

    #[test]
    fn unknown_property_is_refused_with_python_wording() {
        let data = json!({"username": "a", "password": "b", "extra": 1});
        let refusal = LOGIN.check(&data).unwrap_err();
        assert_eq!(
            refusal.message,
            "Additional properties are not allowed ('extra' was unexpected)"
        );
    }

    #[test]
    fn wrong_type_is_refused_with_python_repr() {
        let refusal = LOGIN
            .check(&json!({"username": 1, "password": "b"}))
            .unwrap_err();
        assert_eq!(refusal.message, "1 is not of type 'string'");
    }
}
