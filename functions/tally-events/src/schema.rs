//! The event types: one JSON Schema 2020-12 file each in `schemas/events/`, compiled into the
//! crate (build.rs). A type's schema validates its `attributes`; its top-level `properties` are
//! also the columns of its warehouse table (`event_<type>`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;
use tally_engine::Rejection;

include!(concat!(env!("OUT_DIR"), "/event_schemas.rs"));

/// What an attribute holds, as its schema's `type` says (an `enum` of strings is a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    String,
    Integer,
    Number,
    Boolean,
    /// Objects, arrays and anything else: kept as JSON text.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub kind: AttributeKind,
    pub description: String,
    pub required: bool,
}

/// What a schema says of its type without validating anything: its attributes (the columns of
/// its warehouse table, in name order). The lake needs only this, so it links no validator.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeInfo {
    pub name: String,
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub schema: Value,
}

/// One event type: what its schema says, and the schema compiled.
pub struct EventType {
    pub info: TypeInfo,
    validator: Validator,
}

impl std::fmt::Debug for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventType")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl TypeInfo {
    pub fn parse(name: &str, text: &str) -> Result<TypeInfo, String> {
        if !is_type_name(name) {
            return Err(format!(
                "schemas/events/{name}.json: a type is named in lower case letters, digits and _"
            ));
        }
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| format!("schemas/events/{name}.json is not JSON: {e}"))?;
        if schema["type"] != "object" {
            return Err(format!(
                "schemas/events/{name}.json must describe an object (\"type\": \"object\")"
            ));
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let attributes = schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .map(|(name, p)| Attribute {
                        name: name.clone(),
                        kind: kind_of(p),
                        description: p["description"].as_str().unwrap_or_default().to_string(),
                        required: required.contains(&name.as_str()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(TypeInfo {
            name: name.to_string(),
            description: schema["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            attributes,
            schema,
        })
    }

    /// Every type of `schemas/events/`, by name.
    pub fn built_in() -> &'static [TypeInfo] {
        static INFOS: OnceLock<Vec<TypeInfo>> = OnceLock::new();
        INFOS.get_or_init(|| {
            SCHEMA_FILES
                .iter()
                .map(|(name, text)| TypeInfo::parse(name, text))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{e}"))
        })
    }

    pub fn is_built_in(name: &str) -> bool {
        Self::built_in().iter().any(|t| t.name == name)
    }
}

fn kind_of(property: &Value) -> AttributeKind {
    let named = |t: &str| match t {
        "string" => Some(AttributeKind::String),
        "integer" => Some(AttributeKind::Integer),
        "number" => Some(AttributeKind::Number),
        "boolean" => Some(AttributeKind::Boolean),
        _ => None,
    };
    match &property["type"] {
        Value::String(t) => named(t).unwrap_or(AttributeKind::Json),
        // ["string", "null"]: the one non-null type.
        Value::Array(ts) => {
            let kinds: Vec<_> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            match kinds.as_slice() {
                [one] => named(one).unwrap_or(AttributeKind::Json),
                _ => AttributeKind::Json,
            }
        }
        _ => match &property["enum"] {
            Value::Array(vs) if !vs.is_empty() && vs.iter().all(Value::is_string) => {
                AttributeKind::String
            }
            _ => AttributeKind::Json,
        },
    }
}

impl EventType {
    /// Compiles one schema; the error names the type and what is wrong with its file.
    pub fn compile(name: &str, text: &str) -> Result<EventType, String> {
        let info = TypeInfo::parse(name, text)?;
        let validator = jsonschema::draft202012::new(&info.schema)
            .map_err(|e| format!("schemas/events/{name}.json is not a valid schema: {e}"))?;
        Ok(EventType { info, validator })
    }

    /// Validates an event's attributes; the pointer of a violation is into the whole event
    /// (`/attributes/price`).
    pub fn validate(&self, attributes: &Value) -> Result<(), Rejection> {
        match self.validator.validate(attributes) {
            Ok(()) => Ok(()),
            Err(e) => Err(Rejection::SchemaViolation {
                pointer: format!("/attributes{}", e.instance_path()),
                message: e.masked().to_string(),
            }),
        }
    }
}

/// Every event type, by name.
#[derive(Debug)]
pub struct EventTypes {
    types: BTreeMap<String, EventType>,
}

impl EventTypes {
    /// The types of `schemas/events/`, compiled once per process.
    pub fn built_in() -> &'static EventTypes {
        static TYPES: OnceLock<EventTypes> = OnceLock::new();
        TYPES.get_or_init(|| EventTypes::from_files(SCHEMA_FILES).unwrap_or_else(|e| panic!("{e}")))
    }

    pub fn from_files(files: &[(&str, &str)]) -> Result<EventTypes, String> {
        let mut types = BTreeMap::new();
        for (name, text) in files {
            types.insert(name.to_string(), EventType::compile(name, text)?);
        }
        Ok(EventTypes { types })
    }

    pub fn get(&self, name: &str) -> Option<&EventType> {
        self.types.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &EventType> {
        self.types.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

/// `clip_play`: lower case letters, digits and `_`, starting with a letter (a table name part).
pub fn is_type_name(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
